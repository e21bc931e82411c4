package netns

import (
	"fmt"
	"math"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The sentinel is built here, in this process, as one nftables transaction
// over netlink: an nft run that parsed and evaluated it cost about 30 ms of
// every lab (most of a small verify's distance to the floor). The rules are
// exactly what nft makes of the ruleset written in nft's own syntax in
// sentinel_test.go, and a spec compares the two, rule by rule, byte code
// and all, as the kernel lists them.

// field is one part of a set's key: a payload (network or transport header,
// byte offset and length) or the packet's layer 4 protocol.
type field struct {
	base    expr.PayloadBase
	offset  uint32
	len     uint32
	l4proto bool
	typ     nftables.SetDatatype // how nft shows it
}

var (
	ip4Src  = field{base: expr.PayloadBaseNetworkHeader, offset: 12, len: 4, typ: nftables.TypeIPAddr}
	ip4Dst  = field{base: expr.PayloadBaseNetworkHeader, offset: 16, len: 4, typ: nftables.TypeIPAddr}
	ip6Src  = field{base: expr.PayloadBaseNetworkHeader, offset: 8, len: 16, typ: nftables.TypeIP6Addr}
	ip6Dst  = field{base: expr.PayloadBaseNetworkHeader, offset: 24, len: 16, typ: nftables.TypeIP6Addr}
	thSport = field{base: expr.PayloadBaseTransportHeader, offset: 0, len: 2, typ: nftables.TypeInetService}
	thDport = field{base: expr.PayloadBaseTransportHeader, offset: 2, len: 2, typ: nftables.TypeInetService}
	l4proto = field{l4proto: true, len: 1, typ: nftables.TypeInetProto}
)

// th is a raw field of the transport header (nft's @th,BITS,LEN), which in
// an ICMP error is the offending packet's header. Its type is what the bytes
// hold; nft, reading raw fields, would say integer.
func th(byteOffset, length uint32, typ nftables.SetDatatype) field {
	return field{base: expr.PayloadBaseTransportHeader, offset: byteOffset, len: length, typ: typ}
}

// The keys of the sets: a flow (and an answer's flow read backwards), the
// flow an ICMP error names (8 bytes of ICMP header, then the offending IP
// header and its ports), and a neighbour discovery message's target.
var (
	flowKey4    = []field{ip4Src, thSport, ip4Dst, thDport, l4proto}
	flowKey4Rev = []field{ip4Dst, thDport, ip4Src, thSport, l4proto}
	flowKey6    = []field{ip6Src, thSport, ip6Dst, thDport, l4proto}
	flowKey6Rev = []field{ip6Dst, thDport, ip6Src, thSport, l4proto}
	icmpFlow4   = []field{th(20, 4, nftables.TypeIPAddr), th(28, 2, nftables.TypeInetService), th(24, 4, nftables.TypeIPAddr), th(30, 2, nftables.TypeInetService)}
	icmpFlow6   = []field{th(16, 16, nftables.TypeIP6Addr), th(48, 2, nftables.TypeInetService), th(32, 16, nftables.TypeIP6Addr), th(50, 2, nftables.TypeInetService)}
	ndTargetKey = []field{th(8, 16, nftables.TypeIP6Addr)}
)

// match is what a sentinel rule asks of a packet before it records it: the
// family, the layer 4 protocol, TCP flags under a mask, and single bytes of
// the transport header (an ICMP type, an ICMP error's inner protocol).
type match struct {
	nfproto, proto byte
	flags          *[2]byte // mask, value
	bytes          [][2]uint32
}

type sentinelRule struct {
	match
	key []field
	set string
}

var (
	tcp4, tcp6   = match{nfproto: unix.NFPROTO_IPV4, proto: unix.IPPROTO_TCP}, match{nfproto: unix.NFPROTO_IPV6, proto: unix.IPPROTO_TCP}
	udp4, udp6   = match{nfproto: unix.NFPROTO_IPV4, proto: unix.IPPROTO_UDP}, match{nfproto: unix.NFPROTO_IPV6, proto: unix.IPPROTO_UDP}
	flagsSYN     = &[2]byte{0x12, 0x02} // tcp flags & (syn|ack) == syn
	flagsSYNACK  = &[2]byte{0x12, 0x12} // tcp flags & (syn|ack) == syn|ack
	flagsRST     = &[2]byte{0x04, 0x04} // tcp flags & rst == rst
	icmpUnreach4 = match{nfproto: unix.NFPROTO_IPV4, proto: unix.IPPROTO_ICMP, bytes: [][2]uint32{{0, 3}}}
	icmpUnreach6 = match{nfproto: unix.NFPROTO_IPV6, proto: unix.IPPROTO_ICMPV6, bytes: [][2]uint32{{0, 1}}}
)

func withFlags(m match, f *[2]byte) match { m.flags = f; return m }

// innerProto is an ICMP error whose offending packet was of protocol p (at
// byte 9 of its IPv4 header, or 6 of its IPv6 header, after 8 of ICMP).
func innerProto(m match, p uint32) match {
	off := uint32(17)
	if m.nfproto == unix.NFPROTO_IPV6 {
		off = 14
	}
	m.bytes = append(append([][2]uint32{}, m.bytes...), [2]uint32{off, p})
	return m
}

func ndType(t uint32) match {
	return match{nfproto: unix.NFPROTO_IPV6, proto: unix.IPPROTO_ICMPV6, bytes: [][2]uint32{{0, t}}}
}

// sentinelSpec is the sentinel: its sets, and its chains with their rules,
// in order (see sentinel.go for what each set records).
func sentinelSpec() (sets map[string][]field, chains []sentinelChain) {
	sets = map[string][]field{}
	for _, name := range flowSets {
		sets[name+"4"], sets[name+"6"] = flowKey4, flowKey6
	}
	for _, name := range []string{icmpSets["tcp"], icmpSets["udp"]} {
		sets[name+"4"], sets[name+"6"] = icmpFlow4, icmpFlow6
	}
	for _, name := range ndSets {
		sets[name] = ndTargetKey
	}
	// A probe's first packet (a TCP SYN without ACK, or any UDP datagram)
	// and an answer (SYN-ACK, or UDP), in both families.
	first := func(set string, fwd bool) []sentinelRule {
		k4, k6 := flowKey4, flowKey6
		if !fwd {
			k4, k6 = flowKey4Rev, flowKey6Rev
		}
		return []sentinelRule{
			{withFlags(tcp4, flagsSYN), k4, set + "4"}, {withFlags(tcp6, flagsSYN), k6, set + "6"},
			{udp4, k4, set + "4"}, {udp6, k6, set + "6"},
		}
	}
	answer := func(set string) []sentinelRule {
		return []sentinelRule{
			{withFlags(tcp4, flagsSYNACK), flowKey4Rev, set + "4"}, {withFlags(tcp6, flagsSYNACK), flowKey6Rev, set + "6"},
			{udp4, flowKey4Rev, set + "4"}, {udp6, flowKey6Rev, set + "6"},
		}
	}
	nd := func(typ uint32, set string) sentinelRule { return sentinelRule{ndType(typ), ndTargetKey, set} }
	const solicit, advert = 135, 136

	var post []sentinelRule
	post = append(post, first("out", true)...)
	post = append(post,
		sentinelRule{withFlags(tcp4, flagsRST), flowKey4Rev, "rst4"},
		sentinelRule{withFlags(tcp6, flagsRST), flowKey6Rev, "rst6"},
		sentinelRule{innerProto(icmpUnreach4, unix.IPPROTO_TCP), icmpFlow4, "icmp_tcp4"},
		sentinelRule{innerProto(icmpUnreach4, unix.IPPROTO_UDP), icmpFlow4, "icmp_udp4"},
		sentinelRule{innerProto(icmpUnreach6, unix.IPPROTO_TCP), icmpFlow6, "icmp_tcp6"},
		sentinelRule{innerProto(icmpUnreach6, unix.IPPROTO_UDP), icmpFlow6, "icmp_udp6"})
	post = append(post, answer("rep_out")...)
	post = append(post, nd(solicit, "ns_out"), nd(advert, "rna_out"))

	firstOut := append(answer("rep_gen"), nd(solicit, "ns_gen"), nd(advert, "rna_gen"))
	firstIn := append(first("req_arr", true), answer("rep_arr")...)
	firstIn = append(firstIn, nd(solicit, "rns_arr"), nd(advert, "na_arr"))
	lastIn := append(first("req_in", true), answer("rep_in")...)
	lastIn = append(lastIn, nd(solicit, "rns_in"), nd(advert, "na_in"))
	chains = []sentinelChain{
		{"post", nftables.ChainHookPostrouting, math.MaxInt32, post},
		{"first_out", nftables.ChainHookOutput, math.MinInt32, firstOut},
		{"first_in", nftables.ChainHookPrerouting, math.MinInt32, firstIn},
		{"last_in", nftables.ChainHookInput, math.MaxInt32, lastIn},
	}
	return sets, chains
}

type sentinelChain struct {
	name     string
	hook     *nftables.ChainHook
	priority int32
	rules    []sentinelRule
}

// flowSetTimeout lets flow elements nobody removes (answers that belong to
// no probe, a probe abandoned mid-way) age out; probes remove their own.
const flowSetTimeout = 10 * time.Minute

// buildSentinel queues the sentinel's table, sets, chains and rules on c;
// c.Flush() sends them as one transaction.
func buildSentinel(c *nftables.Conn) error {
	table := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: sentinelTable})
	specs, chains := sentinelSpec()
	sets := map[string]*nftables.Set{}
	// In a fixed order: the kernel lists sets as they were added.
	var names []string
	for _, name := range flowSets {
		names = append(names, name+"4", name+"6")
	}
	for _, name := range []string{icmpSets["tcp"], icmpSets["udp"]} {
		names = append(names, name+"4", name+"6")
	}
	names = append(names, ndSets...)
	for _, name := range names {
		key := specs[name]
		types := make([]nftables.SetDatatype, len(key))
		for i, f := range key {
			types[i] = f.typ
		}
		s := &nftables.Set{Table: table, Name: name, Dynamic: true, KeyType: types[0], Size: 65536}
		if len(types) > 1 {
			kt, err := nftables.ConcatSetType(types...)
			if err != nil {
				return err
			}
			s.KeyType, s.Concatenation = kt, true
			s.HasTimeout, s.Timeout, s.Size = true, flowSetTimeout, 4194304
		}
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("the sentinel's set %s: %w", name, err)
		}
		sets[name] = s
	}
	accept := nftables.ChainPolicyAccept
	for _, ch := range chains {
		chain := c.AddChain(&nftables.Chain{Name: ch.name, Table: table, Hooknum: ch.hook,
			Priority: nftables.ChainPriorityRef(nftables.ChainPriority(ch.priority)), Type: nftables.ChainTypeFilter, Policy: &accept})
		for _, r := range ch.rules {
			c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: r.exprs(sets[r.set])})
		}
	}
	return nil
}

