package sentinel

import (
	"fmt"
	"math"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns/nftmatch"
)

// The sentinel is built here, in this process, as one nftables transaction
// over netlink: an nft run that parsed and evaluated it cost about 30 ms of
// every lab (most of a small verify's distance to the floor). The rules are
// exactly what nft makes of the ruleset written in nft's own syntax in
// sentinel_test.go, and a spec compares the two, rule by rule, byte code
// and all, as the kernel lists them.

// The keys of the sets: a flow (and an answer's flow read backwards), the
// flow an ICMP error names (8 bytes of ICMP header, then the offending IP
// header and its ports), and a neighbour discovery message's target.
func flowSetKey(v6, reverse bool) []nftmatch.Field {
	src, dst := nftmatch.IPSrc(v6), nftmatch.IPDst(v6)
	if reverse {
		return []nftmatch.Field{dst, nftmatch.THDport(), src, nftmatch.THSport(), nftmatch.L4Proto()}
	}
	return []nftmatch.Field{src, nftmatch.THSport(), dst, nftmatch.THDport(), nftmatch.L4Proto()}
}

func icmpFlowKey(v6 bool) []nftmatch.Field {
	if v6 {
		return []nftmatch.Field{nftmatch.TH(16, 16, nftables.TypeIP6Addr), nftmatch.TH(48, 2, nftables.TypeInetService), nftmatch.TH(32, 16, nftables.TypeIP6Addr), nftmatch.TH(50, 2, nftables.TypeInetService)}
	}
	return []nftmatch.Field{nftmatch.TH(20, 4, nftables.TypeIPAddr), nftmatch.TH(28, 2, nftables.TypeInetService), nftmatch.TH(24, 4, nftables.TypeIPAddr), nftmatch.TH(30, 2, nftables.TypeInetService)}
}

func ndTargetKey() []nftmatch.Field {
	return []nftmatch.Field{nftmatch.TH(8, 16, nftables.TypeIP6Addr)}
}

type sentinelRule struct {
	nftmatch.Match
	key []nftmatch.Field
	set string
}

// sentinelSpec is the sentinel: its sets, and its chains with their rules,
// in order (see sentinel.go for what each set records).
func sentinelSpec() (sets map[string][]nftmatch.Field, chains []sentinelChain) {
	sets = map[string][]nftmatch.Field{}
	for _, name := range flowSets {
		sets[name+"4"], sets[name+"6"] = flowSetKey(false, false), flowSetKey(true, false)
	}
	for _, name := range []string{icmpSets["tcp"], icmpSets["udp"]} {
		sets[name+"4"], sets[name+"6"] = icmpFlowKey(false), icmpFlowKey(true)
	}
	for _, name := range ndSets {
		sets[name] = ndTargetKey()
	}
	tcp4, tcp6, udp4, udp6 := nftmatch.TCP(false), nftmatch.TCP(true), nftmatch.UDP(false), nftmatch.UDP(true)
	icmp4, icmp6 := nftmatch.ICMPUnreach(false), nftmatch.ICMPUnreach(true)
	rev4, rev6 := flowSetKey(false, true), flowSetKey(true, true)
	// A probe's first packet (a TCP SYN without ACK, or any UDP datagram)
	// and an answer (SYN-ACK, or UDP), in both families.
	first := func(set string, fwd bool) []sentinelRule {
		k4, k6 := flowSetKey(false, !fwd), flowSetKey(true, !fwd)
		return []sentinelRule{
			{tcp4.WithFlags(nftmatch.SYN), k4, set + "4"}, {tcp6.WithFlags(nftmatch.SYN), k6, set + "6"},
			{udp4, k4, set + "4"}, {udp6, k6, set + "6"},
		}
	}
	answer := func(set string) []sentinelRule {
		return []sentinelRule{
			{tcp4.WithFlags(nftmatch.SYNACK), rev4, set + "4"}, {tcp6.WithFlags(nftmatch.SYNACK), rev6, set + "6"},
			{udp4, rev4, set + "4"}, {udp6, rev6, set + "6"},
		}
	}
	nd := func(typ uint32, set string) sentinelRule { return sentinelRule{nftmatch.ND(typ), ndTargetKey(), set} }
	const solicit, advert = 135, 136

	var post []sentinelRule
	post = append(post, first("out", true)...)
	post = append(post,
		sentinelRule{tcp4.WithFlags(nftmatch.RST), rev4, "rst4"},
		sentinelRule{tcp6.WithFlags(nftmatch.RST), rev6, "rst6"},
		sentinelRule{icmp4.InnerProto(unix.IPPROTO_TCP), icmpFlowKey(false), "icmp_tcp4"},
		sentinelRule{icmp4.InnerProto(unix.IPPROTO_UDP), icmpFlowKey(false), "icmp_udp4"},
		sentinelRule{icmp6.InnerProto(unix.IPPROTO_TCP), icmpFlowKey(true), "icmp_tcp6"},
		sentinelRule{icmp6.InnerProto(unix.IPPROTO_UDP), icmpFlowKey(true), "icmp_udp6"})
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
// c.Flush() sends them as one transaction. The table is created, never
// merged into: a table of that name the candidate made first (with sets
// already holding flows, or chains of its own) fails the transaction with
// EEXIST, which the caller reports as tampering (PreMade).
func buildSentinel(c *nftables.Conn) error {
	table := c.CreateTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: sentinelTable})
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
			types[i] = f.Type()
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
	e := append(r.Match.Exprs(), nftmatch.LoadKey(r.key...)...)
	return append(e, &expr.Dynset{SrcRegKey: unix.NFT_REG32_00, SetName: set.Name, SetID: set.ID, Operation: unix.NFT_DYNSET_OP_ADD})
}
