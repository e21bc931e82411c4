package scenarios

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/ruleset"
	"github.com/egresslab/egresslab/netns/sentinel"
	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/scenarios/report/words"
)

// probeWorkers is how many probes of one lab run at once.
const probeWorkers = 64

// RunOptions tune a run. The zero value is ready to use.
type RunOptions struct {
	// Backstop bounds the wait for an answer to a packet that left the lab
	// (probe.DefaultBackstop when zero). Drops at the lab's egress never wait.
	Backstop time.Duration
	// Progress, if set, is called after each probe with the count done.
	Progress func(done, total int)
	// NoRule skips tracing the rule that decided each probe (Result.Decider
	// stays nil): a little faster, and nothing to explain a mismatch with.
	NoRule bool
	// Only, if set, keeps the probes it holds and leaves the others out
	// (verify --shard: ShardSpec.Holds).
	Only func(Probe) bool
	// ToolTimeout bounds each candidate tool and script that loads the
	// ruleset (netns.DefaultToolTimeout when zero).
	ToolTimeout time.Duration
	// Complete also probes every class of traffic the loaded ruleset can
	// tell apart (verify --complete): Report.Classes.
	Complete bool
	// cross: a side of diff --complete, which splits both rulesets' union
	// (completediff.go).
	cross *crossSide
}

// Run verifies p in a lab of its own: it starts the lab, serves every host,
// loads the ruleset with the real tools, installs the drop sentinel, probes
// the whole matrix concurrently and compares. A ruleset the tools reject is
// a *ruleset.RulesetError; a lab that cannot start is a *netns.UnavailableError
// or another error.
//
// With opts.Complete, once the candidate is loaded its ruleset is read back
// and split into classes (complete.go), and each class's representative is
// probed with the matrix, in the same pass: Report.Classes.
func Run(ctx context.Context, p *Policy, opts RunOptions) (*Report, error) {
	lp, pp := planLab(p, opts), planProbes(p, opts)
	var cp *classPlan
	var afterLoad func(context.Context, *LabBench) ([]trace.Destination, error)
	if opts.Complete {
		afterLoad = func(ctx context.Context, lab *LabBench) ([]trace.Destination, error) {
			var err error
			if cp, err = planClasses(ctx, lab, p, opts.cross); err != nil {
				return nil, err
			}
			if err := cp.serve(lab, p); err != nil {
				return nil, err
			}
			// The representatives' IPv6 addresses the world now holds
			// must be live before they are probed, as the hosts' are.
			if err := lab.WaitWorldReady(ctx); err != nil {
				return nil, err
			}
			if err := cp.placeSources(ctx, lab, p); err != nil {
				return nil, err
			}
			return cp.destinations(), nil
		}
	}
	lab, err := startPlanned(ctx, lp, afterLoad)
	if err != nil {
		return nil, err
	}
	defer lab.Close()
	if cp != nil {
		pp.cells = append(pp.cells, cp.cells...)
		pp.skip = append(make([]bool, pp.matrix), cp.skip...)
		pp.traced = append(pp.traced, cp.destinations()...)
	}
	rep, err := probePlanned(ctx, lab, pp, opts)
	if cp != nil && rep != nil {
		all := rep.Results
		rep.Results = all[:pp.matrix]
		if err == nil {
			for i, c := range cp.classes {
				rep.Classes = append(rep.Classes, ClassResult{Class: c, Result: all[pp.matrix+i]})
			}
			rep.Completeness = &cp.completeness
		}
	}
	return rep, err
}

// StartLab starts the lab for p with its ruleset loaded and the sentinel in
// place, ready to probe. The caller closes it.
func StartLab(ctx context.Context, p *Policy) (*LabBench, error) {
	return startLab(ctx, p, RunOptions{})
}

// StartLabWith is StartLab for runs with opts: with NoRule, the lab makes
// nothing ready for tracing (its table, the listing of the candidate's rules).
func StartLabWith(ctx context.Context, p *Policy, opts RunOptions) (*LabBench, error) {
	return startLab(ctx, p, opts)
}

// startLab is StartLab; unless opts.NoRule, the trace table goes in with the
// sentinel and the listing of the candidate's rules starts, for ProbeAll to use.
func startLab(ctx context.Context, p *Policy, opts RunOptions) (*LabBench, error) {
	lp := planLab(p, opts)
	return startPlanned(ctx, lp, nil)
}

