package report

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/classes"
	"github.com/egresslab/egresslab/scenarios/policy"
)

// ClassResult is one class with its representative probed as a cell: User
// is a policy user or a synthetic identity ("uid 1000"), Host the policy
// host whose address it dialled or "" for an address outside every host.
type ClassResult struct {
	Result
	Class classes.Class
}

// Synthetic says the class was probed as an identity the policy does not name.
func (c ClassResult) Synthetic() bool { return !c.Class.Representative.PolicyUser }

// Completeness is what a --complete run can say about itself.
type Completeness struct {
	Classes int
	// Unsplit are the matches the lab could not split, with their rule:
	// the classes they touch are sampled, not complete.
	Unsplit []classes.Unsplit
	// Unread are listings that failed (a tool that broke, not one that is
	// missing or printed nothing): what they held was not split.
	Unread []string
	// Unprobed are classes with no address a unicast probe can reach
	// (multicast, link-local or reserved only), named: counted in Classes,
	// never probed, never passed.
	Unprobed []string
}

// ClassFailures counts the classes whose representative did not meet its
// expectation (errors and classes no expectation covers included).
func (r *Report) ClassFailures() int {
	n := 0
	for _, c := range r.Classes {
		if !c.Pass() {
			n++
		}
	}
	return n
}

// ClassErrors counts the classes that could not be probed.
func (r *Report) ClassErrors() int {
	n := 0
	for _, c := range r.Classes {
		if c.Observed == probe.Error {
			n++
		}
	}
	return n
}

// SourceString is a class's identities: "uid 107", "uid 0-106,108-4294967294
// gid 0", "any".
func (c ClassResult) SourceString() string {
	var parts []string
	if s := idRanges(c.Class.Source.UIDs); s != "" {
		parts = append(parts, "uid "+s)
	}
	if s := idRanges(c.Class.Source.GIDs); s != "" {
		parts = append(parts, "gid "+s)
	}
	if c.Class.Source.SupplGroups {
		parts = append(parts, "(or in supplementary groups)")
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, " ")
}

// idRanges is "" for every id.
func idRanges(rs []classes.IDRange) string {
	if len(rs) == 1 && rs[0].First == 0 && rs[0].Last == classes.MaxID {
		return ""
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, ",")
}

// AddressStrings are the class's destinations, prefixes where exact.
func (c ClassResult) AddressStrings() []string {
	var s []string
	for _, a := range c.Class.Addresses {
		s = append(s, a.String())
	}
	return s
}

// PortStrings are the class's destination ports.
func (c ClassResult) PortStrings() []string {
	var s []string
	for _, p := range c.Class.Ports {
		s = append(s, p.String())
	}
	return s
}

// Name is the class in one line: "ipv6 tcp uid any to ::/0 port 1-65535".
func (c ClassResult) Name() string {
	return fmt.Sprintf("%s %s %s to %s port %s", c.Class.Family, c.Class.Proto, c.SourceString(),
		brief(c.AddressStrings(), 3), brief(c.PortStrings(), 4))
}

// brief joins a list, cut after max items.
func brief(items []string, max int) string {
	if len(items) > max {
		return strings.Join(items[:max], ",") + fmt.Sprintf(",… (%d more)", len(items)-max)
	}
	return strings.Join(items, ",")
}

// representative is the cell probed: "postfix -> [2001:db8::1]:25/tcp".
func (c ClassResult) representative() string {
	return fmt.Sprintf("%s -> %s", c.User.Name, netip.AddrPortFrom(c.Address, c.Port.Number))
}

