package space

import (
	"math/bits"
	"net/netip"
	"slices"
)

// Point is a value on one dimension: a uid, a gid, a port, or an address of
// one family (IPv4 in Lo's low 32 bits). 128 bits hold every one of them.
type Point struct{ Hi, Lo uint64 }

// NumPoint is the point of a uid, gid or port.
func NumPoint(v uint64) Point { return Point{Lo: v} }

// AddrPoint is the point of an address (a v4-mapped one as IPv4).
func AddrPoint(a netip.Addr) Point {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return Point{Lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var p Point
	for i := 0; i < 8; i++ {
		p.Hi = p.Hi<<8 | uint64(b[i])
		p.Lo = p.Lo<<8 | uint64(b[8+i])
	}
	return p
}

// Addr is the address p is in family f.
func (p Point) Addr(f Family) netip.Addr {
	if f == IPv4 {
		v := uint32(p.Lo)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[7-i] = byte(p.Hi >> (8 * i))
		b[15-i] = byte(p.Lo >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

// Compare returns -1, 0 or 1 as p is below, at or above q.
func (p Point) Compare(q Point) int {
	switch {
	case p.Hi < q.Hi:
		return -1
	case p.Hi > q.Hi:
		return 1
	case p.Lo < q.Lo:
		return -1
	case p.Lo > q.Lo:
		return 1
	}
	return 0
}

// Next is p+1.
func (p Point) Next() Point {
	lo, carry := bits.Add64(p.Lo, 1, 0)
	return Point{Hi: p.Hi + carry, Lo: lo}
}

// Prev is p-1.
func (p Point) Prev() Point {
	lo, borrow := bits.Sub64(p.Lo, 1, 0)
	return Point{Hi: p.Hi - borrow, Lo: lo}
}

// Span is the closed interval [First, Last].
type Span struct{ First, Last Point }

// Set is a sorted list of disjoint, non-adjacent spans.
type Set []Span

// Normalize sorts and joins overlapping or adjacent spans.
func Normalize(in []Span) Set {
	s := slices.Clone(in)
	slices.SortFunc(s, func(a, b Span) int { return a.First.Compare(b.First) })
	out := Set{}
	for _, x := range s {
		if n := len(out); n > 0 && (out[n-1].Last.Compare(x.First) >= 0 || out[n-1].Last.Next() == x.First) {
			if x.Last.Compare(out[n-1].Last) > 0 {
				out[n-1].Last = x.Last
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

// Complement is whole minus s.
func (s Set) Complement(whole Span) Set {
	out := Set{}
	at := whole.First
	done := false
	for _, x := range s.Clip(whole) {
		if x.First.Compare(at) > 0 {
			out = append(out, Span{at, x.First.Prev()})
		}
		if x.Last == whole.Last {
			done = true
			break
		}
		at = x.Last.Next()
	}
	if !done {
		out = append(out, Span{at, whole.Last})
	}
	return out
}

// Intersect is the spans both sets hold.
func (s Set) Intersect(t Set) Set {
	out := Set{}
	i, j := 0, 0
	for i < len(s) && j < len(t) {
		first, last := s[i].First, s[i].Last
		if t[j].First.Compare(first) > 0 {
			first = t[j].First
		}
		if t[j].Last.Compare(last) < 0 {
			last = t[j].Last
		}
		if first.Compare(last) <= 0 {
			out = append(out, Span{first, last})
		}
		if s[i].Last.Compare(t[j].Last) < 0 {
			i++
		} else {
			j++
		}
	}
	return out
}

// Clip is the part of s within whole.
func (s Set) Clip(whole Span) Set { return s.Intersect(Set{whole}) }

// Contains says a span of s holds p.
func (s Set) Contains(p Point) bool {
	i, found := slices.BinarySearchFunc(s, p, func(x Span, p Point) int {
		switch {
		case x.Last.Compare(p) < 0:
			return -1
		case x.First.Compare(p) > 0:
			return 1
		}
		return 0
	})
	return found && i < len(s)
}

// PrefixSpan is the addresses of a prefix.
func PrefixSpan(p netip.Prefix) Span {
	p = p.Masked()
	first := AddrPoint(p.Addr())
	width := 32
	if p.Addr().Is6() {
		width = 128
	}
	host := width - p.Bits()
	last := first
	switch {
	case host >= 128:
		last = Point{^uint64(0), ^uint64(0)}
	case host >= 64:
		last.Lo = ^uint64(0)
		last.Hi |= (uint64(1) << (host - 64)) - 1
	default:
		last.Lo |= (uint64(1) << host) - 1
	}
	return Span{first, last}
}
