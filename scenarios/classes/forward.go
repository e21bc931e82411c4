package classes

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
)

// Forwarded traffic: a client behind one of the lab host's networks sends
// packets the host never opened a socket for. They cross prerouting, forward
// and postrouting, never output; their source is the client's address and
// they come in on the network's bridge and leave by the uplink (the answer
// the other way). Each network is split on its own: a rule whose interface
// match names another network's bridge never meets its clients. Within a
// network the dimensions are the client's source address, the destination
// address and port, protocol and family; a match on the socket's owner never
// holds for a packet without a socket (xt_owner's negated match does).

// dimSrc is, in a forward split, the client's source address: a forwarded
// packet has no uid to split on.
const dimSrc = dimUID

// outward says the packets go towards the far end: the probe's destination
// is their destination.
func (d direction) outward() bool { return d == dirOut || d == dirFwd }

// ifaceMatch is a rule's match on an interface name: iptables' '+' and nft's
// '*' at the end match any rest.
type ifaceMatch struct {
	in      bool // the input interface (-i, iifname), else the output's
	pattern string
	negate  bool
}

func (m ifaceMatch) matches(name string) bool {
	p := m.pattern
	ok := false
	switch {
	case strings.HasSuffix(p, "+"):
		ok = strings.HasPrefix(name, strings.TrimSuffix(p, "+"))
	default:
		ok, _ = path.Match(p, name)
	}
	return ok != m.negate
}

// noSocket reads an owner match of a forwarded packet, which has no socket:
// nft's skuid and skgid never match it, nor does xt_owner unless negated.
func (b *ruleBuilder) noSocket(negate bool, what string) {
	if negate && b.rule.Ref.Tool != "nft" {
		return
	}
	b.never(what + " (a forwarded packet has no socket)")
}

// ifaceName is a match on an interface's name: a note for the host's own
// packets, a network's or the uplink's for a forwarded one.
func (b *ruleBuilder) ifaceName(in bool, name string, negate bool, what string) {
	if b.dir&dirForwarded == 0 {
		b.iface(what)
		return
	}
	b.rule.Ifaces = append(b.rule.Ifaces, ifaceMatch{in: in, pattern: name, negate: negate})
}

// nftIface is ifaceName for nft's meta iifname/oifname: a name or an
// anonymous set of names.
func (b *ruleBuilder) nftIface(in bool, right any, negate bool, what string) {
	if b.dir&dirForwarded == 0 {
		b.iface(what)
		return
	}
	switch v := right.(type) {
	case string:
		if !strings.HasPrefix(v, "@") {
			b.ifaceName(in, v, negate, what)
			return
		}
	case map[string]any:
		if !negate {
			// one rule per name would be a disjunction a Rule cannot hold:
			// the names' union is kept as a pattern list
			var names []string
			for _, el := range asSlice(v["set"]) {
				names = append(names, fmt.Sprint(el))
			}
			b.rule.Ifaces = append(b.rule.Ifaces, ifaceMatch{in: in, pattern: "{" + strings.Join(names, ",") + "}"})
			return
		}
	}
	b.unsplit(what)
}

// allows says whether a forwarded rule can meet the packets of a network's
// clients: the client's packet comes in on the bridge and leaves by the
// uplink, the answer the other way.
func (r *Rule) allows(network, uplink string) bool {
	for _, m := range r.Ifaces {
		name := uplink
		if m.in != r.answer {
			name = network
		}
		if strings.HasPrefix(m.pattern, "{") {
			names := strings.Split(strings.Trim(m.pattern, "{}"), ",")
			if !slices.ContainsFunc(names, func(p string) bool { return ifaceMatch{pattern: p}.matches(name) }) {
				return false
			}
			continue
		}
		if !m.matches(name) {
			return false
		}
	}
	return true
}

// Network is a network the lab host routes for, as a forward split needs it.
type Network struct {
	Name     string         // its bridge's name
	Prefixes []netip.Prefix // the host's addresses on it: where its clients are
	Clients  []Client
}

// Client is a policy client of a network.
type Client struct {
	Name  string
	Addrs []netip.Addr
}

