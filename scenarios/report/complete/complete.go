package complete

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/classes"
	"github.com/egresslab/egresslab/scenarios/policy"
)

// Row is one class with its representative's probe, in the values and words
// package report gives a probe.
type Row struct {
	Class classes.Class
	// Probed is the cell probed: "postfix -> [2001:db8::1]:25"; Proto its
	// protocol; Host the policy host whose address it dialled ("" for an
	// address outside every host).
	Probed, Proto, Host string
	Expected            policy.Verb
	Observed            probe.Outcome
	Pass                bool
	Failure             string // the failure's kind ("bypass", "probe-error"); "" when it passes
	Verdict             string // "expected deny, observed connected"
	Detail              string // as the prober gave it
	DetailLine          string // the detail on one line, free of terminal escapes
	Line                int    // the policy line of the expectation (0: none)
	// DecidedBy is the deciding rule in the report's words ("" when none
	// saw the probe); Untraced says the trace could not follow it.
	DecidedBy string
	Untraced  bool
	// Evidence and Rule are the probe's, as package report writes them in JSON.
	Evidence, Rule any
}

// Completeness is what a --complete run can say about itself.
type Completeness struct {
	Classes int
	// Forwarded is how many of the classes are of clients' forwarded
	// traffic, split over network and source address instead of uid and gid.
	Forwarded int
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

// Failures counts the rows whose representative did not meet its
// expectation (errors and classes no expectation covers included).
func Failures(rows []Row) int {
	n := 0
	for _, c := range rows {
		if !c.Pass {
			n++
		}
	}
	return n
}

// Errors counts the rows that could not be probed.
func Errors(rows []Row) int {
	n := 0
	for _, c := range rows {
		if c.Observed == probe.Error {
			n++
		}
	}
	return n
}

// Source is a class's identities: "uid 107", "uid 0-106,108-4294967294
// gid 0", "any"; a forwarded class's network and source addresses:
// "docker0 saddr 172.17.128.0/17".
func Source(c classes.Class) string {
	if c.Network != "" {
		return c.Network + " saddr " + brief(rangeStrings(c.Sources), 3)
	}
	var parts []string
	if s := idRanges(c.Source.UIDs); s != "" {
		parts = append(parts, "uid "+s)
	}
	if s := idRanges(c.Source.GIDs); s != "" {
		parts = append(parts, "gid "+s)
	}
	if c.Source.SupplGroups {
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

// Addresses are the class's destinations, prefixes where exact.
func Addresses(c classes.Class) []string {
	var s []string
	for _, a := range c.Addresses {
		s = append(s, a.String())
	}
	return s
}

// Ports are the class's destination ports.
func Ports(c classes.Class) []string {
	var s []string
	for _, p := range c.Ports {
		s = append(s, p.String())
	}
	return s
}

// Name is the class in one line: "ipv6 tcp uid any to ::/0 port 1-65535".
func Name(c classes.Class) string {
	return fmt.Sprintf("%s %s %s to %s port %s", c.Family, c.Proto, Source(c),
		brief(Addresses(c), 3), brief(Ports(c), 4))
}

// brief joins a list, cut after max items.
func brief(items []string, max int) string {
	if len(items) > max {
		return strings.Join(items[:max], ",") + fmt.Sprintf(",… (%d more)", len(items)-max)
	}
	return strings.Join(items, ",")
}

// Line is the run's completeness in one line: "6 classes over uid, gid,
// daddr, dport, proto, family: all probed; 1 match not split: ...", given
// how many probed classes could not be probed.
func (cm *Completeness) Line(errors int) string {
	if cm == nil {
		return ""
	}
	line := fmt.Sprintf("%s over uid, gid, daddr, dport, proto, family: ", countOf(cm.Classes, "class", "classes"))
	if cm.Forwarded > 0 {
		line = fmt.Sprintf("%s over uid, gid, daddr, dport, proto, family and %s over network, saddr, daddr, dport, proto, family: ",
			countOf(cm.Classes-cm.Forwarded, "class", "classes"), countOf(cm.Forwarded, "class of forwarded traffic", "classes of forwarded traffic"))
	}
	if errs := errors + len(cm.Unprobed); errs > 0 {
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

// WriteTable writes the table of classes below the policy's table: one row
// per class, failing ones marked '!' (and painted by fail), sampled ones
// '~'; then the failing classes in full and the completeness line.
func WriteTable(b *bytes.Buffer, rows []Row, line string, fail func(string) string) {
	table := [][]string{{"", "family", "proto", "source", "daddr", "dport", "probed as", "expected", "observed"}}
	for _, c := range rows {
		mark := " "
		if c.Class.Sampled {
			mark = "~"
		}
		if !c.Pass {
			mark = "!"
		}
		expected := string(c.Expected)
		if expected == "" {
			expected = "(none)"
		}
		table = append(table, []string{mark, c.Class.Family.String(), c.Class.Proto.String(), Source(c.Class),
			brief(Addresses(c.Class), 3), brief(Ports(c.Class), 4), c.Probed, expected, c.Observed.String()})
	}
	widths := make([]int, len(table[0]))
	for _, row := range table {
		for i, cell := range row {
			widths[i] = max(widths[i], len([]rune(cell)))
		}
	}
	b.WriteString("\nclasses of the loaded ruleset (! fails, ~ sampled)\n")
	for k, row := range table {
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
			s = fail(s)
		}
		b.WriteString(s + "\n")
	}
	failures := Failures(rows)
	if failures > 0 {
		fmt.Fprintf(b, "\n%s:\n", fail(strings.ToUpper(countOf(failures, "failing class", "failing classes"))))
		for _, c := range rows {
			if c.Pass {
				continue
			}
			fmt.Fprintf(b, "  %s %s: %s", kindWord(c.Failure), Name(c.Class), c.Probed+"/"+c.Proto+": "+c.Verdict)
			if c.DetailLine != "" {
				b.WriteString(" — " + c.DetailLine)
			}
			if c.Line > 0 {
				fmt.Fprintf(b, " (policy line %d)", c.Line)
			}
			if c.DecidedBy != "" && !c.Untraced {
				b.WriteString("\n      decided by " + c.DecidedBy)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\ncompleteness: " + line + "\n")
	n := len(rows)
	fmt.Fprintf(b, "%s: %d passed, %d failed, %d errors\n", countOf(n, "class", "classes"), n-failures, failures, Errors(rows))
}

// kindWord is a failure kind in capitals: BYPASS, NOT COVERED.
func kindWord(kind string) string {
	return strings.ToUpper(strings.ReplaceAll(kind, "-", " "))
}

// JUnitText is a failing class's JUnit failure text.
func (c Row) JUnitText() string {
	text := c.DetailLine
	if c.Line > 0 {
		text += fmt.Sprintf("\npolicy line %d", c.Line)
	}
	if c.DecidedBy != "" {
		text += "\ndecided by " + c.DecidedBy
	}
	return text + "\nprobed as " + c.Probed + "/" + c.Proto + "\n"
}

// JSONClass is a class in the JSON document, SPEC's keys.
type JSONClass struct {
	Source         jsonSource    `json:"source"`
	Addresses      []string      `json:"addresses"`
	Ports          []string      `json:"ports"`
	Proto          string        `json:"proto"`
	Family         string        `json:"family"`
	Representative any           `json:"representative"` // jsonRep or jsonClientRep
	Expected       policy.Verb   `json:"expected"`
	Observed       probe.Outcome `json:"observed"`
	Pass           bool          `json:"pass"`
	Failure        string        `json:"failure,omitempty"`
	Detail         string        `json:"detail,omitempty"`
	Evidence       any           `json:"evidence"`
	Rule           any           `json:"rule"`
	Complete       bool          `json:"complete"`
	Unsplit        []string      `json:"unsplit,omitempty"` // what makes it sampled
}

// jsonSource is a host class's uids and gids, or a forwarded class's
// network and source addresses.
type jsonSource struct {
	UIDs        []string `json:"uids,omitempty"`
	GIDs        []string `json:"gids,omitempty"`
	SupplGroups bool     `json:"suppl_groups,omitempty"`
	Network     string   `json:"network,omitempty"`
	Addresses   []string `json:"addresses,omitempty"`
}

type jsonRep struct {
	User    string `json:"user"` // the policy user, or "" for a synthetic identity
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	Host    string `json:"host,omitempty"`
	Address string `json:"address"`
	Port    uint16 `json:"port"`
}

// jsonClientRep is a forwarded class's representative: the policy client
// ("" for a synthetic one) and the address it sent from.
type jsonClientRep struct {
	Client  string `json:"client"`
	Network string `json:"network"`
	Source  string `json:"source"`
	Host    string `json:"host,omitempty"`
	Address string `json:"address"`
	Port    uint16 `json:"port"`
}

// JSONCompleteness is the JSON document's completeness.
type JSONCompleteness struct {
	Classes   int      `json:"classes"`
	Forwarded int      `json:"forwarded,omitempty"`
	Line      string   `json:"line"`
	Unsplit   []string `json:"unsplit"`
	Unread    []string `json:"unread,omitempty"`
	Unprobed  []string `json:"unprobed,omitempty"`
}

func rangeStrings[T fmt.Stringer](rs []T) []string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return s
}

func toJSON(c Row) JSONClass {
	rep := c.Class.Representative
	j := JSONClass{
		Source:    jsonSource{UIDs: rangeStrings(c.Class.Source.UIDs), GIDs: rangeStrings(c.Class.Source.GIDs), SupplGroups: c.Class.Source.SupplGroups},
		Addresses: Addresses(c.Class), Ports: Ports(c.Class), Proto: c.Class.Proto.String(), Family: c.Class.Family.String(),
		Representative: jsonRep{User: rep.User, UID: rep.UID, GID: rep.GID, Host: c.Host, Address: rep.Addr.String(), Port: rep.Port},
		Expected:       c.Expected, Observed: c.Observed, Pass: c.Pass, Failure: c.Failure, Detail: c.Detail,
		Evidence: c.Evidence, Rule: c.Rule, Complete: !c.Class.Sampled,
	}
	if c.Class.Network != "" {
		j.Source = jsonSource{Network: c.Class.Network, Addresses: rangeStrings(c.Class.Sources)}
		client := rep.Client
		if !rep.PolicyClient {
			client = ""
		}
		j.Representative = jsonClientRep{Client: client, Network: c.Class.Network, Source: rep.Src.String(), Host: c.Host, Address: rep.Addr.String(), Port: rep.Port}
	}
	for _, u := range c.Class.Unsplit {
		j.Unsplit = append(j.Unsplit, u.Match+" in "+u.Rule.String())
	}
	return j
}

// JSON is the classes and the completeness of the JSON document (nil
// without --complete).
func JSON(rows []Row, cm *Completeness) ([]JSONClass, *JSONCompleteness) {
	if cm == nil {
		return nil, nil
	}
	out := make([]JSONClass, len(rows))
	for i, c := range rows {
		out[i] = toJSON(c)
	}
	j := &JSONCompleteness{Classes: cm.Classes, Forwarded: cm.Forwarded, Line: cm.Line(Errors(rows)), Unsplit: []string{}, Unread: cm.Unread, Unprobed: cm.Unprobed}
	for _, u := range cm.Unsplit {
		j.Unsplit = append(j.Unsplit, u.Match+" in "+u.Rule.String())
	}
	return out, j
}

// countOf is "1 class", "2 classes".
func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
