// Package suites holds egresslab's Ginkgo suites (the catalogue, the
// harness's own guarantees, the testdata examples) and the Gomega matchers
// users can import for their own suites.
package suites

import (
	"fmt"
	"strings"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
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

// HaveOutcomes succeeds when every probe of a *scenarios.Report observed the
// outcome of the first cell that selects it, and every probe is selected.
// The whole matrix is one assertion: on failure the message lists every
// wrong cell with expected and observed and what answered.
func HaveOutcomes(cells ...Cell) types.GomegaMatcher { return &outcomesMatcher{cells: cells} }

type outcomesMatcher struct{ cells []Cell }

func (m *outcomesMatcher) Match(actual any) (bool, error) {
	rep, ok := actual.(*scenarios.Report)
	if !ok || rep == nil {
		return false, fmt.Errorf("HaveOutcomes wants a *scenarios.Report, got %T", actual)
	}
	return len(wrongCells(rep, m.cells)) == 0, nil
}

func (m *outcomesMatcher) FailureMessage(actual any) string {
	return FailureTable(actual.(*scenarios.Report), m.cells...)
}

func (m *outcomesMatcher) NegatedFailureMessage(actual any) string {
	return "expected some probe to observe another outcome than its cell says, but every probe matched"
}

func wrongCells(rep *scenarios.Report, cells []Cell) []string {
	var wrong []string
	for _, r := range rep.Results {
		want, ok := Cell{}, false
		for _, c := range cells {
			if c.matches(r) {
				want, ok = c, true
				break
			}
		}
		switch {
		case !ok:
			wrong = append(wrong, fmt.Sprintf("%s: observed %s, but no expected cell selects it", r.Probe, r.Observed))
		case r.Observed != want.Outcome:
			wrong = append(wrong, fmt.Sprintf("%s: want %s, observed %s (%s)", r.Probe, want.Outcome, r.Observed, r.Detail))
		}
	}
	return wrong
}

// FailureTable describes every wrong cell of rep; empty when all are right.
func FailureTable(rep *scenarios.Report, cells ...Cell) string {
	wrong := wrongCells(rep, cells)
	if len(wrong) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "policy %s: %d of %d probes observed the wrong outcome:\n", rep.Policy, len(wrong), len(rep.Results))
	for _, w := range wrong {
		b.WriteString("  " + w + "\n")
	}
	b.WriteString("\nthe whole truth table:\n")
	_ = rep.WriteTable(&b, false)
	return b.String()
}
