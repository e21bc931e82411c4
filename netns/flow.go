package netns

import (
	"fmt"
	"net/netip"
)

// Flow is one probe's connection as the kernel sees it: the source address
// and port the kernel picked, the destination, and the protocol.
type Flow struct {
	Src, Dst netip.AddrPort
	Proto    string // "tcp" or "udp"
}

func (f Flow) String() string { return fmt.Sprintf("%s %s -> %s", f.Proto, f.Src, f.Dst) }

// IPv6 reports whether the flow goes to an IPv6 destination (not an
// IPv4-mapped one).
func (f Flow) IPv6() bool { return f.Dst.Addr().Is6() && !f.Dst.Addr().Is4In6() }

// NextHop is the neighbour a packet to dst goes to first: the uplink's
// gateway, or dst itself when the uplink has none. ok is false for loopback.
func (l *Lab) NextHop(dst netip.Addr) (hop netip.Addr, gateway bool, ok bool) {
	if dst.IsLoopback() {
		return netip.Addr{}, false, false
	}
	for _, g := range l.gateways {
		if g.Is6() == dst.Is6() {
			return g, true, true
		}
	}
	return dst, false, true
}

// OnLink says whether the lab resolves dst's neighbour on the uplink itself
// rather than sending to the world's gateway: dst lies in one of the lab's
// uplink prefixes, or its family has no gateway.
func (l *Lab) OnLink(dst netip.Addr) bool {
	if dst.IsLoopback() {
		return false
	}
	for _, p := range l.cfg.UplinkAddrs {
		if p.Contains(dst) {
			return true
		}
	}
	_, gateway, _ := l.NextHop(dst)
	return !gateway
}
