package report

import (
	"github.com/egresslab/egresslab/scenarios/report/words"

	"bytes"
	"fmt"
	"strings"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/policy"
)

// Kind is what a probe's outcome means against its expectation: it passed,
// or how it failed, worst first. A bypass lets traffic out that the policy
// forbids; breakage stops traffic the policy needs; the wrong way of failing
// blocks as it should but not as the policy says (a drop where a reject was
// wanted, or the reverse).
type Kind int

const (
	Passed     Kind = iota
	Bypass          // connected although the policy forbids it
	Breakage        // blocked although the policy allows it
	WrongWay        // blocked, but not as the policy says
	ProbeError      // the probe could not run: never read as blocked
	Uncovered       // no expectation covers the probe (never in a loaded policy)
)

// failureGroups is the order and the heading of each kind in reports.
var failureGroups = []struct {
	kind      Kind
	one, many string    // headings of the failure list
	counted   [2]string // the summary's words for one and for many
	junitType string    // a JUnit failure's type
}{
	{Bypass, "BYPASS: 1 probe connected although the policy forbids it",
		"BYPASSES: %d probes connected although the policy forbids them", [2]string{"bypass", "bypasses"}, "bypass"},
	{Breakage, "BREAKAGE: 1 probe the policy allows was blocked",
		"BREAKAGE: %d probes the policy allows were blocked", [2]string{"blocked", "blocked"}, "breakage"},
	{WrongWay, "WRONG WAY OF FAILING: 1 probe was blocked, but not as the policy says (drop vs reject)",
		"WRONG WAY OF FAILING: %d probes were blocked, but not as the policy says (drop vs reject)", [2]string{"wrong way", "wrong way"}, "wrong-way"},
	{ProbeError, "PROBE ERROR: 1 probe could not run (an error is never read as blocked)",
		"PROBE ERRORS: %d probes could not run (an error is never read as blocked)", [2]string{"error", "errors"}, "probe-error"},
	{Uncovered, "NOT COVERED: 1 probe has no expectation",
		"NOT COVERED: %d probes have no expectation", [2]string{"not covered", "not covered"}, "not-covered"},
}

// FailureKinds are the kinds of failing, in the order reports list them.
func FailureKinds() []Kind {
	kinds := make([]Kind, len(failureGroups))
	for i, g := range failureGroups {
		kinds[i] = g.kind
	}
	return kinds
}

// Judge compares what the policy expects with what a probe observed: the one
// comparator of verify, repro, the catalogue and the matchers. A probe error
// meets nothing.
func Judge(expect policy.Verb, observed probe.Outcome) Kind {
	met := false
	switch expect {
	case policy.Allow:
		met = observed == probe.Connected
	case policy.Deny:
		met = observed.Blocked()
	case policy.Drop:
		met = observed == probe.Dropped
	case policy.Reject:
		met = observed == probe.Refused || observed == probe.Rejected
	}
	switch {
	case met:
		return Passed
	case observed == probe.Error:
		return ProbeError
	case expect == "":
		return Uncovered
	case observed == probe.Connected:
		return Bypass
	case expect == policy.Allow:
		return Breakage
	}
	return WrongWay
}

// Kind judges the result (Judge).
func (r Result) Kind() Kind { return Judge(r.Expect, r.Observed) }

// failureLine is one failed probe in full, with the policy line that decided it.
func (r Result) failureLine() string {
	line := r.Probe.String() + ": " + r.Verdict()
	if d := OneLine(r.Detail); d != "" {
		line += " — " + d
	}
	if r.Line > 0 {
		line += fmt.Sprintf(" (policy line %d)", r.Line)
	}
	if r.Decider != nil {
		line += "\n      decided by " + words.DecidedBy(r.Decider)
		if r.DeciderAt != nil {
			line += ", written at " + r.DeciderAt.String()
		}
	}
	return line
}

// writeFailures lists the failed probes below the table, grouped by kind,
// the worst kind first, so that one bypass is not lost among many probes
// that merely failed the wrong way.
func (r *Report) writeFailures(b *bytes.Buffer, paint func(code, s string) string) {
	for _, g := range failureGroups {
		var lines []string
		for _, res := range r.Results {
			if res.Kind() == g.kind {
				lines = append(lines, "  "+res.failureLine())
			}
		}
		if len(lines) == 0 {
			continue
		}
		heading := g.one
		if len(lines) > 1 {
			heading = fmt.Sprintf(g.many, len(lines))
		}
		b.WriteString("\n" + paint(red, heading) + "\n" + strings.Join(lines, "\n") + "\n")
	}
}

// writeSummary writes one line per address family, then the whole count.
func (r *Report) writeSummary(b *bytes.Buffer, paint func(code, s string) string) {
	b.WriteString("\n")
	for _, fam := range []string{"ipv4", "ipv6"} {
		var s Summary
		kinds := map[Kind]int{}
		for _, res := range r.Results {
			if res.Family() != fam {
				continue
			}
			s.add(res)
			kinds[res.Kind()]++
		}
		if s.Probes == 0 {
			continue
		}
		line := fmt.Sprintf("%s: %s, %d passed", fam, Plural(s.Probes, "probe"), s.Passed)
		if s.Failed > 0 {
			var parts []string
			for _, g := range failureGroups {
				if n := kinds[g.kind]; n > 0 {
					parts = append(parts, fmt.Sprintf("%d %s", n, g.counted[min(n-1, 1)]))
				}
			}
			line += fmt.Sprintf(", %d failed (%s)", s.Failed, strings.Join(parts, ", "))
		}
		b.WriteString(paintSummary(paint, s, line) + "\n")
	}
	s := r.Summary()
	line := fmt.Sprintf("%s: %d passed, %d failed, %s", Plural(s.Probes, "probe"), s.Passed, s.Failed, Plural(s.Errors, "error"))
	b.WriteString(paintSummary(paint, s, line) + "\n")
}

func paintSummary(paint func(code, s string) string, s Summary, line string) string {
	if s.Failed > 0 {
		return paint(red, line)
	}
	return paint(green, line)
}

// add counts one result.
func (s *Summary) add(res Result) {
	s.Probes++
	if res.Pass() {
		s.Passed++
	} else {
		s.Failed++
	}
	if res.Observed == probe.Error {
		s.Errors++
	}
}

// ExecCommand is the command that replays r with a real client, as r's user
// inside a lab of policyFile (when empty: r.PolicyFile(), else
// "egresslab.yaml", verify's default): nc dials the same address and port
// and says what it saw.
func (r Result) ExecCommand(policyFile string) string {
	switch {
	case policyFile != "":
	case r.PolicyFile() != "":
		policyFile = r.PolicyFile()
	default:
		policyFile = "egresslab.yaml"
	}
	flags := "-vz"
	if r.Port.Proto == "udp" {
		flags = "-vzu"
	}
	who := "--user " + shellQuote(r.User.Name)
	if r.Client != nil {
		who = "--client " + shellQuote(r.Client.Name)
	}
	return fmt.Sprintf("egresslab exec -f %s %s -- nc %s -n -w 3 %s %d",
		shellQuote(policyFile), who, flags, r.Address, r.Port.Number)
}

// shellQuote leaves plain words alone and single-quotes anything else.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/+:=@%", c))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