// SplitForward splits the forwarded traffic of each network's clients into
// classes, as Split does the host's own, and picks each class's
// representative: a policy client in the class, else a synthetic source
// address of it (avoiding the host's and every client's). uplink is the
// interface the lab's forwarded packets leave by.
func SplitForward(rs *Ruleset, nets []Network, uplink string, hints Hints) ([]Class, error) {
	var taken []netip.Addr
	for _, n := range nets {
		for _, p := range n.Prefixes {
			taken = append(taken, p.Addr())
		}
		for _, c := range n.Clients {
			taken = append(taken, c.Addrs...)
		}
	}
	var out []Class
	for _, n := range nets {
		var rules []Rule
		for _, r := range rs.Forward {
			if r.allows(n.Name, uplink) {
				r.UID, r.GID = r.Src, nil
				rules = append(rules, r)
			}
		}
		s := &splitter{rules: rules, max: DefaultMaxClasses, forward: true}
		s.hashes = make([]signature, len(rules))
		for i := range s.hashes {
			s.hashes[i] = signature{splitmix(uint64(2*i + 1)), splitmix(uint64(2*i + 2))}
		}
		for _, f := range []Family{IPv4, IPv6} {
			var in set
			for _, p := range n.Prefixes {
				if p.Addr().Is4() == (f == IPv4) {
					in = append(in, prefixSpan(p.Masked()))
				}
			}
			if len(in) == 0 {
				continue // no client of the network has an address of f
			}
			in = normalize(in)
			for _, p := range []Proto{TCP, UDP} {
				s.family, s.proto = f, p
				var live []int32
				for i, r := range rules {
					if r.Families&f != 0 && r.Protos&p != 0 {
						live = append(live, int32(i))
					}
				}
				s.leaves = s.leaves[:0]
				if err := s.node(1<<dims-1, live, [dims]set{}, signature{}, nil); err != nil {
					return nil, err
				}
				for _, l := range merge(s.leaves) {
					if c, ok := s.forwardClass(l, n, in, taken, hints); ok {
						out = append(out, c)
					}
				}
			}
		}
	}
	return out, nil
}

// forwardClass is a leaf of network n's split, its sources cut to the
// network's prefixes in (false when none is left).
func (s *splitter) forwardClass(l leaf, n Network, in set, taken []netip.Addr, hints Hints) (Class, bool) {
	src := l.box[dimSrc].intersect(in)
	if len(src) == 0 {
		return Class{}, false
	}
	l.box[dimUID], l.box[dimGID] = set{wholeID}, set{wholeID}
	c := s.class(l, Hints{Addrs: hints.Addrs, Ports: hints.Ports})
	c.Source = Source{}
	c.Network = n.Name
	for _, x := range src {
		c.Sources = append(c.Sources, AddrRange{x.first.addr(l.family), x.last.addr(l.family)})
	}
	rep := &c.Representative
	rep.User, rep.UID, rep.GID, rep.Groups, rep.PolicyUser = "", 0, 0, nil, false
	for _, cl := range n.Clients {
		for _, a := range cl.Addrs {
			if a.Is4() == (l.family == IPv4) && src.contains(addrPoint(a)) {
				rep.Client, rep.Src, rep.PolicyClient = cl.Name, a, true
				return c, true
			}
		}
	}
	rep.Src = syntheticSource(l.family, src, taken)
	if !rep.Src.IsValid() {
		rep.Addr = netip.Addr{} // no address a client could have: named, never probed
	}
	return c, true
}

// syntheticSource is an address of src a synthetic client can take: not one
// taken (the host's, a client's), not a span's first (a network's own
// address) unless it is all the span holds, nor an IPv4 span's last (its
// broadcast).
func syntheticSource(f Family, src set, taken []netip.Addr) netip.Addr {
	for _, x := range src {
		for p, k := x.first, 0; p.cmp(x.last) <= 0 && k < 64; p, k = p.next(), k+1 {
			a := p.addr(f)
			wide := width(x).cmp(num(2)) >= 0
			if wide && (p == x.first || f == IPv4 && p == x.last) || slices.Contains(taken, a) {
				if p == x.last {
					break
				}
				continue
			}
			return a
		}
	}
	return netip.Addr{}
}
