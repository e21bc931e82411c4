package classes

import (
	"net/netip"
	"slices"

	"github.com/egresslab/egresslab/scenarios/classes/space"
)

// Hints are the policy's own values: a class that holds one is probed at it.
type Hints struct {
	Users []User
	Addrs []netip.Addr
	Ports []uint16
}

// User is a policy user as the lab knows it.
type User struct {
	Name     string
	UID, GID uint32
	Groups   []uint32
}

// Addresses a class is not probed at unless it holds nothing else: they are
// not one host one hop away (this network, loopback, link-local, multicast,
// reserved, broadcast; IPv6 unspecified, loopback, v4-mapped, link-local,
// multicast).
var avoid = map[Family]space.Set{
	IPv4: space.Normalize(prefixSpans("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/3")),
	IPv6: space.Normalize(prefixSpans("::/96", "::ffff:0:0/96", "fe80::/10", "ff00::/8")),
}

var prefer = map[Family][]space.Set{
	IPv4: {space.Normalize(prefixSpans("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")), space.Normalize(prefixSpans("1.0.0.0/8", "8.0.0.0/5", "100.0.0.0/6"))},
	IPv6: {space.Normalize(prefixSpans("2001:db8::/32")), space.Normalize(prefixSpans("2000::/3"))},
}

var loopback = map[Family]space.Set{
	IPv4: space.Normalize(prefixSpans("127.0.0.0/8")),
	IPv6: space.Normalize(prefixSpans("::1/128")),
}

func prefixSpans(ps ...string) []space.Span {
	var out []space.Span
	for _, p := range ps {
		out = append(out, space.PrefixSpan(netip.MustParsePrefix(p)))
	}
	return out
}

func (s *splitter) represent(l leaf, hints Hints) Representative {
	var rep Representative
	// identity: a policy user in the class whose supplementary groups change
	// no `--suppl-groups` rule; otherwise the class's lowest uid and gid
	for i, u := range hints.Users {
		if l.box[dimUID].Contains(space.NumPoint(uint64(u.UID))) && l.box[dimGID].Contains(space.NumPoint(uint64(u.GID))) && s.userNeutral(i, u) {
			rep.User, rep.UID, rep.GID, rep.Groups, rep.PolicyUser = u.Name, u.UID, u.GID, slices.Clone(u.Groups), true
			break
		}
	}
	if !rep.PolicyUser {
		rep.UID = uint32(l.box[dimUID][0].First.Lo)
		rep.GID = uint32(l.box[dimGID][0].First.Lo)
	}
	destination(l, hints, &rep)
	return rep
}

// destination picks a class's address and port: the hints' where the class
// holds one.
func destination(l leaf, hints Hints, rep *Representative) {
	for _, a := range hints.Addrs {
		if (a.Is4() || a.Is4In6()) == (l.family == IPv4) && l.box[dimAddr].Contains(space.AddrPoint(a)) {
			rep.Addr, rep.PolicyAddr = a.Unmap(), true
			break
		}
	}
	if !rep.PolicyAddr {
		rep.Addr = syntheticAddr(l.family, l.box[dimAddr])
	}
	for _, p := range hints.Ports {
		if l.box[dimPort].Contains(space.NumPoint(uint64(p))) {
			rep.Port, rep.PolicyPort = p, true
			break
		}
	}
	if !rep.PolicyPort {
		rep.Port = uint16(l.box[dimPort][0].First.Lo)
	}
}

// userNeutral is groupsNeutral of hint user i, computed once.
func (s *splitter) userNeutral(i int, u User) bool {
	if ok, done := s.neutral[i]; done {
		return ok
	}
	if s.neutral == nil {
		s.neutral = map[int]bool{}
	}
	s.neutral[i] = s.groupsNeutral(u)
	return s.neutral[i]
}

// groupsNeutral says u's supplementary groups make no `--suppl-groups` rule
// match otherwise than u's primary gid alone would.
func (s *splitter) groupsNeutral(u User) bool {
	for _, r := range s.rules {
		if !r.SupplGroups || r.GID == nil {
			continue
		}
		primary := r.GID.Contains(space.NumPoint(uint64(u.GID)))
		for _, g := range u.Groups {
			if !primary && r.GID.Contains(space.NumPoint(uint64(g))) {
				return false
			}
		}
	}
	return true
}

// syntheticAddr picks an address of the class that a host one hop away
// could have: not a network or broadcast address of the class's spans, not
// loopback unless the class is loopback only. A class of multicast, link-local
// or reserved addresses only has none: the zero Addr (no unicast probe
// reaches such a class; the run names it as not probed).
func syntheticAddr(f Family, spans space.Set) netip.Addr {
	usable := spans.Intersect(avoid[f].Complement(space.WholeAddr(f)))
	if len(usable) == 0 {
		usable = spans.Intersect(loopback[f])
	}
	if len(usable) == 0 {
		return netip.Addr{}
	}
	// documentation and global unicast addresses first: they look like a
	// host on the internet, which the world serves like any other
	for _, pref := range prefer[f] {
		if p := usable.Intersect(pref); len(p) > 0 {
			usable = p
			break
		}
	}
	// the widest usable span, whose ends are likeliest a network's own
	best := usable[0]
	for _, x := range usable[1:] {
		if width(x).Compare(width(best)) > 0 {
			best = x
		}
	}
	p := best.First
	if width(best).Compare(space.NumPoint(2)) >= 0 { // three or more addresses: skip the network address
		p = p.Next()
	}
	return p.Addr(f)
}

// width is last - first.
func width(x space.Span) space.Point {
	lo := x.Last.Lo - x.First.Lo
	hi := x.Last.Hi - x.First.Hi
	if x.Last.Lo < x.First.Lo {
		hi--
	}
	return space.Point{Hi: hi, Lo: lo}
}
