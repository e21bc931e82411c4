package report

import (
	"github.com/egresslab/egresslab/scenarios/report/words"

	"bytes"
	"fmt"
	"io"
	"net/netip"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/classes"
	"github.com/egresslab/egresslab/scenarios/report/complete"
)

// verify --complete's classes are laid out by package complete; these keep
// the names a run and its callers use.
type (
	Completeness = complete.Completeness
	ClassFlip    = complete.Flip
)

// ClassResult is one class with its representative probed as a cell: User
// is a policy user or a synthetic identity ("uid 1000"), Host the policy
// host whose address it dialled or "" for an address outside every host.
type ClassResult struct {
	Result
	Class classes.Class
}

// Synthetic says the class was probed as an identity or a client the
// policy does not name.
func (c ClassResult) Synthetic() bool {
	if c.Class.Network != "" {
		return !c.Class.Representative.PolicyClient
	}
	return !c.Class.Representative.PolicyUser
}

// SourceString is a class's identities: "uid 107", "any" (complete.Source).
func (c ClassResult) SourceString() string { return complete.Source(c.Class) }

// AddressStrings are the class's destinations, prefixes where exact.
func (c ClassResult) AddressStrings() []string { return complete.Addresses(c.Class) }

// PortStrings are the class's destination ports.
func (c ClassResult) PortStrings() []string { return complete.Ports(c.Class) }

// Name is the class in one line: "ipv6 tcp uid any to ::/0 port 1-65535".
func (c ClassResult) Name() string { return complete.Name(c.Class) }

// row is the class and its probe in the words of a probe's report.
func (c ClassResult) row() complete.Row {
	row := complete.Row{
		Class: c.Class, Probed: fmt.Sprintf("%s -> %s", c.SourceName(), netip.AddrPortFrom(c.Address, c.Port.Number)),
		Proto: c.Port.Proto, Host: c.Host, Expected: c.Expect, Observed: c.Observed, Pass: c.Pass(), Failure: kindName(c.Kind()),
		Verdict: c.Verdict(), Detail: c.Detail, DetailLine: OneLine(c.Detail), Line: c.Line,
		Evidence: evidenceJSON(c.Result), Rule: ruleOf(c.Result),
	}
	if d := c.Decider; d != nil {
		row.DecidedBy, row.Untraced = words.DecidedBy(d), d.Untraced != ""
	}
	return row
}

func (r *Report) classRows() []complete.Row {
	rows := make([]complete.Row, len(r.Classes))
	for i, c := range r.Classes {
		rows[i] = c.row()
	}
	return rows
}

// ClassFailures counts the classes whose representative did not meet its
// expectation (errors and classes no expectation covers included).
func (r *Report) ClassFailures() int { return complete.Failures(r.classRows()) }

// ClassErrors counts the classes that could not be probed.
func (r *Report) ClassErrors() int { return complete.Errors(r.classRows()) }

// CompletenessLine is the run's completeness in one line: "6 classes over
// uid, gid, daddr, dport, proto, family: all probed; 1 match not split: ...".
func (r *Report) CompletenessLine() string { return r.Completeness.Line(r.ClassErrors()) }

// writeClasses writes the table of classes below the policy's table.
func (r *Report) writeClasses(b *bytes.Buffer, paint func(code, s string) string) {
	if r.Completeness == nil {
		return
	}
	complete.WriteTable(b, r.classRows(), r.CompletenessLine(), func(s string) string { return paint(red, s) })
}

// jsonClasses are the report's classes for its JSON document (nil without --complete).
func (r *Report) jsonClasses() ([]complete.JSONClass, *complete.JSONCompleteness) {
	return complete.JSON(r.classRows(), r.Completeness)
}

// junitClasses are a JUnit case per failing class.
func (r *Report) junitClasses() (cases []junitCase, failures, errors int) {
	for _, c := range r.Classes {
		k := c.Kind()
		if k == Passed {
			continue
		}
		msg := &junitMessage{Message: c.Verdict(), Type: kindName(k), Text: c.row().JUnitText()}
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

// CompareClasses lists the classes whose outcome changed, in the new run's
// order, then those only the old run had.
func CompareClasses(oldRep, newRep *Report) []ClassFlip {
	return complete.Compare(oldRep.classRows(), newRep.classRows())
}

// writeClassFlips prints the changed classes below the cells.
func (d *Diff) writeClassFlips(w io.Writer) {
	if d.Old.Completeness == nil || d.New.Completeness == nil {
		return
	}
	complete.WriteFlips(w, d.ClassFlips, d.Old.CompletenessLine(), d.New.CompletenessLine())
}

// ClassRegressions counts the class flips that fail now and did not before.
func (d *Diff) ClassRegressions() int { return complete.Regressions(d.ClassFlips) }

func (d *Diff) jsonClassFlips() []complete.JSONFlip {
	if d.Old.Completeness == nil || d.New.Completeness == nil {
		return nil
	}
	return complete.JSONFlips(d.ClassFlips)
}
