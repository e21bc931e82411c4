package policy

import (
	"fmt"
	"iter"
	"net/netip"
	"slices"

	"github.com/goccy/go-yaml/ast"
)

// Probe is one cell of the matrix: one user dials one address of one host on
// one port, and the policy says what must happen.
type Probe struct {
	User    User
	Host    string
	Address netip.Addr
	Port    Port
	Expect  Verb // "" when no expectation matches (never in a loaded policy)
	Rule    int  // index into Policy.Expect of the deciding entry, -1 when none
	Line    int  // line of that entry in the policy file, so a result can point at it
}

// Family is "ipv4" or "ipv6": every probe is one family, never both.
func (p Probe) Family() string { return Family(p.Address) }

// String names the probe as reports do:
// "www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6)".
func (p Probe) String() string {
	return fmt.Sprintf("%s -> %s [%s]:%s (%s)", p.User.Name, p.Host, p.Address, p.Port, p.Family())
}

// Family is "ipv4" or "ipv6", the family of address a (a v4-mapped address is ipv4).
func Family(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// Matrix expands the policy into its probes: every user × every host × every
// address of the host × every port of the host, in file order, user outermost.
// Each address is its own probe, so a pass on IPv4 never stands for IPv6.
func (p *Policy) Matrix() []Probe {
	probes := make([]Probe, 0, p.Size())
	for pr := range p.Probes() {
		probes = append(probes, pr)
	}
	return probes
}

// MaxProbes bounds a policy's matrix. A probe costs about 0.8 KB at the
// run's peak (the 131,070-probe sweep of every TCP port of two addresses
// peaks at about 120 MB) and 35-250 µs, so this many is about 800 MB and a
// few minutes: beyond it a policy is refused before anything is allocated.
const MaxProbes = 1_000_000

// MaxServices bounds the sockets the lab serves a policy's hosts with: one
// for each address of a host and each port or port range of that host. Each
// is a file descriptor, a world address and DNS records; 10,000 took 17-23 s and
// 115 MB to set up and probe once on the 2-core development machine.
const MaxServices = 10_000

// services is the number of sockets the lab serves p's hosts with.
func (p *Policy) services() int {
	n := 0
	for _, h := range p.Hosts {
		n += len(h.Addresses) * len(h.Ports)
	}
	return n
}

// sizeAtMost is Size, or limit+1 when the matrix holds more than limit
// probes: a policy's counts multiply past any int.
func (p *Policy) sizeAtMost(limit int) int {
	over := limit + 1
	n := 0
	for _, h := range p.Hosts {
		ports := 0
		for _, r := range h.Ports {
			ports = min(ports+r.Len(), over)
		}
		if len(h.Addresses) > 0 && ports > over/len(h.Addresses) {
			return over
		}
		n = min(n+len(h.Addresses)*ports, over)
	}
	if len(p.Users) > 0 && n > over/len(p.Users) {
		return over
	}
	return min(n*len(p.Users), over)
}

// Size is the number of probes of the matrix.
func (p *Policy) Size() int {
	n := 0
	for _, h := range p.Hosts {
		ports := 0
		for _, r := range h.Ports {
			ports += r.Len()
		}
		n += len(h.Addresses) * ports
	}
	return n * len(p.Users)
}

// Probes yields the matrix in Matrix's order without keeping it: a sweep of
// every port costs one probe at a time here.
func (p *Policy) Probes() iter.Seq[Probe] {
	return func(yield func(Probe) bool) {
		for _, u := range p.Users {
			for _, h := range p.Hosts {
				for _, a := range h.Addresses {
					for _, r := range h.Ports {
						for port := range r.Ports() {
							pr := Probe{User: u, Host: h.Name, Address: a, Port: port, Rule: -1}
							if rule, ok := p.Match(u.Name, h.Name, a, port); ok {
								pr.Expect, pr.Rule, pr.Line = p.Expect[rule].Verb, rule, p.Expect[rule].Line
							}
							if !yield(pr) {
								return
							}
						}
					}
				}
			}
		}
	}
}

// Match returns the index of the first expectation that covers the probe.
func (p *Policy) Match(user, host string, addr netip.Addr, port Port) (rule int, ok bool) {
	for i, x := range p.Expect {
		if x.Users != nil && !slices.Contains(x.Users, user) ||
			x.Hosts != nil && !slices.Contains(x.Hosts, host) ||
			x.Ports != nil && !slices.ContainsFunc(x.Ports, func(r PortRange) bool { return r.Contains(port) }) ||
			x.Family != "" && x.Family != Family(addr) {
			continue
		}
		return i, true
	}
	return -1, false
}

// warnings finds what a valid policy probably did not mean: an expectation
// that selects no probe (a typo the coverage check cannot see when a later
// entry covers the same cells), and a host with addresses of one family only,
// whose other family gets no cells at all.
func (pd *policyDecoder) warnings() []Warning {
	var ws []Warning
	at := func(n ast.Node, format string, args ...any) Warning {
		line, col := position(n)
		return Warning{File: pd.file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
	}
	for _, h := range pd.p.Hosts {
		has := map[string]bool{}
		for _, a := range h.Addresses {
			has[Family(a)] = true
		}
		for _, fam := range []string{"ipv4", "ipv6"} {
			if has[fam] {
				continue
			}
			w := at(pd.hostNodes[h.Name], "host %q has no %s address: it gets no %s cells, so nothing about %s to it is proved; add its %s address if it has one",
				h.Name, familyName(fam), familyName(fam), familyName(fam), familyName(fam))
			w.MissingFamily, w.Host = fam, h.Name
			ws = append(ws, w)
		}
	}
	for i, x := range pd.p.Expect {
		if !pd.p.selectsAny(x) {
			ws = append(ws, at(pd.expectNodes[i], "this %s entry selects no probe (no user x host x address x port of the policy matches all of it): it decides nothing", x.Verb))
		}
	}
	slices.SortStableFunc(ws, func(a, b Warning) int { return a.Line - b.Line })
	return ws
}

// selectsAny says whether some cell of the matrix matches x, whatever the
// entries before it: users are crossed with every host, so only a host with
// an address of x's family and a port of x's ports is needed.
func (p *Policy) selectsAny(x Expectation) bool {
	for _, h := range p.Hosts {
		if x.Hosts != nil && !slices.Contains(x.Hosts, h.Name) {
			continue
		}
		if x.Family != "" && !slices.ContainsFunc(h.Addresses, func(a netip.Addr) bool { return Family(a) == x.Family }) {
			continue
		}
		if x.Ports == nil || slices.ContainsFunc(h.Ports, func(r PortRange) bool {
			return slices.ContainsFunc(x.Ports, r.Overlaps)
		}) {
			return true
		}
	}
	return false
}

// familyName is how messages write a family: IPv4, IPv6.
func familyName(fam string) string {
	if fam == "ipv4" {
		return "IPv4"
	}
	return "IPv6"
}
