package trace

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns/nftmatch"
)

// The trace table, like the sentinel, is built in this process as one
// netlink transaction; traceRuleset in trace_test.go writes it in nft's
// syntax, and a spec checks that nft makes the same of it. Its sets hold
// ranges of concatenations (a sweep of every port is one element per
// address).
//
// The trace starts just after the sentinel's first chains and stops just
// before its last ones: only the candidate's chains report, which keeps the
// kernel's reports (and their cost) to what names a rule. Each rule that
// sets nftrace also ends its chain (accept here lets the packet on to the
// candidate's chains): the kernel then reports one verdict of ours per
// packet, not three (the rule, the chain's return and its policy).

// The trace's sets hold an element per destination address and port range.
// One netlink transaction must fit the send buffer of the lab's socket, which
// cannot grow past net.core.wmem_max (about 208 KiB) inside the lab's user
// namespace, and one message's element list is a netlink attribute of at most
// 64 KiB; an IPv6 element takes about 70 bytes. So elements go in messages
// of traceElemsPerMessage, and beyond traceElemsPerFlush in transactions of
// their own, after the table's (addTraceElems): nothing probes before all are in.
const (
	traceElemsPerMessage = 512
	traceElemsPerFlush   = 2048
)

// traceElems are elements of one trace set still to add.
type traceElems struct {
	set   *nftables.Set
	elems []nftables.SetElement
}

// buildTrace queues the trace table for dsts on c, replacing any table of
// that name (a lab probed again gets its trace table anew). The elements of
// a large trace come back, for addTraceElems after c's flush.
func buildTrace(c *nftables.Conn, dsts []Destination) ([]traceElems, error) {
	table := &nftables.Table{Family: nftables.TableFamilyINet, Name: traceTable}
	c.AddTable(table)
	c.DelTable(table)
	c.AddTable(table)
	sets := map[bool]*nftables.Set{}
	var rest []traceElems
	total := 0
	for _, v6 := range []bool{false, true} {
		addr, name := nftables.TypeIPAddr, "dst4"
		if v6 {
			addr, name = nftables.TypeIP6Addr, "dst6"
		}
		kt, err := nftables.ConcatSetType(addr, nftables.TypeInetService)
		if err != nil {
			return nil, err
		}
		s := &nftables.Set{Table: table, Name: name, KeyType: kt, Interval: true, Concatenation: true}
		var elems []nftables.SetElement
		for _, d := range mergeDestinations(dsts) {
			if d.Addr.Is6() == v6 {
				elems = append(elems, nftables.SetElement{Key: destKey(d.Addr, d.First), KeyEnd: destKey(d.Addr, d.Last)})
			}
		}
		if err := c.AddSet(s, nil); err != nil {
			return nil, fmt.Errorf("the trace's set %s: %w", name, err)
		}
		sets[v6] = s
		rest = append(rest, traceElems{s, elems})
		total += len(elems)
	}
	accept := nftables.ChainPolicyAccept
	chain := func(name string, hook *nftables.ChainHook, prio int32) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: table, Hooknum: hook,
			Priority: nftables.ChainPriorityRef(nftables.ChainPriority(prio)), Type: nftables.ChainTypeFilter, Policy: &accept})
	}
	for _, ch := range []*nftables.Chain{chain("postrouting", nftables.ChainHookPostrouting, math.MaxInt32-1), chain("input", nftables.ChainHookInput, math.MaxInt32-1)} {
		c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: setTrace(0, nil)})
	}
	for _, name := range []string{"output", "prerouting"} {
		hook := nftables.ChainHookOutput
		if name == "prerouting" {
			hook = nftables.ChainHookPrerouting
		}
		ch := chain(name, hook, math.MinInt32+1)
		add := func(e []expr.Any, v expr.VerdictKind) {
			c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: append(e, setTrace(1, &expr.Verdict{Kind: v})...)})
		}
		if name == "output" {
			// The marker: when the reader has its report, it has read
			// every report before it.
			add(flatten(
				metaIs(expr.MetaKeyNFPROTO, unix.NFPROTO_IPV4),
				&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: markerDst.Addr().AsSlice()},
				metaIs(expr.MetaKeyL4PROTO, unix.IPPROTO_UDP),
				&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, markerDst.Port())},
			), expr.VerdictDrop)
		}
		// A probe to an IPv6 neighbour needs neighbour discovery first.
		for _, typ := range []byte{135, 136} {
			add(nftmatch.ND(uint32(typ)).Exprs(), expr.VerdictAccept)
		}
		for _, v6 := range []bool{false, true} {
			tcp, udp := nftmatch.TCP(v6), nftmatch.UDP(v6)
			add(lookup(tcp, v6, false, sets[v6], nftmatch.SYN), expr.VerdictAccept)
			add(lookup(tcp, v6, true, sets[v6], nftmatch.SYNACK), expr.VerdictAccept)
			add(lookup(tcp, v6, true, sets[v6], nftmatch.RST), expr.VerdictAccept)
			add(lookup(udp, v6, false, sets[v6], 0), expr.VerdictAccept)
			add(lookup(udp, v6, true, sets[v6], 0), expr.VerdictAccept)
		}
	}
	if total > traceElemsPerFlush {
		return rest, nil
	}
	return nil, queueTraceElems(c, rest) // small: in the table's own transaction
}

