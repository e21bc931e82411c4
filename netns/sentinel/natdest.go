package sentinel

import (
	"fmt"
	"net/netip"

	"github.com/egresslab/egresslab/netns"
)

// Where a flow went after the candidate's nat (a DNAT or REDIRECT in OUTPUT
// or PREROUTING) is recorded at the end of postrouting (post, after every
// nat hook) in a map per family, keyed as the flow sets are (conntrack's
// original tuple: the flow as dialled) to the packet's destination address
// and port as it leaves: the address and port a lab's service sees, which
// names who answered the probe. Only a connection conntrack marks as
// destination-NATed gets an element, so a probe no nat touched costs none.
var natDestMaps = []string{"nat_dst4", "nat_dst6"}

// natDestRules is how many rules installNATDest adds to post.
const natDestRules = 2

// ipsDstNAT is conntrack's IPS_DST_NAT status bit (linux/netfilter/
// nf_conntrack_common.h): the connection's destination was rewritten.
const ipsDstNAT = 1 << 5

// installNATDest adds the nat_dst maps and the rules that fill them to the
// sentinel's table in lab, whose post chain is there already.
func installNATDest(lab *netns.Lab) error {
	if err := installNATMaps(lab, "post", natDestMaps, natDestination); err != nil {
		return fmt.Errorf("install where nat sends a flow in lab %s: %w", lab.Name(), err)
	}
	return nil
}

// RewrittenTo is the address and port the candidate's nat sent f to, as
// its first packet left the host; ok is false when no nat rewrote f's
// destination (or its first packet never left).
func (s *Sentinel) RewrittenTo(f netns.Flow) (dst netip.AddrPort, ok bool, err error) {
	if s == nil {
		return dst, false, fmt.Errorf("the drop sentinel is not installed")
	}
	return s.natEnd(f, natDestMaps)
}