// CompletenessLine is the run's completeness in one line: "6 classes over
// uid, gid, daddr, dport, proto, family: all probed; 1 match not split: ...".
func (r *Report) CompletenessLine() string {
	cm := r.Completeness
	if cm == nil {
		return ""
	}
	line := fmt.Sprintf("%s over uid, gid, daddr, dport, proto, family: ", countOf(cm.Classes, "class", "classes"))
	if errs := r.ClassErrors() + len(cm.Unprobed); errs > 0 {
		line += fmt.Sprintf("%d of %d probed (%d could not be)", cm.Classes-errs, cm.Classes, errs)
	} else {
		line += "all probed"
	}
	if len(cm.Unprobed) > 0 {
		line += fmt.Sprintf("; %s of multicast, link-local or reserved addresses only, which no unicast probe reaches: %s",
			countOf(len(cm.Unprobed), "class", "classes"), strings.Join(cm.Unprobed, ", "))
	}
	if len(cm.Unsplit) > 0 {
		var what []string
		for _, u := range cm.Unsplit {
			what = append(what, u.Match+" in "+u.Rule.String())
		}
		line += fmt.Sprintf("; %s not split (their classes are sampled): %s", countOf(len(cm.Unsplit), "match", "matches"), strings.Join(what, ", "))
	}
	for _, u := range cm.Unread {
		line += "; not read: " + u
	}
	return line
}

