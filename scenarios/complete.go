package scenarios

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/egresslab/egresslab/internal/classes"
	"github.com/egresslab/egresslab/netns/serve"
	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/policy"
	"github.com/egresslab/egresslab/scenarios/report"
)

// verify --complete: the ruleset as loaded is read back, split into the
// classes of traffic it can tell apart (package classes), and one
// representative of each class is probed through the kernel like any cell.

// maxLabID is the highest uid and gid the lab maps: a class whose ids all
// lie above it has no identity the lab can probe as.
const maxLabID = 65535

// listingTools are the listings the classes are read from, in
// classes.Listings' order.
var listingTools = [][]string{
	{"nft", "-j", "list", "ruleset"},
	{"iptables-nft-save"},
	{"ip6tables-nft-save"},
	{"iptables-legacy-save"},
	{"ip6tables-legacy-save"},
	{"ipset", "save"},
}

// takeListings lists the ruleset inside the lab as its root, before the
// lab's own tables go in. A tool that is not installed, or that has nothing
// to list, gives an empty listing; one that fails otherwise is named in
// unread.
func takeListings(ctx context.Context, lab *LabBench) (l classes.Listings, unread []string) {
	outs := make([][]byte, len(listingTools))
	errs := make([]error, len(listingTools))
	var wg sync.WaitGroup
	for i, argv := range listingTools {
		wg.Go(func() {
			var stderr bytes.Buffer
			cmd := lab.Command(ctx, argv...)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				errs[i] = errors.New(firstLine(stderr.String(), err.Error()))
			}
			outs[i] = out
		})
	}
	wg.Wait()
	for i, err := range errs {
		// nft lists every lab; the others fail when their kind of table was
		// never made (legacy modules, ipset), which is nothing to list
		if err == nil || missingTool(err.Error()) || i > 0 && len(bytes.TrimSpace(outs[i])) == 0 {
			continue
		}
		unread = append(unread, fmt.Sprintf("%s: %v", strings.Join(listingTools[i], " "), err))
		outs[i] = nil
	}
	return classes.Listings{NFT: outs[0], IPTablesNFT: outs[1], IP6TablesNFT: outs[2],
		IPTablesLegacy: outs[3], IP6TablesLegacy: outs[4], IPSet: outs[5]}, unread
}

// missingTool says a tool was not installed: setpriv could not execute it.
func missingTool(msg string) bool {
	return strings.Contains(msg, "No such file or directory") && strings.Contains(msg, "execute")
}

// firstLine is s's first line, or fallback when s is blank.
func firstLine(s, fallback string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if s == "" {
		return fallback
	}
	return s
}

// hints are the policy's own users, addresses and ports: a class that holds
// one is probed at it.
func hints(p *Policy) classes.Hints {
	var h classes.Hints
	for _, u := range p.Users {
		h.Users = append(h.Users, classes.User{Name: u.Name, UID: u.UID, GID: u.GID, Groups: u.Groups})
	}
	for _, host := range p.Hosts {
		h.Addrs = append(h.Addrs, host.Addresses...)
		for _, r := range host.Ports {
			if !slices.Contains(h.Ports, r.First) {
				h.Ports = append(h.Ports, r.First)
			}
		}
	}
	return h
}

// classPlan is the classes of one lab's ruleset and what their probes need.
type classPlan struct {
	classes      []classes.Class
	completeness Completeness
}

// planClasses reads the lab's ruleset and splits it.
func planClasses(ctx context.Context, lab *LabBench, p *Policy) (*classPlan, error) {
	l, unread := takeListings(ctx, lab)
	rs, err := classes.Read(l)
	if err != nil {
		return nil, fmt.Errorf("read the loaded ruleset back for --complete: %w", err)
	}
	cs, err := classes.Split(rs, hints(p))
	if err != nil {
		return nil, fmt.Errorf("--complete: %w", err)
	}
	// A class no unicast address of which exists (ff00::/8 from a rule's
	// `ip6 daddr != ff00::/8`) is named, never served or probed.
	var probed []classes.Class
	var unprobed []string
	for _, c := range cs {
		if !c.Representative.Addr.IsValid() {
			unprobed = append(unprobed, report.ClassResult{Class: c}.Name())
			continue
		}
		probed = append(probed, c)
	}
	return &classPlan{classes: probed, completeness: Completeness{Classes: len(cs), Unsplit: rs.Unsplit, Unread: unread, Unprobed: unprobed}}, nil
}

