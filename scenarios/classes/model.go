package classes

import (
	"fmt"
	"math"
	"net/netip"
)

// Family is an address family a class belongs to.
type Family uint8

const (
	IPv4 Family = 1 << iota
	IPv6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	case IPv4 | IPv6:
		return "ipv4+ipv6"
	}
	return "none"
}

// Proto is a transport protocol the lab probes.
type Proto uint8

const (
	TCP Proto = 1 << iota
	UDP
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case TCP | UDP:
		return "tcp+udp"
	}
	return "none"
}

// The whole of each dimension. uid and gid stop below 2^32-1, which the
// kernel keeps for "no id".
const (
	MaxID   = math.MaxUint32 - 1
	MinPort = 1
	MaxPort = math.MaxUint16
)

var (
	wholeID   = span{num(0), num(MaxID)}
	wholePort = span{num(MinPort), num(MaxPort)}
	wholeV4   = span{num(0), num(math.MaxUint32)}
	wholeV6   = span{point{}, point{math.MaxUint64, math.MaxUint64}}
)

func wholeAddr(f Family) span {
	if f == IPv4 {
		return wholeV4
	}
	return wholeV6
}

// RuleRef names a rule as its listing shows it.
type RuleRef struct {
	Tool   string // "nft", "iptables-nft", "ip6tables-legacy", ...
	Family string // nft's table family: ip, ip6, inet (iptables: ip or ip6)
	Table  string
	Chain  string
	Handle int    // nft's rule handle; 0 for a save line
	Line   int    // the line of a save text; 0 for nft's JSON
	Text   string // the save line, or nft's expressions in brief
}

func (r RuleRef) String() string {
	if r.Handle != 0 {
		return fmt.Sprintf("%s %s %s %s handle %d", r.Tool, r.Family, r.Table, r.Chain, r.Handle)
	}
	return fmt.Sprintf("%s line %d: %s", r.Tool, r.Line, r.Text)
}

// Unsplit is a match the lab cannot split into classes: what it looks at
// depends on state (marks, conntrack helpers, rates, earlier packets) or on
// something other than the probe's cell.
type Unsplit struct {
	Match string // as the listing names it: "-m limit", "ct helper", "meta mark"
	Rule  RuleRef
}

// Note is a match read but not split on (an output interface, a source
// address the lab chooses) or a rule left out (a protocol the lab does not
// probe).
type Note struct {
	What string
	Rule RuleRef
}

// Rule is what one rule matches on each dimension. A nil set matches the
// whole dimension.
type Rule struct {
	Ref      RuleRef
	Families Family
	Protos   Proto
	UID, GID *set
	// SupplGroups: the gid match also looks at supplementary groups
	// (`--suppl-groups`).
	SupplGroups bool
	Addr        *set // in Families' address space (one family when set)
	Port        *set
	Unsplit     []string
	Notes       []Note
	// never: a match nothing the lab probes can meet (another protocol).
	never bool
	// A forwarded packet's rule (Ruleset.Forward): the client's source
	// addresses, its interface matches, and whether it is read as the
	// answer's (whose source is the far end).
	Src    *set
	Ifaces []ifaceMatch
	answer bool
}

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
	at, last := addrPoint(r.First), addrPoint(r.Last)
	for at.cmp(last) <= 0 {
		bitsFree := 0
		for bitsFree < width {
			s := prefixSpan(netip.PrefixFrom(at.addr(f), width-bitsFree-1))
			if s.first != at || s.last.cmp(last) > 0 {
				break
			}
			bitsFree++
		}
		p := netip.PrefixFrom(at.addr(f), width-bitsFree)
		out = append(out, p)
		end := prefixSpan(p).last
		if end == last {
			break
		}
		at = end.next()
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
