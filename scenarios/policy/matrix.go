package policy

import (
	"fmt"
	"iter"
	"net/netip"
	"slices"

	"github.com/egresslab/egresslab/scenarios/policy/yamlnode"
	"github.com/goccy/go-yaml/ast"
)

// Probe is one cell of the matrix: one user, or one client of a network,
// dials one address of one host on one port, and the policy says what must
// happen.
type Probe struct {
	User    User    // the user who dials; zero for a client's probe
	Client  *Client // the client that dials through the host; nil for a user's probe
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
// A client's probe is named by its source "web@docker0".
func (p Probe) String() string {
	return fmt.Sprintf("%s -> %s [%s]:%s (%s)", p.SourceName(), p.Host, p.Address, p.Port, p.Family())
}

// SourceName names who dials: the user's name, or "client@network". User and
// client names share one namespace and no user name holds '@', so the name
// keys a cell's source in tables, diffs, shards and parity.
func (p Probe) SourceName() string {
	if p.Client != nil {
		return p.Client.String()
	}
	return p.User.Name
}

// Family is "ipv4" or "ipv6", the family of address a (a v4-mapped address is ipv4).
func Family(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// Matrix expands the policy into its probes: every source × every host ×
// every address of the host × every port of the host, in file order, source
// outermost: the users, then each network's clients.
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
	if sources := p.sources(); sources > 0 && n > over/sources {
		return over
	}
	return min(n*p.sources(), over)
}

// sources is the number of probe sources: users and clients.
func (p *Policy) sources() int {
	n := len(p.Users)
	for _, net := range p.Networks {
		n += len(net.Clients)
	}
	return n
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
	return n * p.sources()
}

// Probes yields the matrix in Matrix's order without keeping it: a sweep of
// every port costs one probe at a time here.
func (p *Policy) Probes() iter.Seq[Probe] {
	return func(yield func(Probe) bool) {
		// cells yields the source's row; false when the consumer stopped.
		cells := func(u User, c *Client) bool {
			for _, h := range p.Hosts {
				for _, a := range h.Addresses {
					for _, r := range h.Ports {
						for port := range r.Ports() {
							pr := Probe{User: u, Client: c, Host: h.Name, Address: a, Port: port, Rule: -1}
							if rule, ok := p.match(pr.source(), h.Name, a, port); ok {
								pr.Expect, pr.Rule, pr.Line = p.Expect[rule].Verb, rule, p.Expect[rule].Line
							}
							if !yield(pr) {
								return false
							}
						}
					}
				}
			}
			return true
		}
		for _, u := range p.Users {
			if !cells(u, nil) {
				return
			}
		}
		for _, n := range p.Networks {
			for i := range n.Clients {
				if !cells(User{}, &n.Clients[i]) {
					return
				}
			}
		}
	}
}

// source is what an expectation matches a probe's source on.
type source struct {
	kind SourceKind // UserSource or ClientSource
	name string
}

func (p Probe) source() source {
	if p.Client != nil {
		return source{ClientSource, p.Client.Name}
	}
	return source{UserSource, p.User.Name}
}

// Match returns the index of the first expectation that covers a user's
// probe.
func (p *Policy) Match(user, host string, addr netip.Addr, port Port) (rule int, ok bool) {
	return p.match(source{UserSource, user}, host, addr, port)
}

// MatchClient returns the index of the first expectation that covers a
// client's probe.
func (p *Policy) MatchClient(client, host string, addr netip.Addr, port Port) (rule int, ok bool) {
	return p.match(source{ClientSource, client}, host, addr, port)
}

func (p *Policy) match(src source, host string, addr netip.Addr, port Port) (rule int, ok bool) {
	for i, x := range p.Expect {
		if x.Sources != AnySource && x.Sources != src.kind ||
			src.kind == UserSource && x.Users != nil && !slices.Contains(x.Users, src.name) ||
			src.kind == ClientSource && x.Clients != nil && !slices.Contains(x.Clients, src.name) ||
			x.Hosts != nil && !slices.Contains(x.Hosts, host) ||
			!x.matchesAddress(addr) ||
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
		line, col := yamlnode.Position(n)
		return Warning{File: pd.File, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
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
// entries before it: sources are crossed with every host, so a source of
// x's kind and a host with an address of x's family and addresses and a
// port of x's ports are needed.
func (p *Policy) selectsAny(x Expectation) bool {
	if x.Sources == UserSource && len(p.Users) == 0 ||
		x.Sources == ClientSource && len(p.Clients()) == 0 ||
		x.Sources == AnySource && p.sources() == 0 {
		return false
	}
	for _, h := range p.Hosts {
		if x.Hosts != nil && !slices.Contains(x.Hosts, h.Name) {
			continue
		}
		if !slices.ContainsFunc(h.Addresses, func(a netip.Addr) bool {
			return (x.Family == "" || Family(a) == x.Family) && x.matchesAddress(a)
		}) {
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