// startPlanned starts the lab lp describes: the namespaces, what is served,
// the candidate's ruleset, then the lab's own tables. afterLoad, if set, runs
// once the candidate is loaded and gives more destinations to trace.
func startPlanned(ctx context.Context, lp labPlan, afterLoad func(context.Context, *LabBench) ([]trace.Destination, error)) (_ *LabBench, err error) {
	core, err := netns.New(ctx, lp.config)
	if err != nil {
		return nil, err
	}
	lab := newLabBench(core)
	defer func() {
		if err != nil {
			lab.Close()
		}
	}()
	if err := lab.Serve(lp.services); err != nil {
		return nil, err
	}
	if err := lab.ServeRanges(lp.ranges); err != nil {
		return nil, err
	}
	if err := lab.ServeDNS(lp.zone); err != nil {
		return nil, err
	}
	if err := lab.WaitReady(ctx); err != nil {
		return nil, err
	}
	if err := ruleset.Load(ctx, lab.Lab, lp.ruleset); err != nil {
		return nil, err
	}
	dsts := lp.traced
	if afterLoad != nil {
		more, err := afterLoad(ctx, lab)
		if err != nil {
			return nil, err
		}
		if lp.tracing {
			dsts = append(dsts, more...)
		}
	}
	// The lab's own tables go in after the candidate (which may flush
	// everything): the drop sentinel and, with destinations to trace, the
	// trace table, in one netlink transaction.
	c, err := nftables.New(nftables.WithNetNSFd(lab.NetNSFD()))
	if err != nil {
		return nil, fmt.Errorf("nftables netlink in lab %s: %w", lab.Name(), err)
	}
	err = sentinel.Queue(c)
	var tb *trace.Table
	if err == nil && dsts != nil && lab.Backend() != "legacy" {
		tb, err = trace.Queue(c, dsts)
	}
	if err == nil {
		if err = c.Flush(); err != nil {
			if tamper := sentinel.PreMade(lab.Lab, err); tamper != nil {
				return nil, tamper
			}
		}
	}
	if err == nil && tb != nil {
		err = tb.Installed(ctx, lab.Lab, c)
	}
	if err != nil {
		return nil, fmt.Errorf("install the drop sentinel in lab %s: %w", lab.Name(), err)
	}
	lab.traceTable = tb // for the first StartTrace
	if err := sentinel.InstallForward(ctx, lab.Lab); err != nil {
		return nil, err
	}
	if lab.Sentinel, err = sentinel.Start(lab.Lab); err != nil {
		return nil, err
	}
	return lab, nil
}

// ProbeAll runs p's whole matrix in lab, concurrently, and then checks that the
// sentinel survived: if it did not, no "dropped" verdict can be trusted.
func ProbeAll(ctx context.Context, lab *LabBench, p *Policy, opts RunOptions) (*Report, error) {
	pp := planProbes(p, opts)
	return probePlanned(ctx, lab, pp, opts)
}

// probePlanned runs the cells pp holds in lab, as ProbeAll does.
func probePlanned(ctx context.Context, lab *LabBench, pp probePlan, opts RunOptions) (*Report, error) {
	if err := lab.CheckHarness(); err != nil {
		return nil, err
	}
	results := pp.cells
	explain, err := startExplaining(ctx, lab, pp.sources, pp.traced, results, opts)
	if err != nil {
		if ctx.Err() != nil {
			// Cancelled before any probe ran: the results it has are none.
			return &Report{Policy: pp.policy, File: pp.file, Results: results}, err
		}
		return nil, err
	}
	defer explain.stop()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(probeWorkers, len(results)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A thread of its own in the lab, or else the lab's shared
			// socket workers: slower, the same verdicts.
			on, leave := lab.prober()
			defer leave()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(results) {
					return
				}
				if pp.skip != nil && pp.skip[i] {
					continue
				}
				pr := results[i].Probe
				explain.pace()
				start := time.Now()
				r, flow := lab.dial(ctx, on, pr, opts)
				explain.record(i, flow)
				results[i] = Result{Probe: pr, Observed: r.Outcome, Evidence: r.Evidence, Detail: words.Detail(r), Duration: time.Since(start)}.
					WithSource(r.Facts.LeftAs.Addr())
				if opts.Progress != nil && i < pp.matrix {
					opts.Progress(int(done.Add(1)), pp.matrix)
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		// The results so far: a probe that ran has its outcome (an
		// interrupted one is an error); one that never ran has none.
		return &Report{Policy: pp.policy, File: pp.file, Results: results}, err
	}
	if err := lab.evidenceErr(); err != nil {
		return nil, err
	}
	if err := explain.finish(results); err != nil {
		return nil, err
	}
	if err := lab.CheckHarness(); err != nil {
		return nil, fmt.Errorf("after probing: %w", err)
	}
	return &Report{Policy: pp.policy, File: pp.file, Results: results}, nil
}
