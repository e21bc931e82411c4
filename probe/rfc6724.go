package probe

import (
	"net/netip"
	"sort"
)

// SortRFC6724 orders destination addresses the way getaddrinfo does (RFC 6724
// section 6, with the default policy table), given the source address the
// kernel would use for each (invalid when unreachable). This is why telnet
// printed "Trying 2607:...": a global IPv6 address outranks any IPv4 one.
func SortRFC6724(dsts []netip.Addr, source func(netip.Addr) (netip.Addr, bool)) []netip.Addr {
	type cand struct {
		dst, src netip.Addr
		ok       bool
		i        int
	}
	cs := make([]cand, len(dsts))
	for i, d := range dsts {
		s, ok := source(d)
		cs[i] = cand{d, s, ok, i}
	}
	sort.SliceStable(cs, func(a, b int) bool {
		da, db := cs[a], cs[b]
		// Rule 1: avoid unusable destinations.
		if da.ok != db.ok {
			return da.ok
		}
		if !da.ok {
			return da.i < db.i
		}
		// Rule 2: prefer matching scope.
		ma := scope(da.dst) == scope(da.src)
		mb := scope(db.dst) == scope(db.src)
		if ma != mb {
			return ma
		}
		// Rule 5: prefer matching label.
		la := label(da.src) == label(da.dst)
		lb := label(db.src) == label(db.dst)
		if la != lb {
			return la
		}
		// Rule 6: prefer higher precedence.
		if pa, pb := precedence(da.dst), precedence(db.dst); pa != pb {
			return pa > pb
		}
		// Rule 8: prefer smaller scope.
		if sa, sb := scope(da.dst), scope(db.dst); sa != sb {
			return sa < sb
		}
		// Rule 9: longest matching prefix (IPv6 only, as glibc does).
		if da.dst.Is6() && db.dst.Is6() {
			if pa, pb := commonPrefix(da.dst, da.src), commonPrefix(db.dst, db.src); pa != pb {
				return pa > pb
			}
		}
		// Rule 10: otherwise keep the order the resolver gave.
		return da.i < db.i
	})
	out := make([]netip.Addr, len(cs))
	for i, c := range cs {
		out[i] = c.dst
	}
	return out
}

// policyEntry is a row of RFC 6724's default policy table.
type policyEntry struct {
	prefix     netip.Prefix
	precedence int
	label      int
}

var policyTable = []policyEntry{
	{netip.MustParsePrefix("::1/128"), 50, 0},
	{netip.MustParsePrefix("::ffff:0:0/96"), 35, 4},
	{netip.MustParsePrefix("2002::/16"), 30, 2},
	{netip.MustParsePrefix("2001::/32"), 5, 5},
	{netip.MustParsePrefix("fc00::/7"), 3, 13},
	{netip.MustParsePrefix("::/96"), 1, 3},
	{netip.MustParsePrefix("fec0::/10"), 1, 11},
	{netip.MustParsePrefix("3ffe::/16"), 1, 12},
	{netip.MustParsePrefix("::/0"), 40, 1},
}

func classify(a netip.Addr) policyEntry {
	a16 := netip.AddrFrom16(a.As16()) // IPv4 as ::ffff:a.b.c.d
	best := policyEntry{precedence: -1}
	for _, e := range policyTable {
		if e.prefix.Contains(a16) && e.prefix.Bits() > best.prefix.Bits() {
			best = e
		}
	}
	return best
}

func precedence(a netip.Addr) int { return classify(a).precedence }
func label(a netip.Addr) int      { return classify(a).label }

// scope returns the RFC 6724 scope: link-local 2, site-local 5, global 14;
// IPv4 loopback and link-local count as link-local, as RFC 6724 says.
var siteLocal = netip.MustParsePrefix("fec0::/10")

func scope(a netip.Addr) int {
	switch {
	case a.IsLoopback(), a.IsLinkLocalUnicast():
		return 2
	case a.Is6() && siteLocal.Contains(a):
		return 5
	}
	return 14
}

func commonPrefix(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	n := 0
	for i := 0; i < 8; i++ { // up to the /64 boundary, as RFC 6724 rule 9 says
		d := x[i] ^ y[i]
		if d == 0 {
			n += 8
			continue
		}
		for d&0x80 == 0 {
			n++
			d <<= 1
		}
		return n
	}
	return n
}
