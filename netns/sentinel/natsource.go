package sentinel

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns"
)

// Where a forwarded flow left the host from, after the candidate's nat, is
// recorded at the end of postrouting (fwd_post, after every nat hook) in a
// map per family, keyed as the flow sets are: conntrack's original tuple
// (the client's flow as it entered, which the nat never rewrites) to the
// packet's source address and port as it leaves. (Conntrack's netlink,
// asked for the reply tuple, gave no answer in the lab.)
//
// nft 1.0.6 cannot write that rule (it aborts, "netlink_gen_expr: Assertion
// `dreg < ctx->reg_low' failed", on a map update whose key is longer than 16
// bytes), and the netlink library sends ct's direction only with the
// family-less NFT_CT_SRC/NFT_CT_DST keys, which nft cannot list back (a
// concatenation needs their lengths): the maps go in with the library, the
// rules as NEWRULEs of our own with ct's NFT_CT_SRC_IP(6) keys, and
// `nft list ruleset` shows them.
var leftAsMaps = []string{"fwd_src4", "fwd_src6"}

// installLeftAs adds the fwd_src maps and the rules that fill them to the
// sentinel's table in lab, whose fwd_post chain is there already.
func installLeftAs(lab *netns.Lab) error {
	return installNATMaps(lab, "fwd_post", leftAsMaps, natSource)
}

// natEnd is which end of a packet a nat map records: its source (where a
// client's flow left from) or its destination (where a flow went).
type natEnd struct {
	addrAt [2]uint32 // the address's offset in the network header, IPv4 and IPv6
	portAt uint32    // the port's offset in the transport header
	// status, if not 0, records only a connection with this conntrack
	// status bit (one the candidate's nat rewrote): a map every probe
	// fills would cost each of them an element.
	status uint32
}

var natSource = natEnd{addrAt: [2]uint32{12, 8}, portAt: 0}

// installNATMaps adds maps (IPv4's, IPv6's) and the rules that fill them
// with the end of each packet to the sentinel's table in lab, at the end of
// its chain.
func installNATMaps(lab *netns.Lab, chain string, maps []string, end natEnd) error {
	c, err := nftables.New(nftables.WithNetNSFd(lab.NetNSFD()))
	if err != nil {
		return err
	}
	table := &nftables.Table{Family: nftables.TableFamilyINet, Name: sentinelTable}
	var rules [][]byte
	for i, fam := range []struct {
		v6   bool
		addr nftables.SetDatatype
	}{{false, nftables.TypeIPAddr}, {true, nftables.TypeIP6Addr}} {
		keyType, err := nftables.ConcatSetType(fam.addr, nftables.TypeInetService, fam.addr, nftables.TypeInetService, nftables.TypeInetProto)
		if err != nil {
			return err
		}
		dataType, err := nftables.ConcatSetType(fam.addr, nftables.TypeInetService)
		if err != nil {
			return err
		}
		m := &nftables.Set{Table: table, Name: maps[i], IsMap: true, Dynamic: true, Concatenation: true,
			KeyType: keyType, DataType: dataType, HasTimeout: true, Timeout: flowSetTimeout, Size: 4194304}
		if err := c.AddSet(m, nil); err != nil {
			return fmt.Errorf("the sentinel's map %s: %w", m.Name, err)
		}
		r, err := natMapRule(chain, m.Name, fam.v6, fam.addr.Bytes, end.addrAt[i], end)
		if err != nil {
			return err
		}
		rules = append(rules, r)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("add the maps %v: %w", maps, err)
	}
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: lab.NetNSFD()})
	if err != nil {
		return err
	}
	defer conn.Close()
	batch := []netlink.Message{{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES},
	}}
	for _, r := range rules {
		batch = append(batch, netlink.Message{
			Header: netlink.Header{Type: nftMsg(unix.NFT_MSG_NEWRULE), Flags: netlink.Request | netlink.Create | netlink.Append},
			Data:   r,
		})
	}
	batch[len(batch)-1].Header.Flags |= netlink.Acknowledge // the last's ack: the kernel went through them all
	batch = append(batch, netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_END), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES},
	})
	sent, err := conn.SendMessages(batch)
	if err != nil {
		return fmt.Errorf("add the rules filling %v: %w", maps, err)
	}
	last := sent[len(sent)-2].Header.Sequence
	for {
		msgs, err := conn.Receive()
		if err != nil {
			return fmt.Errorf("add the rules filling %v: %w", maps, err)
		}
		for _, m := range msgs {
			if m.Header.Sequence == last {
				return nil
			}
		}
	}
}

