package topology

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

// ClientLink is the name of a client's end of its veth, in its namespace.
const ClientLink = "eth0"

// wireNetworks makes each network's bridge with the host's addresses on it,
// each client's veth into it with its addresses and default routes via the
// network's gateway, and the world's routes back to the networks' prefixes
// through the lab's uplink, as the upstream router of a routed prefix has.
func (l Lab) wireNetworks(lab, world *netlink.Handle, peer netlink.Link) error {
	i := 0
	for _, n := range l.Networks {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Name}}
		if err := lab.LinkAdd(br); err != nil {
			return fmt.Errorf("add network %s's bridge: %w", n.Name, err)
		}
		bridge, err := lab.LinkByName(n.Name)
		if err != nil {
			return err
		}
		for _, p := range n.Addresses {
			if err := addAddr(lab, bridge, p); err != nil {
				return err
			}
			if via, ok := l.uplinkAddr(p.Addr().Is4()); ok {
				if err := routeAdd(world, peer, p.Masked(), via); err != nil {
					return err
				}
			}
		}
		if err := lab.LinkSetUp(bridge); err != nil {
			return fmt.Errorf("set %s up: %w", n.Name, err)
		}
		for _, c := range n.Clients {
			port := fmt.Sprintf("veth%d", i)
			i++
			if err := l.wireClient(lab, bridge, port, n, c); err != nil {
				return fmt.Errorf("wire client %s of %s: %w", c.Name, n.Name, err)
			}
		}
	}
	return nil
}

func (l Lab) wireClient(lab *netlink.Handle, bridge netlink.Link, port string, n Network, c Client) error {
	fd := l.ClientNetNS[c.Name]
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: port, MasterIndex: bridge.Attrs().Index},
		PeerName:      ClientLink,
		PeerNamespace: netlink.NsFd(fd),
	}
	if err := lab.LinkAdd(veth); err != nil {
		return fmt.Errorf("add %s: %w", port, err)
	}
	ours, err := lab.LinkByName(port)
	if err != nil {
		return err
	}
	if err := lab.LinkSetUp(ours); err != nil {
		return err
	}
	h, err := netlink.NewHandleAt(vnetns.NsHandle(fd))
	if err != nil {
		return fmt.Errorf("netlink in the client: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	eth, err := h.LinkByName(ClientLink)
	if err != nil {
		return err
	}
	for _, link := range []netlink.Link{lo, eth} {
		if err := h.LinkSetUp(link); err != nil {
			return err
		}
	}
	for _, a := range c.Addresses {
		gw, ok := gatewayOf(n, a)
		if !ok {
			return fmt.Errorf("address %s is in none of the network's prefixes", a)
		}
		if err := addAddr(h, eth, netip.PrefixFrom(a, gw.Bits())); err != nil {
			return err
		}
		def := netip.MustParsePrefix("0.0.0.0/0")
		if a.Is6() {
			def = netip.MustParsePrefix("::/0")
		}
		if err := routeAdd(h, eth, def, gw.Addr()); err != nil {
			return err
		}
	}
	return nil
}

// gatewayOf is the network's address (with its prefix) that holds a.
func gatewayOf(n Network, a netip.Addr) (netip.Prefix, bool) {
	for _, p := range n.Addresses {
		if p.Contains(a) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// uplinkAddr is the lab's uplink address of the family, the world's next hop
// back to the networks.
func (l Lab) uplinkAddr(v4 bool) (netip.Addr, bool) {
	for _, p := range l.UplinkAddrs {
		if p.Addr().Is4() == v4 {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}