// exprs is the rule as nft compiles it: the family, the protocol, the
// matches, each key field into its 4-byte-aligned register, and the add.
func (r sentinelRule) exprs(set *nftables.Set) []expr.Any {
	e := append(r.match.exprs(), loadKey(r.key)...)
	return append(e, &expr.Dynset{SrcRegKey: unix.NFT_REG32_00, SetName: set.Name, SetID: set.ID, Operation: unix.NFT_DYNSET_OP_ADD})
}

// exprs are m's tests as nft compiles them: family, protocol, flags, bytes.
func (m match) exprs() []expr.Any {
	const reg = 1 // NFT_REG_1, which is also NFT_REG32_00
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{m.nfproto}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{m.proto}},
	}
	if m.flags != nil {
		e = append(e, flagExprs(m.flags)...)
	}
	for _, b := range m.bytes {
		e = append(e,
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: b[0], Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{byte(b[1])}})
	}
	return e
}

// flagExprs test TCP flags under a mask.
func flagExprs(f *[2]byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{f[0]}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f[1]}},
	}
}

// loadKey loads each key field into its 4-byte-aligned register, from
// NFT_REG32_00 on, as nft lays out a concatenation.
func loadKey(key []field) []expr.Any {
	var e []expr.Any
	pos := uint32(0) // in 32-bit registers from NFT_REG32_00
	for _, f := range key {
		dst := unix.NFT_REG32_00 + pos
		if f.l4proto {
			e = append(e, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: dst})
		} else {
			e = append(e, &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: dst, Base: f.base, Offset: f.offset, Len: f.len})
		}
		pos += (f.len + 3) / 4
	}
	return e
}
