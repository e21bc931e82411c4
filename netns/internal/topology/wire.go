package topology

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// WorldLink is the name of the uplink's peer, in the world's namespace.
const WorldLink = "lab"

// Lab is what the wiring needs to know of a lab.
type Lab struct {
	NetNS, WorldNetNS int // the lab's and the world's network namespaces
	Uplink            string
	UplinkAddrs       []netip.Prefix
	Networks          []Network
	ClientNetNS       map[string]int // each client's network namespace, by name
}

// Network is a network the lab host routes for, with its clients behind it
// (netns.Network).
type Network struct {
	Name      string
	Addresses []netip.Prefix
	Clients   []Client
}

// Client is a machine behind a network (netns.Client).
type Client struct {
	Name      string
	Addresses []netip.Addr
}

// Wire brings up lo, the uplink and its peer in the world, default routes
// of both families in each direction, and the networks with their clients;
// it returns the world's router addresses on the uplink. Every non-loopback
// host address is added to the world's side later, by AddWorldAddress.
func Wire(l Lab) (gateways []netip.Addr, err error) {
	lab, err := netlink.NewHandleAt(vnetns.NsHandle(l.NetNS))
	if err != nil {
		return nil, fmt.Errorf("netlink in the lab: %w", err)
	}
	defer lab.Close()
	world, err := netlink.NewHandleAt(vnetns.NsHandle(l.WorldNetNS))
	if err != nil {
		return nil, fmt.Errorf("netlink in the world: %w", err)
	}
	defer world.Close()

	for _, h := range []*netlink.Handle{lab, world} {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return nil, err
		}
		if err := h.LinkSetUp(lo); err != nil {
			return nil, fmt.Errorf("set lo up: %w", err)
		}
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: l.Uplink},
		PeerName:      WorldLink,
		PeerNamespace: netlink.NsFd(l.WorldNetNS),
	}
	if err := lab.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("add uplink %s: %w", l.Uplink, err)
	}
	up, err := lab.LinkByName(l.Uplink)
	if err != nil {
		return nil, err
	}
	peer, err := world.LinkByName(WorldLink)
	if err != nil {
		return nil, err
	}
	// The world is the lab's router: it owns a gateway address in each of
	// the lab's uplink prefixes, and the lab's default routes go through it,
	// as a host's do. Neighbour caches start empty on both sides: discovery
	// of the gateway (and of the lab, by the router) goes through the
	// candidate's rules, as after a host's boot.
	for _, p := range l.UplinkAddrs {
		if err := addAddr(lab, up, p); err != nil {
			return nil, err
		}
		if gw, ok := gatewayFor(p); ok {
			if err := addAddr(world, peer, netip.PrefixFrom(gw, p.Bits())); err != nil {
				return nil, err
			}
			gateways = append(gateways, gw)
		}
	}
	for _, x := range []struct {
		h    *netlink.Handle
		link netlink.Link
	}{{lab, up}, {world, peer}} {
		if err := x.h.LinkSetUp(x.link); err != nil {
			return nil, fmt.Errorf("set %s up: %w", x.link.Attrs().Name, err)
		}
	}
	for _, dst := range []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")} {
		// The world reaches every lab address directly on the shared link.
		if err := routeAdd(world, peer, dst, netip.Addr{}); err != nil {
			return nil, err
		}
		var via netip.Addr
		for _, gw := range gateways {
			if gw.Is4() == dst.Addr().Is4() {
				via = gw
			}
		}
		if err := routeAdd(lab, up, dst, via); err != nil {
			return nil, err
		}
	}
	return gateways, l.wireNetworks(lab, world, peer)
}

// gatewayFor picks the router's address in the lab's uplink prefix p: the
// prefix's first address after the network's, or the next one if that is
// the lab's own. A prefix too small for a router gets none (routes on-link).
func gatewayFor(p netip.Prefix) (netip.Addr, bool) {
	if p.Bits() >= p.Addr().BitLen()-1 {
		return netip.Addr{}, false
	}
	gw := p.Masked().Addr().Next()
	if gw == p.Addr() {
		gw = gw.Next()
	}
	return gw, p.Contains(gw)
}

// routeAdd adds a default (or other) route on link: through via, or on-link
// when via is not valid.
func routeAdd(h *netlink.Handle, link netlink.Link, dst netip.Prefix, via netip.Addr) error {
	r := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())},
		Scope:     netlink.SCOPE_LINK,
	}
	if via.IsValid() {
		r.Gw, r.Scope = via.AsSlice(), netlink.SCOPE_UNIVERSE
	}
	if err := h.RouteAdd(r); err != nil {
		return fmt.Errorf("add route %s via %s on %s: %w", dst, via, link.Attrs().Name, err)
	}
	return nil
}

func addAddr(h *netlink.Handle, link netlink.Link, p netip.Prefix) error {
	a := &netlink.Addr{
		IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Flags: unix.IFA_F_NODAD,
	}
	if err := h.AddrAdd(link, a); err != nil {
		return fmt.Errorf("add address %s to %s: %w", p, link.Attrs().Name, err)
	}
	return nil
}

// AddWorldAddress makes addr live one hop away, beyond the uplink, in the
// world whose network namespace is worldNetNS.
func AddWorldAddress(worldNetNS int, addr netip.Addr) error {
	world, err := netlink.NewHandleAt(vnetns.NsHandle(worldNetNS))
	if err != nil {
		return fmt.Errorf("netlink in the world: %w", err)
	}
	defer world.Close()
	peer, err := world.LinkByName(WorldLink)
	if err != nil {
		return err
	}
	err = addAddr(world, peer, netip.PrefixFrom(addr, addr.BitLen()))
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}
