package scenarios

import (
	"context"
	"net/netip"
	"strings"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/scenarios/report"
)

// explainer traces a lab's probes to name the rule that decided each one.
type explainer struct {
	trace *trace.Trace // nil when not tracing
	// srcs is where each probe's flow came from, by matrix index (its
	// destination and protocol are the probe's): what picks its packets
	// out of the trace. Invalid for a probe that never bound.
	srcs []netip.AddrPort
	// untraced says why the trace could not start: every probe says so
	// instead of naming a rule, and the verdicts stand without it.
	untraced string
	// sources place a traced rule in the candidate's files.
	sources report.RuleSources
}

// startExplaining starts tracing probes to dsts; sources place the rules it
// names in the candidate's files.
func startExplaining(ctx context.Context, lab *LabBench, sources report.RuleSources, dsts []trace.Destination, probes []Result, opts RunOptions) (*explainer, error) {
	e := &explainer{}
	if opts.NoRule {
		return e, nil
	}
	tr, err := lab.StartTrace(ctx, dsts)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		// Explaining is an addition to the verdicts, never a condition
		// for them.
		msg := err.Error()
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		e.untraced = "the lab could not trace this run: " + msg
	default:
		e.trace = tr
		e.srcs = make([]netip.AddrPort, len(probes))
		e.sources = sources
	}
	return e, nil
}

// finish reads the trace to its end and gives each result its rule.
func (e *explainer) finish(results []Result) error {
	if e.untraced != "" {
		untraced := &trace.Rule{Untraced: e.untraced} // one, shared
		for i := range results {
			results[i].Decider = untraced
		}
	}
	if e.trace == nil {
		return nil
	}
	if err := e.trace.Stop(); err != nil {
		return err
	}
	rules := e.trace.DecideAll(len(results), func(i int) (netns.Flow, bool) {
		r := results[i]
		f := netns.Flow{Src: e.srcs[i], Dst: netip.AddrPortFrom(r.Address, r.Port.Number), Proto: r.Port.Proto}
		return f, r.Observed.Blocked()
	})
	at := map[*trace.Rule]*RuleSource{} // rules are shared: place each once
	for i, rule := range rules {
		results[i].Decider = rule
		if rule == nil {
			continue
		}
		place, ok := at[rule]
		if !ok {
			if src, found := e.sources.Of(rule); found {
				place = &src
			}
			at[rule] = place
		}
		results[i].DeciderAt = place
	}
	e.srcs = nil
	return nil
}

// pace holds a probe back while the trace's reader is far behind.
func (e *explainer) pace() {
	if e.trace != nil {
		e.trace.Pace()
	}
}

// record keeps probe i's flow, for the trace to pick its packets out.
func (e *explainer) record(i int, f netns.Flow) {
	if e.srcs != nil {
		e.srcs[i] = f.Src
	}
}

// stop ends a trace that finish did not: the run stopped early.
func (e *explainer) stop() {
	if e.trace != nil {
		_ = e.trace.Close()
	}
}
