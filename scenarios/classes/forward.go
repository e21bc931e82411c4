package classes

import (
	"net/netip"
	"slices"

	"github.com/egresslab/egresslab/scenarios/classes/space"
)

// Forwarded traffic: a client behind one of the lab host's networks sends
// packets the host never opened a socket for. They cross prerouting, forward
// and postrouting, never output; their source is the client's address and
// they come in on the network's bridge and leave by the uplink (the answer
// the other way). Each network is split on its own: a rule whose interface
// match names another network's bridge never meets its clients. Within a
// network the dimensions are the client's source address, the destination
// address and port, protocol and family. How a rule's interface and owner
// matches read for such a packet is package listing's.

// dimSrc is, in a forward split, the client's source address: a forwarded
// packet has no uid to split on.
const dimSrc = dimUID

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
			if r.MeetsNetwork(n.Name, uplink) {
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
			var in space.Set
			for _, p := range n.Prefixes {
				if p.Addr().Is4() == (f == IPv4) {
					in = append(in, space.PrefixSpan(p.Masked()))
				}
			}
			if len(in) == 0 {
				continue // no client of the network has an address of f
			}
			in = space.Normalize(in)
			for _, p := range []Proto{TCP, UDP} {
				s.family, s.proto = f, p
				var live []int32
				for i, r := range rules {
					if r.Families&f != 0 && r.Protos&p != 0 {
						live = append(live, int32(i))
					}
				}
				s.leaves = s.leaves[:0]
				if err := s.node(1<<dims-1, live, [dims]space.Set{}, signature{}, nil); err != nil {
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
func (s *splitter) forwardClass(l leaf, n Network, in space.Set, taken []netip.Addr, hints Hints) (Class, bool) {
	src := l.box[dimSrc].Intersect(in)
	if len(src) == 0 {
		return Class{}, false
	}
	l.box[dimUID], l.box[dimGID] = space.Set{space.WholeID()}, space.Set{space.WholeID()}
	c := s.class(l, Hints{Addrs: hints.Addrs, Ports: hints.Ports})
	c.Source = Source{}
	c.Network = n.Name
	for _, x := range src {
		c.Sources = append(c.Sources, AddrRange{x.First.Addr(l.family), x.Last.Addr(l.family)})
	}
	rep := &c.Representative
	rep.User, rep.UID, rep.GID, rep.Groups, rep.PolicyUser = "", 0, 0, nil, false
	for _, cl := range n.Clients {
		for _, a := range cl.Addrs {
			if a.Is4() == (l.family == IPv4) && src.Contains(space.AddrPoint(a)) {
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
func syntheticSource(f Family, src space.Set, taken []netip.Addr) netip.Addr {
	for _, x := range src {
		for p, k := x.First, 0; p.Compare(x.Last) <= 0 && k < 64; p, k = p.Next(), k+1 {
			a := p.Addr(f)
			wide := width(x).Compare(space.NumPoint(2)) >= 0
			if wide && (p == x.First || f == IPv4 && p == x.Last) || slices.Contains(taken, a) {
				if p == x.Last {
					break
				}
				continue
			}
			return a
		}
	}
	return netip.Addr{}
}
