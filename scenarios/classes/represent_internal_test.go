package classes

import (
	"net/netip"
	"testing"

	"github.com/egresslab/egresslab/scenarios/classes/space"
)

// A class of multicast (or other reserved) addresses only has no address a
// unicast probe reaches: no representative address, rather than one the
// world cannot hold (ff00::1 made the lab fail to start its --complete run).
func TestSyntheticAddrOfReservedOnlyClasses(t *testing.T) {
	for _, c := range []struct {
		f     Family
		spans []string
		want  netip.Addr
	}{
		{IPv6, []string{"ff00::/8"}, netip.Addr{}},
		{IPv4, []string{"224.0.0.0/4"}, netip.Addr{}},
		{IPv6, []string{"fe80::/10", "ff00::/8"}, netip.Addr{}},
		{IPv6, []string{"ff00::/8", "2001:db8::/32"}, netip.MustParseAddr("2001:db8::1")},
		{IPv4, []string{"127.0.0.0/8"}, netip.MustParseAddr("127.0.0.1")},
	} {
		if got := syntheticAddr(c.f, space.Normalize(prefixSpans(c.spans...))); got != c.want {
			t.Errorf("syntheticAddr(%v, %v) = %v, want %v", c.f, c.spans, got, c.want)
		}
	}
}