// natMapRule is a NEWRULE's body for chain: a packet of the original
// direction, of the family v6 says, adds its conntrack's original tuple and
// its own address and port at end (at addrAt) to map m.
func natMapRule(chain, m string, v6 bool, addrLen, addrAt uint32, end natEnd) ([]byte, error) {
	nfproto, srcKey, dstKey := byte(unix.NFPROTO_IPV4), uint32(unix.NFT_CT_SRC_IP), uint32(unix.NFT_CT_DST_IP)
	if v6 {
		nfproto, srcKey, dstKey = unix.NFPROTO_IPV6, unix.NFT_CT_SRC_IP6, unix.NFT_CT_DST_IP6
	}
	regs := addrLen / 4 // an address's 4-byte registers
	key := uint32(unix.NFT_REG32_00)
	sport := key + regs
	daddr := sport + 1
	dport := daddr + regs
	proto := dport + 1
	data := proto + 1
	var elems [][]byte
	add := func(es ...expr.Any) error {
		for _, e := range es {
			b, err := expr.Marshal(unix.NFPROTO_INET, e)
			if err != nil {
				return err
			}
			elems = append(elems, b)
		}
		return nil
	}
	err := add(
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
		&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}}) // IP_CT_DIR_ORIGINAL
	if err != nil {
		return nil, err
	}
	if end.status != 0 {
		// ct status is in the host's byte order.
		bit, none := binary.NativeEndian.AppendUint32(nil, end.status), make([]byte, 4)
		if err := add(
			&expr.Ct{Key: expr.CtKeySTATUS, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: bit, Xor: none},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: none}); err != nil {
			return nil, err
		}
	}
	elems = append(elems, ctOriginal(srcKey, key), ctOriginal(unix.NFT_CT_PROTO_SRC, sport),
		ctOriginal(dstKey, daddr), ctOriginal(unix.NFT_CT_PROTO_DST, dport))
	err = add(
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: proto},
		&expr.Payload{DestRegister: data, Base: expr.PayloadBaseNetworkHeader, Offset: addrAt, Len: addrLen},
		&expr.Payload{DestRegister: data + regs, Base: expr.PayloadBaseTransportHeader, Offset: end.portAt, Len: 2},
		&expr.Dynset{SrcRegKey: key, SrcRegData: data, SetName: m, Operation: unix.NFT_DYNSET_OP_ADD})
	if err != nil {
		return nil, err
	}
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NFTA_RULE_TABLE, sentinelTable)
	ae.String(unix.NFTA_RULE_CHAIN, chain)
	ae.Nested(unix.NFTA_RULE_EXPRESSIONS, func(ae *netlink.AttributeEncoder) error {
		for _, e := range elems {
			ae.Bytes(unix.NFTA_LIST_ELEM|unix.NLA_F_NESTED, e)
		}
		return nil
	})
	attrs, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...), nil
}

// ctOriginal is a ct expression loading key, of the original direction,
// into register reg.
func ctOriginal(key, reg uint32) []byte {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NFTA_EXPR_NAME, "ct")
	ae.Nested(unix.NFTA_EXPR_DATA, func(ae *netlink.AttributeEncoder) error {
		ae.ByteOrder = binary.BigEndian
		ae.Uint32(unix.NFTA_CT_KEY, key)
		ae.Uint32(unix.NFTA_CT_DREG, reg)
		ae.Uint8(unix.NFTA_CT_DIRECTION, 0) // IP_CT_DIR_ORIGINAL
		return nil
	})
	b, _ := ae.Encode() // fails only on a callback's error, and ours returns none
	return b
}

// LeftAs is the address and port a forwarded flow left the host with, after
// the candidate's nat. ok is false when its first packet never left.
func (s *Sentinel) LeftAs(f netns.Flow) (src netip.AddrPort, ok bool, err error) {
	if s == nil {
		return src, false, fmt.Errorf("the drop sentinel is not installed")
	}
	return s.natEnd(f, leftAsMaps)
}

// natEnd reads the address and port a nat map (maps: IPv4's, IPv6's) holds
// for f.
func (s *Sentinel) natEnd(f netns.Flow, maps []string) (netip.AddrPort, bool, error) {
	m := maps[0]
	if f.IPv6() {
		m = maps[1]
	}
	data, ok, err := s.query.value(elemReq{m, flowKey(f)})
	if err != nil || !ok {
		return netip.AddrPort{}, false, err
	}
	if len(data) < 8 {
		return netip.AddrPort{}, false, fmt.Errorf("read the drop sentinel: %s holds %d bytes", m, len(data))
	}
	a, ok := netip.AddrFromSlice(data[:len(data)-4])
	if !ok {
		return netip.AddrPort{}, false, fmt.Errorf("read the drop sentinel: %s holds %d bytes for an address", m, len(data)-4)
	}
	port := data[len(data)-4:]
	return netip.AddrPortFrom(a, uint16(port[0])<<8|uint16(port[1])), true, nil
}
