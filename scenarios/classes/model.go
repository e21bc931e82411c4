package classes

import (
	"fmt"
	"net/netip"

	"github.com/egresslab/egresslab/scenarios/classes/space"
)

// IDRange is a closed range of uids or gids.
type IDRange struct{ First, Last uint32 }

func (r IDRange) String() string {
	if r.First == r.Last {
		return fmt.Sprint(r.First)
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// PortRange is a closed range of ports.
type PortRange struct{ First, Last uint16 }

func (r PortRange) String() string {
	if r.First == r.Last {
		return fmt.Sprint(r.First)
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// AddrRange is a closed range of addresses of one family.
type AddrRange struct{ First, Last netip.Addr }

// Prefixes are the fewest prefixes that cover the range exactly.
func (r AddrRange) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	f := IPv6
	if r.First.Is4() {
		f = IPv4
	}
	width := 128
	if f == IPv4 {
		width = 32
	}
	at, last := space.AddrPoint(r.First), space.AddrPoint(r.Last)
	for at.Compare(last) <= 0 {
		bitsFree := 0
		for bitsFree < width {
			s := space.PrefixSpan(netip.PrefixFrom(at.Addr(f), width-bitsFree-1))
			if s.First != at || s.Last.Compare(last) > 0 {
				break
			}
			bitsFree++
		}
		p := netip.PrefixFrom(at.Addr(f), width-bitsFree)
		out = append(out, p)
		end := space.PrefixSpan(p).Last
		if end == last {
			break
		}
		at = end.Next()
	}
	return out
}

func (r AddrRange) String() string {
	ps := r.Prefixes()
	if len(ps) == 1 {
		return ps[0].String()
	}
	return r.First.String() + "-" + r.Last.String()
}

// Source is the identities of a class: a uid in UIDs, a gid in GIDs.
// SupplGroups says a `--suppl-groups` rule touches the class, so an identity
// whose supplementary groups fall in GIDs belongs to it too.
type Source struct {
	UIDs, GIDs  []IDRange
	SupplGroups bool
}

// Representative is the cell a class is probed at.
type Representative struct {
	User   string // the policy user chosen, or "" for a synthetic identity
	UID    uint32
	GID    uint32
	Groups []uint32 // a policy user's; a synthetic identity has none
	Addr   netip.Addr
	Port   uint16
	// Policy says which of user, address and port came from the policy.
	PolicyUser, PolicyAddr, PolicyPort bool
	// A forwarded class's: the policy client chosen ("" for a synthetic
	// one), and the source address it sends from.
	Client       string
	Src          netip.Addr
	PolicyClient bool
}

// Class is a set of cells no rule of the ruleset tells apart: every rule
// matches all of them or none.
type Class struct {
	Family         Family
	Proto          Proto
	Source         Source
	Addresses      []AddrRange
	Ports          []PortRange
	Representative Representative
	// Sampled: a rule that cannot be split applies to the class, so its
	// representative speaks for it only as a sample.
	Sampled bool
	Unsplit []Unsplit
	// Notes are the output-interface and other matches read but not split on.
	Notes []Note
	// Network is, for a class of forwarded traffic, the network its clients
	// are in, and Sources their addresses ("" and nil for the host's own).
	Network string
	Sources []AddrRange
}
