package topology

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The world can own every address at once, the way a host owns 127.0.0.0/8:
// local routes for the whole of both families in its local table (the kernel
// looks that table up first), so that it accepts a packet to any address, an
// IPv4 ARP request for any address is answered (the kernel answers for
// whatever routes as local), and a socket may send from any of them. Nothing
// is added per address, and none of it is outside the lab: the world is a
// namespace of the lab's own, and the lab's only way into it is the uplink.
//
// Two halves per family rather than one default route: the world's main
// table holds its on-link default routes towards the lab, and IPv4 merges
// the local and main tables while no policy rule is added, where a local
// route of the same length would tie with them.
var anyAddrHalves = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/1"), netip.MustParsePrefix("128.0.0.0/1"),
	netip.MustParsePrefix("::/1"), netip.MustParsePrefix("8000::/1"),
}

// AnswerAnyAddress makes the world take every address as its own, but the
// lab's uplink addresses, its networks and IPv6 link-local addresses
// (netns.Lab.AnswerAnyAddress).
func AnswerAnyAddress(l Lab) error {
	world, err := netlink.NewHandleAt(vnetns.NsHandle(l.WorldNetNS))
	if err != nil {
		return fmt.Errorf("netlink in the world: %w", err)
	}
	defer world.Close()
	peer, err := world.LinkByName(WorldLink)
	if err != nil {
		return err
	}
	lo, err := world.LinkByName("lo")
	if err != nil {
		return err
	}
	// the lab's own addresses first: while they are missing, the halves
	// would take the world's answers to the lab for themselves
	lab := []netlink.Route{{LinkIndex: peer.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("fe80::/64")), Scope: netlink.SCOPE_LINK}}
	for _, p := range l.UplinkAddrs {
		lab = append(lab, netlink.Route{LinkIndex: peer.Attrs().Index, Dst: ipNet(netip.PrefixFrom(p.Addr(), p.Addr().BitLen())), Scope: netlink.SCOPE_LINK})
	}
	for _, n := range l.Networks {
		for _, p := range n.Addresses {
			if via, ok := l.uplinkAddr(p.Addr().Is4()); ok {
				lab = append(lab, netlink.Route{LinkIndex: peer.Attrs().Index, Dst: ipNet(p.Masked()), Gw: via.AsSlice()})
			}
		}
	}
	for _, r := range lab {
		r.Table = unix.RT_TABLE_LOCAL
		if err := world.RouteAdd(&r); err != nil {
			return fmt.Errorf("route the lab's %s from the world: %w", r.Dst, err)
		}
	}
	for _, p := range anyAddrHalves {
		r := &netlink.Route{LinkIndex: lo.Attrs().Index, Dst: ipNet(p), Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST, Table: unix.RT_TABLE_LOCAL}
		if err := world.RouteAdd(r); err != nil {
			return fmt.Errorf("add local route %s in the world: %w", p, err)
		}
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
