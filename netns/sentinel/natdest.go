package sentinel

import (
	"fmt"

	"github.com/egresslab/egresslab/netns"
)

// Where a flow went, and where from, after the candidate's nat (a DNAT or
// REDIRECT in OUTPUT or PREROUTING; an SNAT or MASQUERADE, or conntrack's
// own new source port for two connections that nat made one) is recorded at
// the end of postrouting (post, after every nat hook) in maps per family,
// keyed as the flow sets are (conntrack's original tuple: the flow as
// dialled) to the packet's destination, or source, address and port as it
// leaves: the connection's ends as a lab's service sees them, which name who
// answered the probe. Only a connection conntrack marks as rewritten gets
// an element, so a probe no nat touched costs none. One map cannot hold
// both ends: an IPv6 key and two IPv6 ends overflow nftables' registers.
var (
	natDestMaps   = []string{"nat_dst4", "nat_dst6"}
	natSourceMaps = []string{"nat_src4", "nat_src6"}
)

// natRules is how many rules installAfterNAT adds to post.
const natRules = 4

// Conntrack's status bits (linux/netfilter/nf_conntrack_common.h): the
// connection's source (IPS_SRC_NAT), or destination (IPS_DST_NAT), was
// rewritten.
const (
	ipsSrcNAT = 1 << 4
	ipsDstNAT = 1 << 5
)

var (
	natDestination = natEnd{addrAt: [2]uint32{16, 24}, portAt: 2, status: ipsDstNAT}
	natHostSource  = natEnd{addrAt: [2]uint32{12, 8}, portAt: 0, status: ipsSrcNAT}
)

// installAfterNAT adds the nat_dst and nat_src maps and the rules that fill
// them to the sentinel's table in lab, whose post chain is there already.
func installAfterNAT(lab *netns.Lab) error {
	if err := installNATMaps(lab, "post", natDestMaps, natDestination); err != nil {
		return fmt.Errorf("install where nat sends a flow in lab %s: %w", lab.Name(), err)
	}
	if err := installNATMaps(lab, "post", natSourceMaps, natHostSource); err != nil {
		return fmt.Errorf("install where nat sends a flow from in lab %s: %w", lab.Name(), err)
	}
	return nil
}

// AfterNAT is f as its first packet left the host, after the candidate's
// nat: each end the nat rewrote as it was rewritten, the others as dialled.
func (s *Sentinel) AfterNAT(f netns.Flow) (netns.Flow, error) {
	if s == nil {
		return f, fmt.Errorf("the drop sentinel is not installed")
	}
	dst, rewritten, err := s.natEnd(f, natDestMaps)
	if err != nil {
		return f, err
	}
	src, srcRewritten, err := s.natEnd(f, natSourceMaps)
	if err != nil {
		return f, err
	}
	if rewritten {
		f.Dst = dst
	}
	if srcRewritten {
		f.Src = src
	}
	return f, nil
}
