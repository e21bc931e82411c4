package scenarios

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/ruleset"
	"github.com/egresslab/egresslab/netns/serve"
	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/scenarios/report"
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
	// afterLoad runs once the candidate is loaded, before the lab's own
	// tables go in; it returns more destinations to trace.
	afterLoad func(context.Context, *LabBench) ([]trace.Destination, error)
}

// Run verifies p in a lab of its own: it starts the lab, serves every host,
// loads the ruleset with the real tools, installs the drop sentinel, probes
// the whole matrix concurrently and compares. A ruleset the tools reject is
// a *ruleset.RulesetError; a lab that cannot start is a *netns.UnavailableError
// or another error.
func Run(ctx context.Context, p *Policy, opts RunOptions) (*Report, error) {
	if opts.Complete {
		return runComplete(ctx, p, opts)
	}
	lab, err := StartLabWith(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	defer lab.Close()
	return ProbeAll(ctx, lab, p, opts)
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
	cfg := labConfig(p)
	cfg.ToolTimeout = opts.ToolTimeout
	core, err := netns.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	lab := newLabBench(core)
	if err := serveHosts(lab, p); err != nil {
		lab.Close()
		return nil, err
	}
	if err := lab.WaitReady(ctx); err != nil {
		lab.Close()
		return nil, err
	}
	if err := loadRuleset(ctx, lab, p.Ruleset); err != nil {
		lab.Close()
		return nil, err
	}
	var dsts []trace.Destination
	if !opts.NoRule {
		dsts = traceDestinations(p)
	}
	if opts.afterLoad != nil {
		more, err := opts.afterLoad(ctx, lab)
		if err != nil {
			lab.Close()
			return nil, err
		}
		if !opts.NoRule {
			dsts = append(dsts, more...)
		}
	}
	if err := lab.InstallSentinel(ctx, dsts); err != nil {
		lab.Close()
		return nil, err
	}
	return lab, nil
}

func labConfig(p *Policy) netns.Config {
	cfg := netns.Config{Name: p.Name, Uplink: p.Lab.Uplink, UplinkAddrs: p.Lab.Addresses, Backend: p.Lab.Backend, Networks: labNetworks(p)}
	for _, u := range p.Users {
		cfg.Accounts = append(cfg.Accounts, netns.Account{Name: u.Name, Identity: Identity(u)})
	}
	for _, g := range p.Groups {
		cfg.Groups = append(cfg.Groups, netns.Group{Name: g.Name, GID: g.GID})
	}
	return cfg
}

// Identity is the lab identity a policy user probes as.
func Identity(u User) netns.Identity {
	return netns.Identity{UID: u.UID, GID: u.GID, Groups: u.Groups}
}

func serveHosts(lab *LabBench, p *Policy) error {
	zone := serve.Zone{Hosts: map[string][]netip.Addr{}, MX: map[string]string{}}
	var services []serve.Service
	var ranges []serve.RangeService
	for _, h := range p.Hosts {
		zone.Hosts[h.Name] = h.Addresses
		for _, a := range h.Addresses {
			for _, r := range h.Ports {
				if r.First == r.Last {
					services = append(services, serve.Service{Host: h.Name, Addr: a, Port: r.First, Proto: r.Proto, ServedBy: servedBy(p, h)})
				} else {
					ranges = append(ranges, serve.RangeService{Host: h.Name, Addr: a, First: r.First, Last: r.Last, Proto: r.Proto, ServedBy: servedBy(p, h)})
				}
			}
		}
	}
	for _, mx := range p.MX {
		zone.MX[mx.Domain] = mx.Host
	}
	if err := lab.Serve(services); err != nil {
		return err
	}
	if err := lab.ServeRanges(ranges); err != nil {
		return err
	}
	return lab.ServeDNS(zone)
}

// servedBy is the identity h's listeners run as: its served-by user, or the
// lab's root.
func servedBy(p *Policy, h Host) netns.Identity {
	if u, ok := p.User(h.ServedBy); ok {
		return Identity(u)
	}
	return netns.Identity{}
}

// loadRuleset loads the parts in SPEC.md's order: iptables, ip6tables, nft, script.
func loadRuleset(ctx context.Context, lab *LabBench, rs Ruleset) error {
	if f := rs.IPTables; f != nil {
		if err := ruleset.LoadIPTables(ctx, lab.Lab, false, f.Path, f.Data); err != nil {
			return err
		}
	}
	if f := rs.IP6Tables; f != nil {
		if err := ruleset.LoadIPTables(ctx, lab.Lab, true, f.Path, f.Data); err != nil {
			return err
		}
	}
	if f := rs.NFT; f != nil {
		if err := ruleset.LoadNFT(ctx, lab.Lab, f.Path, f.Data, f.Includes...); err != nil {
			return err
		}
	}
	if f := rs.Script; f != nil {
		if err := ruleset.RunScript(ctx, lab.Lab, f.Path, f.Data); err != nil {
			return err
		}
	}
	return nil
}

// ProbeAll runs p's whole matrix in lab, concurrently, and then checks that the
// sentinel survived: if it did not, no "dropped" verdict can be trusted.
func ProbeAll(ctx context.Context, lab *LabBench, p *Policy, opts RunOptions) (*Report, error) {
	if err := lab.CheckHarness(); err != nil {
		return nil, err
	}
	// The results hold the matrix: a sweep keeps one copy of each probe.
	results := make([]Result, 0, p.Size())
	for pr := range p.Probes() {
		if opts.Only == nil || opts.Only(pr) {
			results = append(results, Result{Probe: pr})
		}
	}
	explain, err := startExplaining(ctx, lab, p, traceDestinations(p), results, opts)
	if err != nil {
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
				pr := results[i].Probe
				explain.pace()
				start := time.Now()
				r, flow := lab.dial(ctx, on, pr, opts)
				explain.record(i, flow)
				results[i] = Result{Probe: pr, Observed: r.Outcome, Evidence: r.Evidence, Detail: report.Detail(r), Duration: time.Since(start)}.
					WithSource(r.Facts.LeftAs.Addr())
				if opts.Progress != nil {
					opts.Progress(int(done.Add(1)), len(results))
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		// The results so far: a probe that ran has its outcome (an
		// interrupted one is an error); one that never ran has none.
		return &Report{Policy: p.Name, File: p.File, Results: results}, err
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
	return &Report{Policy: p.Name, File: p.File, Results: results}, nil
}
