package classes

import (
	"math/bits"
	"net/netip"
	"slices"
)

// point is a value on one dimension: a uid, a gid, a port, or an address of
// one family (IPv4 in lo's low 32 bits). 128 bits hold every one of them.
type point struct{ hi, lo uint64 }

func num(v uint64) point { return point{lo: v} }

func addrPoint(a netip.Addr) point {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return point{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var p point
	for i := 0; i < 8; i++ {
		p.hi = p.hi<<8 | uint64(b[i])
		p.lo = p.lo<<8 | uint64(b[8+i])
	}
	return p
}

func (p point) addr(f Family) netip.Addr {
	if f == IPv4 {
		v := uint32(p.lo)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[7-i] = byte(p.hi >> (8 * i))
		b[15-i] = byte(p.lo >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

func (p point) cmp(q point) int {
	switch {
	case p.hi < q.hi:
		return -1
	case p.hi > q.hi:
		return 1
	case p.lo < q.lo:
		return -1
	case p.lo > q.lo:
		return 1
	}
	return 0
}

func (p point) next() point {
	lo, carry := bits.Add64(p.lo, 1, 0)
	return point{hi: p.hi + carry, lo: lo}
}

func (p point) prev() point {
	lo, borrow := bits.Sub64(p.lo, 1, 0)
	return point{hi: p.hi - borrow, lo: lo}
}

// span is the closed interval [first, last].
type span struct{ first, last point }

func (s span) contains(p point) bool { return s.first.cmp(p) <= 0 && p.cmp(s.last) <= 0 }

// set is a sorted list of disjoint, non-adjacent spans.
type set []span

// normalize sorts and joins overlapping or adjacent spans.
func normalize(in []span) set {
	s := slices.Clone(in)
	slices.SortFunc(s, func(a, b span) int { return a.first.cmp(b.first) })
	out := set{}
	for _, x := range s {
		if n := len(out); n > 0 && (out[n-1].last.cmp(x.first) >= 0 || out[n-1].last.next() == x.first) {
			if x.last.cmp(out[n-1].last) > 0 {
				out[n-1].last = x.last
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

// complement is whole minus s.
func (s set) complement(whole span) set {
	out := set{}
	at := whole.first
	done := false
	for _, x := range s.clip(whole) {
		if x.first.cmp(at) > 0 {
			out = append(out, span{at, x.first.prev()})
		}
		if x.last == whole.last {
			done = true
			break
		}
		at = x.last.next()
	}
	if !done {
		out = append(out, span{at, whole.last})
	}
	return out
}

// intersect is the spans both sets hold.
func (s set) intersect(t set) set {
	out := set{}
	i, j := 0, 0
	for i < len(s) && j < len(t) {
		first, last := s[i].first, s[i].last
		if t[j].first.cmp(first) > 0 {
			first = t[j].first
		}
		if t[j].last.cmp(last) < 0 {
			last = t[j].last
		}
		if first.cmp(last) <= 0 {
			out = append(out, span{first, last})
		}
		if s[i].last.cmp(t[j].last) < 0 {
			i++
		} else {
			j++
		}
	}
	return out
}

func (s set) clip(whole span) set { return s.intersect(set{whole}) }

func (s set) contains(p point) bool {
	i, found := slices.BinarySearchFunc(s, p, func(x span, p point) int {
		switch {
		case x.last.cmp(p) < 0:
			return -1
		case x.first.cmp(p) > 0:
			return 1
		}
		return 0
	})
	return found && i < len(s)
}

// prefixSpan is the addresses of a prefix.
func prefixSpan(p netip.Prefix) span {
	p = p.Masked()
	first := addrPoint(p.Addr())
	width := 32
	if p.Addr().Is6() {
		width = 128
	}
	host := width - p.Bits()
	last := first
	switch {
	case host >= 128:
		last = point{^uint64(0), ^uint64(0)}
	case host >= 64:
		last.lo = ^uint64(0)
		last.hi |= (uint64(1) << (host - 64)) - 1
	default:
		last.lo |= (uint64(1) << host) - 1
	}
	return span{first, last}
}
