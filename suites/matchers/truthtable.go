package matchers

import (
	"fmt"
	"strings"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/onsi/gomega/gcustom"
	"github.com/onsi/gomega/types"
)

// Cell selects probes of a report; empty fields match anything. Port is
// written as in a policy ("25/tcp"); Family is "ipv4" or "ipv6".
type Cell struct {
	User, Host, Family, Address, Port string
	Outcome                           probe.Outcome
}

func (c Cell) matches(r scenarios.Result) bool {
	return (c.User == "" || c.User == r.User.Name) &&
		(c.Host == "" || c.Host == r.Host) &&
		(c.Family == "" || c.Family == r.Family()) &&
		(c.Address == "" || c.Address == r.Address.String()) &&
		(c.Port == "" || c.Port == r.Port.String())
}

// MatchTruthTable succeeds on a *scenarios.Report whose whole truth table is
// right. Without cells, right is what the policy's own `expect` says (as
// `egresslab verify` judges). With cells, each probe must have observed the
// outcome of the first cell that selects it, and every probe must be
// selected. The whole matrix is one assertion: on failure the message is the
// truth table, the wrong cells grouped by kind, and an `egresslab exec`
// command per wrong cell that replays it with a real client.
func MatchTruthTable(cells ...Cell) types.GomegaMatcher {
	t := truthTable{cells: cells, byPolicy: len(cells) == 0}
	return gcustom.MakeMatcher(func(rep *scenarios.Report) (bool, error) {
		if rep == nil {
			return false, fmt.Errorf("MatchTruthTable wants a *scenarios.Report, got nil")
		}
		if len(rep.Results) == 0 {
			return false, fmt.Errorf("the report of policy %s has no probes: nothing to match", rep.Policy)
		}
		return len(t.wrong(rep)) == 0, nil
	}).WithTemplate("{{.Data.Explain .Actual .Failure}}", t)
}

// HaveOutcomes is MatchTruthTable with the outcome of every cell given:
// every probe must be selected by a cell and have observed its outcome.
func HaveOutcomes(cells ...Cell) types.GomegaMatcher {
	t := truthTable{cells: cells}
	return gcustom.MakeMatcher(func(rep *scenarios.Report) (bool, error) {
		if rep == nil {
			return false, fmt.Errorf("HaveOutcomes wants a *scenarios.Report, got nil")
		}
		return len(t.wrong(rep)) == 0, nil
	}).WithTemplate("{{.Data.Explain .Actual .Failure}}", t)
}

type truthTable struct {
	cells    []Cell
	byPolicy bool
}

// wrongCell is a probe that is not as the table says, and why.
type wrongCell struct {
	result scenarios.Result
	why    string
}

func (t truthTable) wrong(rep *scenarios.Report) []wrongCell {
	var wrong []wrongCell
	for _, r := range rep.Results {
		if t.byPolicy {
			if !r.Pass() {
				wrong = append(wrong, wrongCell{r, fmt.Sprintf("expected %s, observed %s", r.Expect, r.Observed)})
			}
			continue
		}
		i := -1
		for j, c := range t.cells {
			if c.matches(r) {
				i = j
				break
			}
		}
		switch {
		case i < 0:
			wrong = append(wrong, wrongCell{r, fmt.Sprintf("observed %s, but no expected cell selects it", r.Observed)})
		case r.Observed != t.cells[i].Outcome:
			wrong = append(wrong, wrongCell{r, fmt.Sprintf("want %s, observed %s", t.cells[i].Outcome, r.Observed)})
		}
	}
	return wrong
}

// Explain is the failure message: the table, then each wrong cell with the
// command that replays it.
func (t truthTable) Explain(actual any, failure bool) string {
	rep, ok := actual.(*scenarios.Report)
	if !ok || rep == nil {
		return fmt.Sprintf("want a *scenarios.Report, got %T", actual)
	}
	if !failure {
		return fmt.Sprintf("expected some probe of policy %s to be wrong, but all %d were as the table says", rep.Policy, len(rep.Results))
	}
	wrong := t.wrong(rep)
	var b strings.Builder
	by := "the test's table"
	if t.byPolicy {
		by = "the policy"
	}
	fmt.Fprintf(&b, "policy %s: %d of %d probes are not as %s says\n\n", rep.Policy, len(wrong), len(rep.Results), by)
	_ = rep.WriteTable(&b, false)
	b.WriteString("\nreproduce each wrong cell with a real client, as its user, in a lab of the policy:\n")
	for _, w := range wrong {
		fmt.Fprintf(&b, "  %s: %s\n    %s\n", w.result.Probe, w.why, w.result.ExecCommand(rep.File))
	}
	return b.String()
}
