package netns

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/egresslab/egresslab/netns/internal/topology"
)

// CheckWorld verifies that the world beyond the uplink, which a real host
// does not have, survived the candidate: its link, up, with every address the
// lab gave it. A *TamperError means no verdict of this lab can be trusted.
// What the candidate did to the host itself (an interface down, routes) is
// not tampering: probes meet it as a real host would.
func (l *Lab) CheckWorld() error {
	lab, err := netlink.NewHandleAt(vnetns.NsHandle(l.labFD))
	if err != nil {
		return fmt.Errorf("netlink in lab %s: %w", l.cfg.Name, err)
	}
	defer lab.Close()
	if _, err := lab.LinkByName(l.cfg.Uplink); err != nil {
		return nil // the candidate removed the host's own uplink: probes meet that
	}
	world, err := netlink.NewHandleAt(vnetns.NsHandle(l.worldFD))
	if err != nil {
		return fmt.Errorf("netlink in the world of lab %s: %w", l.cfg.Name, err)
	}
	defer world.Close()
	peer, err := world.LinkByName(topology.WorldLink)
	if err != nil {
		return &TamperError{Lab: l.cfg.Name, What: "the world beyond the uplink (its link is gone)"}
	}
	if peer.Attrs().Flags&net.FlagUp == 0 {
		return &TamperError{Lab: l.cfg.Name, What: "the world beyond the uplink (its link was set down)"}
	}
	addrs, err := world.AddrList(peer, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list the world's addresses in lab %s: %w", l.cfg.Name, err)
	}
	have := map[netip.Addr]bool{}
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP)
		have[ip.Unmap()] = true
	}
	for _, a := range append(l.worldAddrs, l.gateways...) {
		if !have[a] {
			return &TamperError{Lab: l.cfg.Name, What: fmt.Sprintf("the world beyond the uplink (address %s is gone)", a)}
		}
	}
	return nil
}

// TamperError says the candidate removed or changed a part of the harness
// that a real host does not have: no verdict of that lab can be trusted.
type TamperError struct {
	Lab  string
	What string
}

func (e *TamperError) Error() string {
	return fmt.Sprintf("the candidate ruleset changed the lab's own machinery in lab %s: %s; egresslab cannot give verdicts for a ruleset that removes or alters it", e.Lab, e.What)
}
