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

	"github.com/egresslab/egresslab/netns/serve"
	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/classes"
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
	classes []classes.Class
	// cells are the cells the classes are probed at, with the policy's
	// expectation of each, in the classes' order; skip marks those no lab
	// identity can probe, their results already given.
	cells        []Result
	skip         []bool
	completeness Completeness
}

// planClasses reads the lab's ruleset and splits it.
func planClasses(ctx context.Context, lab *LabBench, p *Policy, cross *crossSide) (*classPlan, error) {
	l, unread := takeListings(ctx, lab)
	rs, err := classes.Read(l)
	if err != nil {
		return nil, fmt.Errorf("read the loaded ruleset back for --complete: %w", err)
	}
	h, own := hints(p), rs
	if cross != nil {
		if rs, err = cross.union(ctx, rs); err != nil {
			return nil, err
		}
		h = cross.hints
	}
	cs, err := classes.Split(rs, h)
	if err != nil {
		return nil, fmt.Errorf("--complete: %w", err)
	}
	fwd, fwdUnsplit, err := splitForward(rs, p, h)
	if err != nil {
		return nil, fmt.Errorf("--complete, forwarded traffic: %w", err)
	}
	cs = append(cs, fwd...)
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
	plan := &classPlan{classes: probed, completeness: Completeness{Classes: len(cs), Forwarded: len(fwd), Unsplit: slices.Concat(own.Unsplit, fwdUnsplit), Unread: unread, Unprobed: unprobed}}
	for _, c := range probed {
		plan.cells = append(plan.cells, classCell(p, c))
		plan.skip = append(plan.skip, !probeable(c))
	}
	return plan, nil
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

// classProbe is the cell a class is probed at, with its expectation: its
// policy user or client, or a synthetic one (named by its uid, or by its
// address), which only entries naming no user or client cover.
func classProbe(p *Policy, c classes.Class) Probe {
	r := c.Representative
	pr := Probe{Address: r.Addr, Port: Port{Number: r.Port, Proto: c.Proto.String()}, Rule: -1}
	for _, h := range p.Hosts {
		if slices.Contains(h.Addresses, r.Addr) {
			pr.Host = h.Name
			break
		}
	}
	var rule int
	var ok bool
	if c.Network != "" {
		pr.Client = &policy.Client{Name: r.Client, Network: c.Network, Addresses: []netip.Addr{r.Src}}
		if !r.PolicyClient {
			pr.Client.Name = r.Src.String()
		}
		rule, ok = p.MatchClientClass(r.Client, r.Addr, pr.Port)
	} else {
		pr.User = User{Name: r.User, UID: r.UID, GID: r.GID, Groups: r.Groups}
		policyUser := ""
		if r.PolicyUser {
			policyUser = r.User
		} else {
			pr.User.Name = fmt.Sprintf("uid %d", r.UID)
		}
		rule, ok = p.MatchClass(policyUser, r.Addr, pr.Port)
	}
	if ok {
		pr.Expect, pr.Rule, pr.Line = p.Expect[rule].Verb, rule, p.Expect[rule].Line
	}
	return pr
}

// classCell is the cell a class is probed at; a class no lab identity can
// probe has its result already.
func classCell(p *Policy, c classes.Class) Result {
	res := Result{Probe: classProbe(p, c)}
	if !probeable(c) {
		r := c.Representative
		res.Observed = probe.Error
		res.Evidence = probe.Evidence{Kind: probe.Failure}
		res.Detail = fmt.Sprintf("no identity of this class can be probed: the lab maps uids and gids 0-%d, and the class's lowest are uid %d, gid %d", maxLabID, r.UID, r.GID)
	}
	return res
}