// served are the cells the policy's hosts and the lab's DNS already answer.
type servedCell struct {
	addr  netip.Addr
	port  uint16
	proto string
}

func servedCells(p *Policy) func(servedCell) bool {
	return func(c servedCell) bool {
		if c.port == serve.DNSPort && (c.addr == netip.MustParseAddr("127.0.0.53") || c.addr == netip.IPv6Loopback()) {
			return true
		}
		for _, h := range p.Hosts {
			if !slices.Contains(h.Addresses, c.addr) {
				continue
			}
			if slices.ContainsFunc(h.Ports, func(r PortRange) bool { return r.Contains(Port{Number: c.port, Proto: c.proto}) }) {
				return true
			}
		}
		return false
	}
}

// probeable says whether a class's representative can be probed: its
// identity must be one the lab maps.
func probeable(c classes.Class) bool {
	r := c.Representative
	return r.UID <= maxLabID && r.GID <= maxLabID
}

// serve makes the world (or lo) answer every representative the policy's
// hosts do not already serve. The world answers any address and port with
// one socket per family and protocol (ServeAnyAddress); what needs more has
// a socket of its own: a loopback representative (on the lab's lo) and a
// port that speaks its protocol (SMTP, HTTP, HTTPS, DNS). IPv6 neighbour
// discovery answers only for addresses held, so a representative the lab
// resolves on the link gets a world address.
func (cp *classPlan) serve(lab *LabBench, p *Policy) error {
	isServed := servedCells(p)
	seen := map[servedCell]bool{}
	var own []serve.RangeService
	var held []netip.Addr
	anyAddr := false
	for _, c := range cp.classes {
		if !probeable(c) {
			continue
		}
		r := c.Representative
		cell := servedCell{r.Addr, r.Port, c.Proto.String()}
		if seen[cell] || isServed(cell) {
			continue
		}
		seen[cell] = true
		if r.Addr.IsLoopback() || serve.ServedAlone(r.Port, cell.proto) {
			own = append(own, serve.RangeService{Host: r.Addr.String(), Addr: r.Addr, First: r.Port, Last: r.Port, Proto: cell.proto})
			continue
		}
		anyAddr = true
		if r.Addr.Is6() && lab.OnLink(r.Addr) && !slices.Contains(held, r.Addr) {
			held = append(held, r.Addr)
		}
	}
	// Sockets and addresses of their own are bounded as a policy's hosts
	// are: past it the lab would run out of descriptors halfway.
	if n := len(own) + len(held); n > policy.MaxServices {
		return fmt.Errorf("--complete: the ruleset splits into %d classes whose representatives need %d sockets or addresses of their own (loopback, SMTP, HTTP, HTTPS and DNS ports, IPv6 addresses on the lab's link); the lab serves at most %d", len(cp.classes), n, policy.MaxServices)
	}
	if err := lab.ServeRanges(own); err != nil {
		return err
	}
	for _, a := range held {
		if err := lab.AddWorldAddress(a); err != nil {
			return err
		}
	}
	if !anyAddr {
		return nil
	}
	return lab.ServeAnyAddress()
}

// destinations are the representatives, for the trace to watch.
func (cp *classPlan) destinations() []trace.Destination {
	var dsts []trace.Destination
	for _, c := range cp.classes {
		r := c.Representative
		dsts = append(dsts, trace.Destination{Addr: r.Addr, First: r.Port, Last: r.Port})
	}
	return dsts
}

