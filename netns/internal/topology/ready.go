package topology

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkReady says whether the link name can carry its addresses' packets:
// up, with a transmit queue, and every IPv6 address on it live (with
// addressesOnly, only the last); when not, why.
func LinkReady(h *netlink.Handle, name string, addressesOnly bool) (bool, string, error) {
	link, err := h.LinkByName(name)
	if err != nil {
		return false, "", err
	}
	if addressesOnly {
		return addressesLive(h, link, name)
	}
	if link.Attrs().OperState != netlink.OperUp {
		return false, fmt.Sprintf("%s is not up (%s)", name, link.Attrs().OperState), nil
	}
	qdiscs, err := h.QdiscList(link)
	if err != nil {
		return false, "", err
	}
	for _, q := range qdiscs {
		if q.Type() == "noop" {
			return false, fmt.Sprintf("%s has no transmit queue yet", name), nil
		}
	}
	return addressesLive(h, link, name)
}

// addressesLive checks that every IPv6 address on link is live: not
// tentative, and with its local route.
func addressesLive(h *netlink.Handle, link netlink.Link, name string) (bool, string, error) {
	addrs, err := h.AddrList(link, netlink.FAMILY_V6)
	if errors.Is(err, netlink.ErrDumpInterrupted) {
		// The addresses changed while the kernel listed them (thousands of
		// them leaving the tentative state): that change is a notification
		// too, and the next check reads the list anew.
		return false, fmt.Sprintf("%s's addresses were changing", name), nil
	}
	if err != nil {
		return false, "", err
	}
	for _, a := range addrs {
		if a.Flags&unix.IFA_F_TENTATIVE != 0 {
			return false, fmt.Sprintf("%s's address %s is still tentative", name, a.IP), nil
		}
	}
	live, err := localRoutes(h)
	if errors.Is(err, netlink.ErrDumpInterrupted) {
		return false, fmt.Sprintf("%s's routes were changing", name), nil
	}
	if err != nil {
		return false, "", err
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); !ok || !live[ip] {
			return false, fmt.Sprintf("%s's address %s has no local route yet", name, a.IP), nil
		}
	}
	return true, "", nil
}

// localRoutes is the set of IPv6 addresses the local routing table delivers
// to this host: the addresses that are live.
func localRoutes(h *netlink.Handle) (map[netip.Addr]bool, error) {
	routes, err := h.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Table: unix.RT_TABLE_LOCAL}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, err
	}
	live := make(map[netip.Addr]bool, len(routes))
	for _, r := range routes {
		if r.Type != unix.RTN_LOCAL || r.Dst == nil {
			continue
		}
		if ip, ok := netip.AddrFromSlice(r.Dst.IP); ok {
			live[ip] = true
		}
	}
	return live, nil
}