// writeClasses writes the table of classes below the policy's table: one
// row per class, failing ones marked '!', sampled ones '~'; then the failing
// classes in full and the completeness line.
func (r *Report) writeClasses(b *bytes.Buffer, paint func(code, s string) string) {
	if r.Completeness == nil {
		return
	}
	rows := [][]string{{"", "family", "proto", "source", "daddr", "dport", "probed as", "expected", "observed"}}
	for _, c := range r.Classes {
		mark := " "
		if c.Class.Sampled {
			mark = "~"
		}
		if !c.Pass() {
			mark = "!"
		}
		expected := string(c.Expect)
		if expected == "" {
			expected = "(none)"
		}
		rows = append(rows, []string{mark, c.Class.Family.String(), c.Class.Proto.String(), c.SourceString(),
			brief(c.AddressStrings(), 3), brief(c.PortStrings(), 4), c.representative(), expected, c.Observed.String()})
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], len([]rune(cell)))
		}
	}
	b.WriteString("\nclasses of the loaded ruleset (! fails, ~ sampled)\n")
	for k, row := range rows {
		var line strings.Builder
		for i, cell := range row {
			if i == len(row)-1 {
				line.WriteString(cell)
				break
			}
			line.WriteString(cell + strings.Repeat(" ", widths[i]-len([]rune(cell))+1))
		}
		s := strings.TrimRight(line.String(), " ")
		if k > 0 && row[0] == "!" {
			s = paint(red, s)
		}
		b.WriteString(s + "\n")
	}
	if n := r.ClassFailures(); n > 0 {
		fmt.Fprintf(b, "\n%s:\n", paint(red, strings.ToUpper(countOf(n, "failing class", "failing classes"))))
		for _, c := range r.Classes {
			if c.Pass() {
				continue
			}
			fmt.Fprintf(b, "  %s %s: %s", kindWord(c.Kind()), c.Name(), c.representative()+"/"+c.Port.Proto+": "+c.Verdict())
			if d := OneLine(c.Detail); d != "" {
				b.WriteString(" — " + d)
			}
			if c.Line > 0 {
				fmt.Fprintf(b, " (policy line %d)", c.Line)
			}
			if c.Decider != nil && c.Decider.Untraced == "" {
				b.WriteString("\n      decided by " + DecidedBy(c.Decider))
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\ncompleteness: " + r.CompletenessLine() + "\n")
	n := len(r.Classes)
	fmt.Fprintf(b, "%s: %d passed, %d failed, %d errors\n", countOf(n, "class", "classes"), n-r.ClassFailures(), r.ClassFailures(), r.ClassErrors())
}

// kindWord is a failure kind in capitals: BYPASS, NOT COVERED.
func kindWord(k Kind) string {
	return strings.ToUpper(strings.ReplaceAll(kindName(k), "-", " "))
}

// The JSON of a class, SPEC's keys.
type jsonClass struct {
	Source         jsonSource    `json:"source"`
	Addresses      []string      `json:"addresses"`
	Ports          []string      `json:"ports"`
	Proto          string        `json:"proto"`
	Family         string        `json:"family"`
	Representative jsonRep       `json:"representative"`
	Expected       policy.Verb   `json:"expected"`
	Observed       probe.Outcome `json:"observed"`
	Pass           bool          `json:"pass"`
	Failure        string        `json:"failure,omitempty"`
	Detail         string        `json:"detail,omitempty"`
	Evidence       jsonEvidence  `json:"evidence"`
	Rule           *jsonRule     `json:"rule"`
	Complete       bool          `json:"complete"`
	Unsplit        []string      `json:"unsplit,omitempty"` // what makes it sampled
}

type jsonSource struct {
	UIDs        []string `json:"uids"`
	GIDs        []string `json:"gids"`
	SupplGroups bool     `json:"suppl_groups,omitempty"`
}

type jsonRep struct {
	User    string `json:"user"` // the policy user, or "" for a synthetic identity
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	Host    string `json:"host,omitempty"`
	Address string `json:"address"`
	Port    uint16 `json:"port"`
}

type jsonCompleteness struct {
	Classes  int      `json:"classes"`
	Line     string   `json:"line"`
	Unsplit  []string `json:"unsplit"`
	Unread   []string `json:"unread,omitempty"`
	Unprobed []string `json:"unprobed,omitempty"`
}

func rangeStrings[T fmt.Stringer](rs []T) []string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return s
}

func toJSONClass(c ClassResult) jsonClass {
	rep := c.Class.Representative
	j := jsonClass{
		Source:    jsonSource{UIDs: rangeStrings(c.Class.Source.UIDs), GIDs: rangeStrings(c.Class.Source.GIDs), SupplGroups: c.Class.Source.SupplGroups},
		Addresses: c.AddressStrings(), Ports: c.PortStrings(), Proto: c.Class.Proto.String(), Family: c.Class.Family.String(),
		Representative: jsonRep{User: rep.User, UID: rep.UID, GID: rep.GID, Host: c.Host, Address: rep.Addr.String(), Port: rep.Port},
		Expected:       c.Expect, Observed: c.Observed, Pass: c.Pass(), Failure: kindName(c.Kind()), Detail: c.Detail,
		Evidence: evidenceJSON(c.Result), Rule: ruleOf(c.Result), Complete: !c.Class.Sampled,
	}
	for _, u := range c.Class.Unsplit {
		j.Unsplit = append(j.Unsplit, u.Match+" in "+u.Rule.String())
	}
	return j
}

// jsonClasses are the report's classes for its JSON document (nil without --complete).
func (r *Report) jsonClasses() ([]jsonClass, *jsonCompleteness) {
	if r.Completeness == nil {
		return nil, nil
	}
	out := make([]jsonClass, len(r.Classes))
	for i, c := range r.Classes {
		out[i] = toJSONClass(c)
	}
	cm := &jsonCompleteness{Classes: r.Completeness.Classes, Line: r.CompletenessLine(), Unsplit: []string{}, Unread: r.Completeness.Unread, Unprobed: r.Completeness.Unprobed}
	for _, u := range r.Completeness.Unsplit {
		cm.Unsplit = append(cm.Unsplit, u.Match+" in "+u.Rule.String())
	}
	return out, cm
}

// junitClasses are a JUnit case per failing class.
func (r *Report) junitClasses() (cases []junitCase, failures, errors int) {
	for _, c := range r.Classes {
		k := c.Kind()
		if k == Passed {
			continue
		}
		text := OneLine(c.Detail)
		if c.Line > 0 {
			text += fmt.Sprintf("\npolicy line %d", c.Line)
		}
		if c.Decider != nil {
			text += "\ndecided by " + DecidedBy(c.Decider)
		}
		msg := &junitMessage{Message: c.Verdict(), Type: kindName(k), Text: text + "\nprobed as " + c.representative() + "/" + c.Port.Proto + "\n"}
		jc := junitCase{Classname: fmt.Sprintf("%s.classes.%s", r.Policy, c.Class.Family), Name: "class " + c.Name(), Time: seconds(c.Duration)}
		if c.Observed == probe.Error {
			jc.Error = msg
			errors++
		} else {
			jc.Failure = msg
			failures++
		}
		cases = append(cases, jc)
	}
	return cases, failures, errors
}

// countOf is "1 class", "2 classes".
func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
