package scenarios

import (
	"net/netip"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/ruleset"
	"github.com/egresslab/egresslab/netns/serve"
	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/scenarios/report"
)

// labPlan is the policy turned, once, into the plain values its lab is made
// of: the namespaces and identities, what is served, the ruleset's parts and
// what the trace watches. Starting a lab walks down with it and never goes
// back to the policy for a fact.
type labPlan struct {
	config   netns.Config
	services []serve.Service
	ranges   []serve.RangeService
	zone     serve.Zone
	ruleset  ruleset.Set
	// tracing says the trace table goes in, watching traced.
	tracing bool
	traced  []trace.Destination
}

// probePlan is the policy's cells to probe in a lab, with what explaining
// them needs: the destinations the trace watches and where the candidate's
// files wrote each rule.
type probePlan struct {
	policy, file string
	// cells are the matrix (or the part of it opts.Only holds), then any
	// classes' cells (--complete); skip marks cells whose result is given.
	cells   []Result
	matrix  int // how many of cells are the matrix's: progress counts these
	skip    []bool
	traced  []trace.Destination
	sources report.RuleSources // nil with NoRule
}

func planProbes(p *Policy, opts RunOptions) probePlan {
	pp := probePlan{policy: p.Name, file: p.File, traced: traceDestinations(p)}
	// The results hold the matrix: a sweep keeps one copy of each probe.
	pp.cells = make([]Result, 0, p.Size())
	for pr := range p.Probes() {
		if opts.Only == nil || opts.Only(pr) {
			pp.cells = append(pp.cells, Result{Probe: pr})
		}
	}
	pp.matrix = len(pp.cells)
	if !opts.NoRule {
		pp.sources = report.SourcesOf(p)
	}
	return pp
}

func planLab(p *Policy, opts RunOptions) labPlan {
	lp := labPlan{config: labConfig(p), ruleset: rulesetSet(p.Ruleset)}
	lp.config.ToolTimeout = opts.ToolTimeout
	if opts.Complete {
		lp.config.Networks = withClassClients(lp.config.Networks)
	}
	lp.zone, lp.services, lp.ranges = served(p)
	if lp.tracing = !opts.NoRule; lp.tracing {
		lp.traced = traceDestinations(p)
	}
	return lp
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

// labNetworks is the policy's networks as the lab builds them.
func labNetworks(p *Policy) []netns.Network {
	var nets []netns.Network
	for _, n := range p.Networks {
		ln := netns.Network{Name: n.Name, Addresses: n.Addresses}
		for _, c := range n.Clients {
			ln.Clients = append(ln.Clients, netns.Client{Name: c.Name, Addresses: c.Addresses})
		}
		nets = append(nets, ln)
	}
	return nets
}

// Identity is the lab identity a policy user probes as.
func Identity(u User) netns.Identity {
	return netns.Identity{UID: u.UID, GID: u.GID, Groups: u.Groups}
}

// served is what the lab serves for p's hosts: their names and MX records,
// a listener for each single port and one for each range.
func served(p *Policy) (serve.Zone, []serve.Service, []serve.RangeService) {
	zone := serve.Zone{Hosts: map[string][]netip.Addr{}, MX: map[string]string{}}
	var services []serve.Service
	var ranges []serve.RangeService
	for _, h := range p.Hosts {
		zone.Hosts[h.Name] = h.Addresses
		by := servedBy(p, h)
		for _, a := range h.Addresses {
			for _, r := range h.Ports {
				if r.First == r.Last {
					services = append(services, serve.Service{Host: h.Name, Addr: a, Port: r.First, Proto: r.Proto, ServedBy: by})
				} else {
					ranges = append(ranges, serve.RangeService{Host: h.Name, Addr: a, First: r.First, Last: r.Last, Proto: r.Proto, ServedBy: by})
				}
			}
		}
	}
	for _, mx := range p.MX {
		zone.MX[mx.Domain] = mx.Host
	}
	return zone, services, ranges
}

// servedBy is the identity h's listeners run as: its served-by user, or the
// lab's root.
func servedBy(p *Policy, h Host) netns.Identity {
	if u, ok := p.User(h.ServedBy); ok {
		return Identity(u)
	}
	return netns.Identity{}
}

// rulesetSet is the policy's ruleset as the lab loads it.
func rulesetSet(rs Ruleset) ruleset.Set {
	file := func(f *RulesetFile) *ruleset.File {
		if f == nil {
			return nil
		}
		return &ruleset.File{Path: f.Path, Data: f.Data, Includes: f.Includes}
	}
	return ruleset.Set{IPTables: file(rs.IPTables), IP6Tables: file(rs.IP6Tables), NFT: file(rs.NFT), Script: file(rs.Script)}
}

// traceDestinations are every address and port range of p's hosts.
func traceDestinations(p *Policy) []trace.Destination {
	var dsts []trace.Destination
	for _, h := range p.Hosts {
		for _, a := range h.Addresses {
			for _, r := range h.Ports {
				dsts = append(dsts, trace.Destination{Addr: a, First: r.First, Last: r.Last})
			}
		}
	}
	return dsts
}
