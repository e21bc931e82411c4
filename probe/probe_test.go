package probe

import (
	"net/netip"
	"strings"
	"testing"
)

func TestOutcomeNames(t *testing.T) {
	for o := Error; o <= Dropped; o++ {
		var back Outcome
		if err := back.UnmarshalText([]byte(o.String())); err != nil || back != o {
			t.Errorf("%s does not round-trip: %v", o, err)
		}
	}
	if Error.Blocked() {
		t.Error("a probe error must never count as blocked")
	}
}

func TestSortRFC6724(t *testing.T) {
	a := netip.MustParseAddr
	// The lab's sources: a global IPv6 and an IPv4 uplink address, loopback on lo.
	source := func(d netip.Addr) (netip.Addr, bool) {
		switch {
		case d.IsLoopback() && d.Is4():
			return a("127.0.0.1"), true
		case d.IsLoopback():
			return a("::1"), true
		case d == a("2001:db8::99"):
			return netip.Addr{}, false // unreachable
		case d.Is4():
			return a("203.0.113.10"), true
		}
		return a("2001:db8:1::10"), true
	}
	cases := []struct {
		name string
		in   []string
		want []string
	}{
		{"global IPv6 before IPv4, as telnet tried it", []string{"192.0.2.25", "2001:db8::25"}, []string{"2001:db8::25", "192.0.2.25"}},
		{"::1 before 127.0.0.1", []string{"127.0.0.1", "::1"}, []string{"::1", "127.0.0.1"}},
		{"unusable last", []string{"2001:db8::99", "192.0.2.25"}, []string{"192.0.2.25", "2001:db8::99"}},
		{"Teredo after IPv4", []string{"2001:0:53aa:64c::1", "192.0.2.25"}, []string{"192.0.2.25", "2001:0:53aa:64c::1"}},
		{"stable for equals", []string{"192.0.2.2", "192.0.2.1"}, []string{"192.0.2.2", "192.0.2.1"}},
	}
	for _, c := range cases {
		var in []netip.Addr
		for _, s := range c.in {
			in = append(in, a(s))
		}
		got := SortRFC6724(in, source)
		var gotS []string
		for _, g := range got {
			gotS = append(gotS, g.String())
		}
		if strings.Join(gotS, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s: got %v, want %v", c.name, gotS, c.want)
		}
	}
}