// queueTraceElems queues elements on c, traceElemsPerMessage to a message.
func queueTraceElems(c *nftables.Conn, batch []traceElems) error {
	for _, b := range batch {
		for chunk := range slices.Chunk(b.elems, traceElemsPerMessage) {
			if err := c.SetAddElements(b.set, chunk); err != nil {
				return fmt.Errorf("the trace's set %s: %w", b.set.Name, err)
			}
		}
	}
	return nil
}

// addTraceElems adds what buildTrace left, traceElemsPerFlush elements to a
// transaction.
func addTraceElems(c *nftables.Conn, rest []traceElems) error {
	for _, b := range rest {
		for chunk := range slices.Chunk(b.elems, traceElemsPerFlush) {
			if err := queueTraceElems(c, []traceElems{{b.set, chunk}}); err != nil {
				return err
			}
			if err := c.Flush(); err != nil {
				return fmt.Errorf("the trace's set %s: %w", b.set.Name, err)
			}
		}
	}
	return nil
}

// destKey is a trace set's key: an address, then a port padded to 4 bytes.
func destKey(a netip.Addr, port uint16) []byte {
	return append(a.AsSlice(), byte(port>>8), byte(port), 0, 0)
}

func metaIs(key expr.MetaKey, v byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{v}}}
}

// flatten lets a list of expressions hold both single ones and groups.
func flatten(parts ...any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		switch p := p.(type) {
		case expr.Any:
			out = append(out, p)
		case []expr.Any:
			out = append(out, p...)
		}
	}
	return out
}

// lookup matches a packet of m's family and protocol whose destination (or,
// for an answer, source) address and port are in set, then flags.
func lookup(m nftmatch.Match, v6, answer bool, set *nftables.Set, flags nftmatch.Flags) []expr.Any {
	addr, port := nftmatch.IPDst(v6), nftmatch.THDport()
	if answer {
		addr, port = nftmatch.IPSrc(v6), nftmatch.THSport()
	}
	e := m.Exprs()
	e = append(e, nftmatch.LoadKey(addr, port)...)
	e = append(e, &expr.Lookup{SourceRegister: unix.NFT_REG32_00, SetName: set.Name, SetID: set.ID})
	return append(e, nftmatch.FlagExprs(flags)...)
}

// setTrace sets the packet's nftrace bit, then gives v, if any.
func setTrace(bit byte, v *expr.Verdict) []expr.Any {
	e := []expr.Any{
		&expr.Immediate{Register: 1, Data: []byte{bit, 0, 0, 0}},
		&expr.Meta{Key: expr.MetaKeyNFTRACE, SourceRegister: true, Register: 1},
	}
	if v != nil {
		e = append(e, v)
	}
	return e
}
