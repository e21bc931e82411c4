package netns

import (
	"net/netip"
	"slices"

	"github.com/egresslab/egresslab/netns/internal/topology"
)

// topology is what the wiring (netns/internal/topology) needs of the lab.
func (l *Lab) topology() topology.Lab {
	nets := make([]topology.Network, len(l.cfg.Networks))
	for i, n := range l.cfg.Networks {
		nets[i] = topology.Network{Name: n.Name, Addresses: n.Addresses}
		for _, c := range n.Clients {
			nets[i].Clients = append(nets[i].Clients, topology.Client(c))
		}
	}
	return topology.Lab{NetNS: l.labFD, WorldNetNS: l.worldFD, Uplink: l.cfg.Uplink, UplinkAddrs: l.cfg.UplinkAddrs,
		Networks: nets, ClientNetNS: l.clientFDs}
}

// AddWorldAddress makes addr live one hop away, beyond the uplink. Loopback
// addresses need nothing: they live on the lab's lo.
func (l *Lab) AddWorldAddress(addr netip.Addr) error {
	if addr.IsLoopback() || slices.Contains(l.worldAddrs, addr) {
		return nil // each of a host's ports asks again: one netlink handle each was most of serving
	}
	err := topology.AddWorldAddress(l.worldFD, addr)
	if err == nil {
		l.worldAddrs = append(l.worldAddrs, addr)
	}
	return err
}

// AnswerAnyAddress makes the world take every address as its own, except
// those that are the lab's: its uplink addresses, its networks (the clients
// behind it) and IPv6 link-local addresses, which keep routing out of the
// uplink as before. Neighbour discovery of IPv6 (unlike ARP) answers only
// for addresses the world holds: a destination the lab resolves on the link
// itself (OnLink) still needs AddWorldAddress.
func (l *Lab) AnswerAnyAddress() error {
	if l.anyAddr {
		return nil
	}
	if err := topology.AnswerAnyAddress(l.topology()); err != nil {
		return err
	}
	l.anyAddr = true
	return nil
}
