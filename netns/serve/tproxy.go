package serve

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/egresslab/egresslab/netns"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Rootless, no BPF program loads (CAP_BPF and CAP_NET_ADMIN on the host), so
// the world steers port ranges and the any-address catch-all with nftables
// TPROXY instead of sk_lookup: the lab's user namespace owns the world's
// network namespace, where nft and IP_TRANSPARENT need no host privilege.
// The rules are a table of egresslab's own in the world, which holds no
// candidate rules; the lab's namespace, the candidate's, gets none.
//
// The same traffic reaches the same sockets: TPROXY assigns a TCP SYN or UDP
// datagram to a transparent socket in PREROUTING without rewriting it
// (nf_tproxy_assign_sock), so an accepted connection's local end and a
// datagram's IP_ORIGDSTADDR are the address and port dialled, as under
// sk_lookup. The world owns every destination it steers (AddWorldAddress, or
// AnswerAnyAddress's local routes), so the packet is delivered locally with
// no mark or policy route. nft_tproxy looks an established socket of the
// packet's own tuple up first and only then the listener it was told, and
// assigns only transparent ones: the steered-to sockets are IP_TRANSPARENT.
// On the lab's loopback there is no such way: ranges there still need BPF.

// tproxyTable is egresslab's table in the world.
const tproxyTable = "egresslab_steer"

// worldTProxy is the world's steering table, made on first use.
type worldTProxy struct {
	netnsFD int
	table   *nftables.Table
	chain   *nftables.Chain
	// served4 and served6 hold the cells (protocol . address . port) that a
	// listener of Serve's answers: the catch-all leaves them alone.
	served4, served6 *nftables.Set
}

// steersByTProxy says whether the world steers with TPROXY (rootless) rather
// than BPF sk_lookup (as root). A variable: this package's tests switch it
// on as root.
var steersByTProxy = netns.Rootless

// transparent is a ListenConfig.Control that makes the socket IP_TRANSPARENT
// (IPV6_TRANSPARENT) before it binds: nf_tproxy assigns packets only to
// transparent sockets.
func transparent(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if network[len(network)-1] == '6' {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_TRANSPARENT, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TRANSPARENT, 1)
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("make the socket transparent (TPROXY): %w", serr)
	}
	return nil
}

// worldSteering is the world's table, made (with its chain and sets) the
// first time something steers.
func (sv *Server) worldSteering() (*worldTProxy, error) {
	if sv.tproxy != nil {
		return sv.tproxy, nil
	}
	w := &worldTProxy{netnsFD: sv.lab.WorldNetNSFD()}
	c, err := nftables.New(nftables.WithNetNSFd(w.netnsFD))
	if err != nil {
		return nil, fmt.Errorf("nftables netlink in the world: %w", err)
	}
	w.table = c.AddTable(&nftables.Table{Name: tproxyTable, Family: nftables.TableFamilyINet})
	w.chain = c.AddChain(&nftables.Chain{
		Name: "prerouting", Table: w.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle,
	})
	for _, s := range []struct {
		set  **nftables.Set
		name string
		addr nftables.SetDatatype
	}{{&w.served4, "served4", nftables.TypeIPAddr}, {&w.served6, "served6", nftables.TypeIP6Addr}} {
		key, err := nftables.ConcatSetType(nftables.TypeInetProto, s.addr, nftables.TypeInetService)
		if err != nil {
			return nil, err
		}
		*s.set = &nftables.Set{Table: w.table, Name: s.name, KeyType: key, Concatenation: true}
		if err := c.AddSet(*s.set, nil); err != nil {
			return nil, fmt.Errorf("add set %s in the world: %w", s.name, err)
		}
	}
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("add table inet %s in the world: %w", tproxyTable, err)
	}
	sv.tproxy = w
	return w, nil
}

// steer appends rules to the world's chain, in one batch.
func (w *worldTProxy) steer(rules ...[]expr.Any) error {
	c, err := nftables.New(nftables.WithNetNSFd(w.netnsFD))
	if err != nil {
		return fmt.Errorf("nftables netlink in the world: %w", err)
	}
	for _, exprs := range rules {
		c.AddRule(&nftables.Rule{Table: w.table, Chain: w.chain, Exprs: exprs})
	}
	return c.Flush()
}

// noteServed keeps s's cell out of the catch-all.
func (w *worldTProxy) noteServed(services ...Service) error {
	var v4, v6 []nftables.SetElement
	for _, s := range services {
		k := servedKey(s)
		if s.Addr.Is4() {
			v4 = append(v4, nftables.SetElement{Key: k})
		} else {
			v6 = append(v6, nftables.SetElement{Key: k})
		}
	}
	c, err := nftables.New(nftables.WithNetNSFd(w.netnsFD))
	if err != nil {
		return fmt.Errorf("nftables netlink in the world: %w", err)
	}
	for _, x := range []struct {
		set   *nftables.Set
		elems []nftables.SetElement
	}{{w.served4, v4}, {w.served6, v6}} {
		if len(x.elems) == 0 {
			continue
		}
		if err := c.SetAddElements(x.set, x.elems); err != nil {
			return err
		}
	}
	return c.Flush()
}

