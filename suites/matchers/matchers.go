// Package matchers holds the Gomega matchers users import for their own
// suites (docs/go-api.md), in the style of gexec and gstruct:
//
//	results, err := session.Probe(ctx, "www-data", "mx.example.test", "25/tcp")
//	Expect(results, err).To(matchers.OnEveryFamily(matchers.BeDropped()))
//	Expect(session.ProbeAll(ctx)).To(matchers.MatchTruthTable())
//
// Outcome matchers (Connect, BeDropped, BeRejected, BeRefused) take one
// scenarios.Result or a non-empty []scenarios.Result, every one of which
// must match. A failure names each probe, what it observed and why, and the
// `egresslab exec` command that replays it with a real client.
package matchers

import (
	"fmt"
	"slices"
	"strings"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/onsi/gomega/gcustom"
	"github.com/onsi/gomega/types"
)

// Connect succeeds when the probes connected: a TCP handshake (and, on an
// SMTP port, the server's 220 greeting), or a UDP reply.
func Connect() types.GomegaMatcher {
	return outcomeMatcher("connect", probe.Connected)
}

// BeDropped succeeds when the probes were dropped: nothing answered.
func BeDropped() types.GomegaMatcher {
	return outcomeMatcher("be dropped", probe.Dropped)
}

// BeRejected succeeds when an answer came back saying no: the policy's
// `reject` verb, met by refused or rejected. (iptables' plain `-j REJECT`
// answers a TCP probe with ICMP port unreachable, which is refused.)
func BeRejected() types.GomegaMatcher {
	return outcomeMatcher("be rejected (refused or rejected)", probe.Refused, probe.Rejected)
}

// BeRefused succeeds when the probes were refused: a TCP reset, or an ICMP
// or ICMPv6 port unreachable.
func BeRefused() types.GomegaMatcher {
	return outcomeMatcher("be refused", probe.Refused)
}

// outcomeExplainer renders an outcome matcher's failure from the actual
// value, when Gomega asks for it.
type outcomeExplainer struct {
	want     string
	outcomes []probe.Outcome
}

func outcomeMatcher(want string, outcomes ...probe.Outcome) types.GomegaMatcher {
	e := outcomeExplainer{want: want, outcomes: outcomes}
	return gcustom.MakeMatcher(func(actual any) (bool, error) {
		results, err := asResults(actual)
		if err != nil {
			return false, err
		}
		for _, r := range results {
			if !slices.Contains(outcomes, r.Observed) {
				return false, nil
			}
		}
		return true, nil
	}).WithTemplate("{{.Data.Explain .Actual .Failure}}", e)
}

// Explain is the failure message: every probe, marked where it is wrong.
func (e outcomeExplainer) Explain(actual any, failure bool) string {
	results, _ := asResults(actual)
	var b strings.Builder
	if failure {
		fmt.Fprintf(&b, "expected every probe to %s, but:\n", e.want)
	} else {
		fmt.Fprintf(&b, "expected some probe not to %s, but every one did:\n", e.want)
	}
	for _, r := range results {
		wrong := slices.Contains(e.outcomes, r.Observed) != failure
		writeProbe(&b, r, wrong)
	}
	return b.String()
}

// writeProbe is one probe of a failure message; a wrong one is marked and
// carries the command that replays it.
func writeProbe(b *strings.Builder, r scenarios.Result, wrong bool) {
	mark := "   "
	if wrong {
		mark = " ! "
	}
	fmt.Fprintf(b, "%s%s: observed %s", mark, r.Probe, r.Observed)
	if r.Detail != "" {
		fmt.Fprintf(b, " — %s", strings.TrimSpace(r.Detail))
	}
	b.WriteString("\n")
	if wrong {
		fmt.Fprintf(b, "     reproduce: %s\n", r.ExecCommand("")) // names the policy file the probe came from
	}
}

// asResults accepts one result or a non-empty list of them.
func asResults(actual any) ([]scenarios.Result, error) {
	switch a := actual.(type) {
	case scenarios.Result:
		return []scenarios.Result{a}, nil
	case []scenarios.Result:
		if len(a) == 0 {
			return nil, fmt.Errorf("no probe results to match: a matcher over nothing would pass vacuously")
		}
		return a, nil
	}
	return nil, fmt.Errorf("want a scenarios.Result or []scenarios.Result (from Session.Probe), got %T", actual)
}

// OnEveryFamily succeeds when the results hold probes of both IPv4 and IPv6
// and m succeeds on each family's probes alone. A pass on one family never
// stands for the other: a host without an IPv6 address fails here, since
// nothing then shows what IPv6 would do.
func OnEveryFamily(m types.GomegaMatcher) types.GomegaMatcher {
	return gcustom.MakeMatcher(func(actual any) (bool, error) {
		results, err := asResults(actual)
		if err != nil {
			return false, err
		}
		for _, fam := range byFamily(results) {
			if len(fam.results) == 0 {
				return false, nil
			}
			ok, err := m.Match(fam.results)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	}).WithTemplate("{{.Data.Explain .Actual .Failure}}", familyExplainer{m})
}

type familyExplainer struct{ m types.GomegaMatcher }

// Explain says, family by family, what held and what did not.
func (e familyExplainer) Explain(actual any, failure bool) string {
	results, _ := asResults(actual)
	var b strings.Builder
	if !failure {
		b.WriteString("expected the matcher to fail on some address family, but it held on both:\n")
	}
	for _, fam := range byFamily(results) {
		switch ok, err := e.m.Match(fam.results); {
		case len(fam.results) == 0:
			fmt.Fprintf(&b, "%s: no probe of this family (does the host have an %s address?)\n", fam.name, fam.name)
		case err != nil:
			fmt.Fprintf(&b, "%s: %v\n", fam.name, err)
		case ok:
			fmt.Fprintf(&b, "%s: holds\n", fam.name)
		default:
			fmt.Fprintf(&b, "%s: %s", fam.name, e.m.FailureMessage(fam.results))
		}
	}
	return b.String()
}

type family struct {
	name    string
	results []scenarios.Result
}

func byFamily(results []scenarios.Result) []family {
	fams := []family{{name: "ipv4"}, {name: "ipv6"}}
	for _, r := range results {
		i := 0
		if r.Family() == "ipv6" {
			i = 1
		}
		fams[i].results = append(fams[i].results, r)
	}
	return fams
}