// classProbe is the cell a class is probed at, with its expectation.
func classProbe(p *Policy, c classes.Class) Probe {
	r := c.Representative
	u := User{Name: r.User, UID: r.UID, GID: r.GID, Groups: r.Groups}
	policyUser := ""
	if r.PolicyUser {
		policyUser = r.User
	} else {
		u.Name = fmt.Sprintf("uid %d", r.UID)
	}
	host := ""
	for _, h := range p.Hosts {
		if slices.Contains(h.Addresses, r.Addr) {
			host = h.Name
			break
		}
	}
	port := Port{Number: r.Port, Proto: c.Proto.String()}
	pr := Probe{User: u, Host: host, Address: r.Addr, Port: port, Rule: -1}
	if rule, ok := p.MatchClass(policyUser, r.Addr, port); ok {
		pr.Expect, pr.Rule, pr.Line = p.Expect[rule].Verb, rule, p.Expect[rule].Line
	}
	return pr
}

// runComplete is Run with --complete: the policy's cells, then every class.
func runComplete(ctx context.Context, p *Policy, opts RunOptions) (*Report, error) {
	var plan *classPlan
	opts.afterLoad = func(ctx context.Context, lab *LabBench) ([]trace.Destination, error) {
		var err error
		if plan, err = planClasses(ctx, lab, p); err != nil {
			return nil, err
		}
		if err := plan.serve(lab, p); err != nil {
			return nil, err
		}
		return plan.destinations(), nil
	}
	lab, err := StartLabWith(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	defer lab.Close()
	rep, err := ProbeAll(ctx, lab, p, opts)
	if err != nil {
		return rep, err
	}
	rep.Classes, err = probeClasses(ctx, lab, p, plan, opts)
	if err != nil {
		return nil, err
	}
	rep.Completeness = &plan.completeness
	return rep, nil
}

// probeClasses probes every class's representative in lab, as ProbeAll
// probes cells, and checks the lab's harness afterwards.
func probeClasses(ctx context.Context, lab *LabBench, p *Policy, plan *classPlan, opts RunOptions) ([]ClassResult, error) {
	out := make([]ClassResult, len(plan.classes))
	results := make([]Result, len(plan.classes))
	var todo []int
	for i, c := range plan.classes {
		out[i].Class = c
		results[i].Probe = classProbe(p, c)
		if probeable(c) {
			todo = append(todo, i)
			continue
		}
		r := c.Representative
		results[i].Observed = probe.Error
		results[i].Evidence = probe.Evidence{Kind: probe.Failure}
		results[i].Detail = fmt.Sprintf("no identity of this class can be probed: the lab maps uids and gids 0-%d, and the class's lowest are uid %d, gid %d", maxLabID, r.UID, r.GID)
	}
	explain, err := startExplaining(ctx, lab, p, plan.destinations(), results, opts)
	if err != nil {
		return nil, err
	}
	defer explain.stop()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(probeWorkers, len(todo)); w++ {
		wg.Go(func() {
			on, leave := lab.prober()
			defer leave()
			for ctx.Err() == nil {
				k := int(next.Add(1)) - 1
				if k >= len(todo) {
					return
				}
				i := todo[k]
				pr := results[i].Probe
				explain.pace()
				start := time.Now()
				r, flow := probe.DialFlow(ctx, on, Identity(pr.User),
					probe.Target{Addr: pr.Address, Port: pr.Port.Number, Proto: pr.Port.Proto}, opts.Backstop)
				explain.record(i, flow)
				results[i] = Result{Probe: pr, Observed: r.Outcome, Evidence: r.Evidence, Detail: report.Detail(r), Duration: time.Since(start)}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := lab.evidenceErr(); err != nil {
		return nil, err
	}
	if err := explain.finish(results); err != nil {
		return nil, err
	}
	if err := lab.CheckHarness(); err != nil {
		return nil, fmt.Errorf("after probing the classes: %w", err)
	}
	for i := range out {
		out[i].Result = results[i]
	}
	return out, nil
}