// servedKey is a cell as the set holds it: each field padded to 4 bytes, as
// registers hold them (protocol, address, port in network byte order).
func servedKey(s Service) []byte {
	k := []byte{l4proto(s.Proto), 0, 0, 0}
	k = append(k, s.Addr.AsSlice()...)
	return append(binary.BigEndian.AppendUint16(k, s.Port), 0, 0)
}

func l4proto(proto string) byte {
	if proto == "udp" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// nfproto is the netfilter family of addr.
func nfproto(addr netip.Addr) byte {
	if addr.Is4() {
		return unix.NFPROTO_IPV4
	}
	return unix.NFPROTO_IPV6
}

// daddr loads a packet's destination address of addr's family into reg.
func daddr(addr netip.Addr, reg uint32) *expr.Payload {
	if addr.Is4() {
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
	}
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16}
}

// dport loads a TCP or UDP packet's destination port into reg.
func dport(reg uint32) *expr.Payload {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
}

// familyAndProto matches packets of addr's family and of proto.
func familyAndProto(addr netip.Addr, proto string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto(addr)}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{l4proto(proto)}},
	}
}

// tproxyTo assigns the packet to the transparent socket at to and accepts
// it (TPROXY itself is no verdict: a later rule would assign it again). A
// packet TPROXY finds no transparent socket for goes on to the next rule.
// Only a packet for one of the world's own addresses: sk_lookup runs only
// where a packet is delivered locally, and the world forwards a packet
// with a socket attached nowhere (ip_forward drops it).
func tproxyTo(to netip.AddrPort) []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
		&expr.Immediate{Register: 2, Data: to.Addr().AsSlice()},
		&expr.Immediate{Register: 3, Data: binary.BigEndian.AppendUint16(nil, to.Port())},
		&expr.TProxy{Family: nfproto(to.Addr()), TableFamily: byte(nftables.TableFamilyINet), RegAddr: 2, RegPort: 3},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// rangeRule is steerProgram's match for r as a rule: the packet is for r's
// protocol, family, address and a port in it; it goes to the socket at to.
func rangeRule(r RangeService, to netip.AddrPort) []expr.Any {
	exprs := familyAndProto(r.Addr, r.Proto)
	exprs = append(exprs,
		daddr(r.Addr, 1),
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: r.Addr.AsSlice()},
		dport(1),
		&expr.Range{Op: expr.CmpOpEq, Register: 1,
			FromData: binary.BigEndian.AppendUint16(nil, r.First), ToData: binary.BigEndian.AppendUint16(nil, r.Last)},
	)
	return append(exprs, tproxyTo(to)...)
}

// servedRule accepts, untouched, a packet of family's cells that a listener
// of Serve's answers (anyAddrProgram's lookup in served).
func (w *worldTProxy) servedRule(family netip.Addr) []expr.Any {
	set, portReg := w.served4, uint32(unix.NFT_REG32_02)
	if family.Is6() {
		set, portReg = w.served6, unix.NFT_REG32_05
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto(family)}},
		// protocol . address . port, in consecutive 32-bit registers
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: unix.NFT_REG32_00},
		daddr(family, unix.NFT_REG32_01),
		dport(portReg),
		&expr.Lookup{SourceRegister: unix.NFT_REG32_00, SetName: set.Name, SetID: set.ID},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// anyRule is anyAddrProgram's pick as a rule: a packet of to's family and
// proto goes to the catch-all socket at to.
func anyRule(proto string, to netip.AddrPort) []expr.Any {
	return append(familyAndProto(to.Addr(), proto), tproxyTo(to)...)
}

// tproxyRanges is serveRanges in the world, rootless: a transparent socket
// per range, bound to its first port, and a rule per range in steerProgram's
// place and order, ahead of the catch-all's (ServeAnyAddress comes after).
func (sv *Server) tproxyRanges(_ int, ranges []RangeService) error {
	w, err := sv.worldSteering()
	if err != nil {
		return err
	}
	rules := make([][]expr.Any, 0, len(ranges))
	for _, r := range ranges {
		_, at, err := sv.listenRange(r, true)
		if err != nil {
			return err
		}
		rules = append(rules, rangeRule(r, at))
	}
	if err := w.steer(rules...); err != nil {
		return fmt.Errorf("steer the ranges to their sockets (nft tproxy in the world): %w", err)
	}
	return nil
}

// loopbackRanges is serveRanges on the lab's loopback, rootless: TPROXY
// there would be rules in the candidate's namespace, so only a range of one
// port (what --complete serves a loopback representative with) is served,
// by its own socket, which needs no steering. A longer range still needs
// BPF, which rootless labs do not have.
func (sv *Server) loopbackRanges(nsFD int, ranges []RangeService) error {
	var longer []RangeService
	for _, r := range ranges {
		if r.First != r.Last {
			longer = append(longer, r)
			continue
		}
		if _, _, err := sv.listenRange(r, false); err != nil {
			return err
		}
	}
	if len(longer) == 0 {
		return nil
	}
	return sv.serveRanges(nsFD, longer)
}
