package netns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns/internal/topology"
)

// readyTimeout bounds the wait for the kernel to finish bringing the lab up.
const readyTimeout = 10 * time.Second

// WaitReady waits until the uplink can carry every address's packets: both
// ends of the veth are operationally up with their transmit queues attached
// (the kernel does that later, in its link-watch work; until then packets go
// to a discarding qdisc), and no IPv6 address on either end is still
// tentative (even nodad addresses wait for the link, and until then have no
// local route). It waits on netlink notifications, not on a clock; call it
// after every address has been added and before probing.
func (l *Lab) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	wake := make(chan struct{}, 1)
	for _, fd := range []int{l.labFD, l.worldFD} {
		ns := vnetns.NsHandle(fd)
		links := make(chan netlink.LinkUpdate, 16)
		addrs := make(chan netlink.AddrUpdate, 16)
		if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{Namespace: &ns}); err != nil {
			return fmt.Errorf("watch links in lab %s: %w", l.cfg.Name, err)
		}
		if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{Namespace: &ns}); err != nil {
			return fmt.Errorf("watch addresses in lab %s: %w", l.cfg.Name, err)
		}
		go forward(links, wake)
		go forward(addrs, wake)
	}
	for {
		ready, why, err := l.ready()
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

// ready checks both ends of the uplink once.
func (l *Lab) ready() (bool, string, error) {
	for _, end := range []struct {
		fd   int
		name string
	}{{l.labFD, l.cfg.Uplink}, {l.worldFD, topology.WorldLink}} {
		h, err := netlink.NewHandleAt(vnetns.NsHandle(end.fd))
		if err != nil {
			return false, "", err
		}
		ok, why, err := linkReady(h, end.name)
		h.Close()
		if err != nil || !ok {
			return false, why, err
		}
	}
	return true, "", nil
}

func linkReady(h *netlink.Handle, name string) (bool, string, error) {
	link, err := h.LinkByName(name)
	if err != nil {
		return false, "", err
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
	return true, "", nil
}
