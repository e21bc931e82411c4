package scenarios

import (
	"context"
	"strings"

	"github.com/egresslab/egresslab/netns"
)

// explainer traces a lab's probes to name the rule that decided each one.
type explainer struct {
	trace *netns.Trace // nil when not tracing
	flows []netns.Flow // each probe's flow, by matrix index
	// untraced says why the trace could not start: every probe says so
	// instead of naming a rule, and the verdicts stand without it.
	untraced string
}

func startExplaining(ctx context.Context, lab *netns.Lab, p *Policy, probes []Result, opts RunOptions) (*explainer, error) {
	e := &explainer{flows: make([]netns.Flow, len(probes))}
	if opts.NoRule {
		return e, nil
	}
	trace, err := lab.StartTrace(ctx, traceDestinations(p))
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
		e.trace = trace
	}
	return e, nil
}

// traceDestinations are every address and port range of p's hosts.
func traceDestinations(p *Policy) []netns.Destination {
	var dsts []netns.Destination
	for _, h := range p.Hosts {
		for _, a := range h.Addresses {
			for _, r := range h.Ports {
				dsts = append(dsts, netns.Destination{Addr: a, First: r.First, Last: r.Last})
			}
		}
	}
	return dsts
}

// finish reads the trace to its end and gives each result its rule.
func (e *explainer) finish(results []Result) error {
	if e.untraced != "" {
		for i := range results {
			results[i].Decider = &netns.Rule{Untraced: e.untraced}
		}
	}
	if e.trace == nil {
		return nil
	}
	if err := e.trace.Stop(); err != nil {
		return err
	}
	blocked := make([]bool, len(results))
	for i, r := range results {
		blocked[i] = r.Observed.Blocked()
	}
	for i, rule := range e.trace.DecideAll(e.flows, blocked) {
		results[i].Decider = rule
	}
	return nil
}

// pace holds a probe back while the trace's reader is far behind.
func (e *explainer) pace() {
	if e.trace != nil {
		e.trace.Pace()
	}
}

// stop ends a trace that finish did not: the run stopped early.
func (e *explainer) stop() {
	if e.trace != nil {
		_ = e.trace.Close()
	}
}
