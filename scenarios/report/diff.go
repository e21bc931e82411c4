package report

import (
	"github.com/egresslab/egresslab/scenarios/report/words"

	"encoding/json"
	"fmt"
	"io"
	"net/netip"

	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/policy"
	"github.com/egresslab/egresslab/scenarios/report/complete"
)

// Flip is one probe whose outcome changed between two rulesets: the rollout
// gate's unit. Old and New are the same cell (user, host, address, port) as
// each policy's own run saw it.
type Flip struct {
	Old, New Result
}

// Regression reports whether the cell met its expectation before and fails now.
func (f Flip) Regression() bool { return f.Old.Pass() && !f.New.Pass() }

// Diff is the comparison of two runs, cell by cell.
type Diff struct {
	Old, New *Report
	Flips    []Flip // in the new policy's matrix order
	OnlyOld  int    // cells the old policy probes and the new one does not
	OnlyNew  int
	// ClassFlips: with --complete, the classes whose outcome changed.
	ClassFlips []ClassFlip
}

// Regressions counts the flips that passed before and fail now.
func (d *Diff) Regressions() int {
	n := 0
	for _, f := range d.Flips {
		if f.Regression() {
			n++
		}
	}
	return n + d.ClassRegressions()
}

// Errors counts probes of either run that could not run.
func (d *Diff) Errors() int {
	return d.Old.Summary().Errors + d.New.Summary().Errors + d.Old.ClassErrors() + d.New.ClassErrors()
}

type probeKey struct {
	user, host string
	addr       netip.Addr
	port       policy.Port
}

func keyOf(r Result) probeKey { return probeKey{r.SourceName(), r.Host, r.Address, r.Port} }

// CompareRuns lists the cells whose observed outcome differs between two
// reports. Cells only one report has are counted, not compared.
func CompareRuns(oldRep, newRep *Report) *Diff {
	d := &Diff{Old: oldRep, New: newRep}
	before := map[probeKey]Result{}
	for _, r := range oldRep.Results {
		before[keyOf(r)] = r
	}
	seen := map[probeKey]bool{}
	for _, r := range newRep.Results {
		k := keyOf(r)
		o, ok := before[k]
		if !ok {
			d.OnlyNew++
			continue
		}
		seen[k] = true
		if o.Observed != r.Observed {
			d.Flips = append(d.Flips, Flip{Old: o, New: r})
		}
	}
	d.OnlyOld = len(before) - len(seen)
	d.ClassFlips = CompareClasses(oldRep, newRep)
	return d
}

// WriteText prints only the flipped cells, old -> new, each with whether it
// meets its policy and what decided it on either side, then a summary line.
func (d *Diff) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "diff %s -> %s\n\n", d.Old.Policy, d.New.Policy)
	for _, f := range d.Flips {
		mark := " "
		if f.Regression() {
			mark = "!"
		}
		fmt.Fprintf(w, "%s %s: %s -> %s   (%s)\n", mark, f.New.Probe, f.Old.Observed, f.New.Observed, f.verdicts())
		for _, side := range []struct {
			name string
			r    Result
		}{{"old", f.Old}, {"new", f.New}} {
			if why := decidedBy(side.r); why != "" {
				fmt.Fprintf(w, "    %s: %s\n", side.name, why)
			}
		}
	}
	if len(d.Flips) > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%s flipped, %d now failing that passed", Plural(len(d.Flips), "cell"), d.Regressions())
	if d.OnlyOld+d.OnlyNew > 0 {
		fmt.Fprintf(w, "; not compared: %d cells only in the old policy, %d only in the new", d.OnlyOld, d.OnlyNew)
	}
	if n := d.Errors(); n > 0 {
		fmt.Fprintf(w, "; %s", Plural(n, "probe error"))
	}
	_, err := fmt.Fprintln(w)
	d.writeClassFlips(w)
	return err
}

// verdicts is "expected deny: FAIL -> pass", naming the expectation twice
// only when the two policies expect different things.
func (f Flip) verdicts() string {
	word := func(r Result) string {
		if r.Pass() {
			return "pass"
		}
		return "FAIL"
	}
	if f.Old.Expect == f.New.Expect {
		return fmt.Sprintf("expected %s: %s -> %s", f.New.Expect, word(f.Old), word(f.New))
	}
	return fmt.Sprintf("expected %s: %s -> expected %s: %s", f.Old.Expect, word(f.Old), f.New.Expect, word(f.New))
}

// decidedBy is what decided the probe, as far as the run can say: the
// deciding rule where the trace named it, and the prober's detail.
func decidedBy(r Result) string {
	d := OneLine(r.Detail)
	if r.Decider == nil {
		return d
	}
	return words.DecidedBy(r.Decider) + " — " + d
}

type jsonFlipSide struct {
	Observed probe.Outcome `json:"observed"`
	Expected policy.Verb   `json:"expected"`
	Pass     bool          `json:"pass"`
	Detail   string        `json:"detail"`
	Evidence jsonEvidence  `json:"evidence"`
	Rule     *trace.Rule   `json:"rule"`
}

type jsonFlip struct {
	User    string       `json:"user"`
	Host    string       `json:"host"`
	Address string       `json:"address"`
	Family  string       `json:"family"`
	Port    uint16       `json:"port"`
	Proto   string       `json:"proto"`
	Old     jsonFlipSide `json:"old"`
	New     jsonFlipSide `json:"new"`
}

// WriteJSON writes {"old", "new", "regressions", "flips": [...]}, indented.
func (d *Diff) WriteJSON(w io.Writer) error {
	doc := struct {
		Old         string              `json:"old"`
		New         string              `json:"new"`
		Regressions int                 `json:"regressions"`
		Flips       []jsonFlip          `json:"flips"`
		Classes     []complete.JSONFlip `json:"classes,omitempty"` // --complete
	}{d.Old.Policy, d.New.Policy, d.Regressions(), []jsonFlip{}, d.jsonClassFlips()}
	side := func(r Result) jsonFlipSide {
		return jsonFlipSide{Observed: r.Observed, Expected: r.Expect, Pass: r.Pass(), Detail: r.Detail, Evidence: evidenceJSON(r), Rule: r.Decider}
	}
	for _, f := range d.Flips {
		n := f.New
		doc.Flips = append(doc.Flips, jsonFlip{User: n.SourceName(), Host: n.Host, Address: n.Address.String(), Family: n.Family(),
			Port: n.Port.Number, Proto: n.Port.Proto, Old: side(f.Old), New: side(f.New)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}
