package netns

import (
	"context"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/egresslab/egresslab/netns/internal/topology"
)

// readyTimeout bounds the wait for the kernel to finish bringing the lab up.
const readyTimeout = 10 * time.Second

// WaitReady waits until the uplink can carry every address's packets: both
// ends of the veth are operationally up with their transmit queues attached
// (the kernel does that later, in its link-watch work; until then packets go
// to a discarding qdisc), and every IPv6 address on either end is live: not
// tentative, and with its local route. A nodad address is listed, never
// tentative, from the moment it is added, but the kernel makes it live later,
// in its addrconf work (addrconf_dad_work: it joins the address's
// solicited-node group, then addrconf_dad_completed inserts the local
// route), which waits for the RTNL lock on a loaded host. Until then the
// world drops the lab's neighbour solicitation for it, or a SYN to it, and
// the lab's first IPv6 probes get their answer only from the retransmission a
// second later. It waits on netlink notifications, not on a clock; call it
// after every address has been added and before probing.
//
// A lab with networks waits the same for each client's link and the bridge
// ports in the lab (the clients' first packets cross them) and for the
// addresses of each bridge (the clients' gateways), whose carrier needs no
// client.
func (l *Lab) WaitReady(ctx context.Context) error {
	ends := []uplinkEnd{{fd: l.labFD, name: l.cfg.Uplink}, {fd: l.worldFD, name: topology.WorldLink}}
	if l.Forwarding() {
		more, err := l.networkEnds()
		if err != nil {
			return err
		}
		ends = append(ends, more...)
	}
	return l.waitLive(ctx, ends...)
}

// networkEnds are the links of the lab's networks: the bridges (their
// addresses only), their ports, and each client's link.
func (l *Lab) networkEnds() ([]uplinkEnd, error) {
	h, err := netlink.NewHandleAt(vnetns.NsHandle(l.labFD))
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list the links of lab %s: %w", l.cfg.Name, err)
	}
	var ends []uplinkEnd
	for _, link := range links {
		a := link.Attrs()
		switch {
		case link.Type() == "bridge":
			ends = append(ends, uplinkEnd{fd: l.labFD, name: a.Name, addressesOnly: true})
		case a.MasterIndex != 0:
			ends = append(ends, uplinkEnd{fd: l.labFD, name: a.Name})
		}
	}
	for _, fd := range l.clientFDs {
		ends = append(ends, uplinkEnd{fd: fd, name: topology.ClientLink})
	}
	return ends, nil
}

// WaitWorldReady is WaitReady for the world's end alone: for addresses added
// to the world once the candidate is loaded (--complete's representatives),
// whose rules and state do not reach the world.
func (l *Lab) WaitWorldReady(ctx context.Context) error {
	return l.waitLive(ctx, uplinkEnd{fd: l.worldFD, name: topology.WorldLink})
}

// uplinkEnd is one end of the uplink (or of a network's link): its network
// namespace and link name; addressesOnly checks only that its IPv6
// addresses are live.
type uplinkEnd struct {
	fd            int
	name          string
	addressesOnly bool
}

// waitLive waits until every end is ready (linkReady), on netlink
// notifications of links, addresses and routes in their namespaces.
func (l *Lab) waitLive(ctx context.Context, ends ...uplinkEnd) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	wake := make(chan struct{}, 1)
	watched := map[int]bool{}
	for _, end := range ends {
		if watched[end.fd] {
			continue
		}
		watched[end.fd] = true
		ns := vnetns.NsHandle(end.fd)
		links := make(chan netlink.LinkUpdate, 16)
		addrs := make(chan netlink.AddrUpdate, 16)
		routes := make(chan netlink.RouteUpdate, 16)
		if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{Namespace: &ns}); err != nil {
			return fmt.Errorf("watch links in lab %s: %w", l.cfg.Name, err)
		}
		if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{Namespace: &ns}); err != nil {
			return fmt.Errorf("watch addresses in lab %s: %w", l.cfg.Name, err)
		}
		// An address becomes live with its local route, a notification of
		// its own that follows the address's.
		if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{Namespace: &ns}); err != nil {
			return fmt.Errorf("watch routes in lab %s: %w", l.cfg.Name, err)
		}
		go forward(links, wake)
		go forward(addrs, wake)
		go forward(routes, wake)
	}
	for {
		ready, why, err := l.ready(ends)
		if err != nil || ready {
			return err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("lab %s: %s after %s", l.cfg.Name, why, readyTimeout)
		}
	}
}

func forward[T any](in <-chan T, wake chan<- struct{}) {
	for range in {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// ready checks each end once.
func (l *Lab) ready(ends []uplinkEnd) (bool, string, error) {
	for _, end := range ends {
		h, err := netlink.NewHandleAt(vnetns.NsHandle(end.fd))
		if err != nil {
			return false, "", err
		}
		ok, why, err := topology.LinkReady(h, end.name, end.addressesOnly)
		h.Close()
		if err != nil || !ok {
			return false, why, err
		}
	}
	return true, "", nil
}
