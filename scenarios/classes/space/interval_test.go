package space_test

import (
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/scenarios/classes/space"
)

// ports is a set of port spans written as pairs: ports(1, 5, 9, 9) is 1-5, 9.
func ports(bounds ...uint64) space.Set {
	s := space.Set{}
	for i := 0; i+1 < len(bounds); i += 2 {
		s = append(s, space.Span{First: space.NumPoint(bounds[i]), Last: space.NumPoint(bounds[i+1])})
	}
	return s
}

var _ = Describe("the arithmetic of a dimension", func() {
	DescribeTable("Normalize sorts and joins overlapping and adjacent spans, and keeps gaps",
		func(in, want space.Set) { Expect(space.Normalize(in)).To(Equal(want)) },
		Entry("adjacent", ports(6, 9, 1, 5), ports(1, 9)),
		Entry("overlapping", ports(1, 5, 3, 4, 4, 7), ports(1, 7)),
		Entry("a gap of one", ports(1, 5, 7, 9), ports(1, 5, 7, 9)),
	)

	DescribeTable("Complement is the whole less the set, at both ends",
		func(s, want space.Set) { Expect(s.Complement(space.WholePort())).To(Equal(want)) },
		Entry("inside", ports(25, 25), ports(1, 24, 26, 65535)),
		Entry("at the first port", ports(1, 10), ports(11, 65535)),
		Entry("at the last port", ports(100, 65535), ports(1, 99)),
		Entry("beyond the whole", ports(0, 65535), ports()),
		Entry("nothing", ports(), ports(1, 65535)),
	)

	DescribeTable("Intersect keeps what both sets hold",
		func(s, t, want space.Set) { Expect(s.Intersect(t)).To(Equal(want)) },
		Entry("overlaps", ports(1, 10, 20, 30), ports(5, 25), ports(5, 10, 20, 25)),
		Entry("touching ends", ports(1, 10), ports(10, 20), ports(10, 10)),
		Entry("apart", ports(1, 10), ports(11, 20), ports()),
	)

	It("Contains finds a point in a span, not between spans", func() {
		s := ports(1, 10, 20, 30)
		Expect([]bool{s.Contains(space.NumPoint(10)), s.Contains(space.NumPoint(15)), s.Contains(space.NumPoint(20)), s.Contains(space.NumPoint(31))}).
			To(Equal([]bool{true, false, true, false}))
	})

	DescribeTable("PrefixSpan is a prefix's first to last address, and Addr gives them back",
		func(prefix, first, last string) {
			p := netip.MustParsePrefix(prefix)
			f := space.IPv6
			if p.Addr().Is4() {
				f = space.IPv4
			}
			s := space.PrefixSpan(p)
			Expect([]netip.Addr{s.First.Addr(f), s.Last.Addr(f)}).To(Equal([]netip.Addr{netip.MustParseAddr(first), netip.MustParseAddr(last)}))
		},
		Entry("an IPv4 /24, host bits set", "192.0.2.77/24", "192.0.2.0", "192.0.2.255"),
		Entry("IPv4 everything", "0.0.0.0/0", "0.0.0.0", "255.255.255.255"),
		Entry("an IPv6 /72, host bits in the low half", "2001:db8::/72", "2001:db8::", "2001:db8::ff:ffff:ffff:ffff"),
		Entry("an IPv6 /48, host bits in both halves", "2001:db8::/48", "2001:db8::", "2001:db8:0:ffff:ffff:ffff:ffff:ffff"),
		Entry("IPv6 everything", "::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
	)

	It("Next and Prev carry across the 64-bit halves", func() {
		p := space.Point{Lo: ^uint64(0)}
		Expect(p.Next()).To(Equal(space.Point{Hi: 1}))
		Expect(p.Next().Prev()).To(Equal(p))
	})
})
