package nftmatch

import (
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Field is one part of a set's key: a payload (network or transport header,
// byte offset and length) or the packet's layer 4 protocol.
type Field struct {
	base    expr.PayloadBase
	offset  uint32
	len     uint32
	l4proto bool
	typ     nftables.SetDatatype // how nft shows it
}

// Type is how nft shows the field's values.
func (f Field) Type() nftables.SetDatatype { return f.typ }

// IPSrc is the packet's source address.
func IPSrc(v6 bool) Field {
	if v6 {
		return Field{base: expr.PayloadBaseNetworkHeader, offset: 8, len: 16, typ: nftables.TypeIP6Addr}
	}
	return Field{base: expr.PayloadBaseNetworkHeader, offset: 12, len: 4, typ: nftables.TypeIPAddr}
}

// IPDst is the packet's destination address.
func IPDst(v6 bool) Field {
	if v6 {
		return Field{base: expr.PayloadBaseNetworkHeader, offset: 24, len: 16, typ: nftables.TypeIP6Addr}
	}
	return Field{base: expr.PayloadBaseNetworkHeader, offset: 16, len: 4, typ: nftables.TypeIPAddr}
}

// THSport and THDport are the transport header's ports (nft's th sport, th dport).
func THSport() Field { return TH(0, 2, nftables.TypeInetService) }
func THDport() Field { return TH(2, 2, nftables.TypeInetService) }

// L4Proto is the packet's layer 4 protocol (nft's meta l4proto).
func L4Proto() Field { return Field{l4proto: true, len: 1, typ: nftables.TypeInetProto} }

// TH is a raw field of the transport header (nft's @th,BITS,LEN), which in
// an ICMP error is the offending packet's header. Its type is what the bytes
// hold; nft, reading raw fields, would say integer.
func TH(byteOffset, length uint32, typ nftables.SetDatatype) Field {
	return Field{base: expr.PayloadBaseTransportHeader, offset: byteOffset, len: length, typ: typ}
}

// Flags is a test of TCP flags: the mask in the high byte, the value the
// masked flags must equal in the low byte. Zero tests nothing.
type Flags uint16

const (
	SYN    Flags = 0x1202 // tcp flags & (syn|ack) == syn
	SYNACK Flags = 0x1212 // tcp flags & (syn|ack) == syn|ack
	RST    Flags = 0x0404 // tcp flags & rst == rst
)

// Match is what a rule asks of a packet: the family, the layer 4 protocol,
// TCP flags under a mask, and single bytes of the transport header (an ICMP
// type, an ICMP error's inner protocol), as {offset, value}.
type Match struct {
	NFProto, Proto byte
	Flags          Flags
	Bytes          [][2]uint32
}

// TCP and UDP match a family's TCP or UDP packets.
func TCP(v6 bool) Match { return Match{NFProto: nfproto(v6), Proto: unix.IPPROTO_TCP} }
func UDP(v6 bool) Match { return Match{NFProto: nfproto(v6), Proto: unix.IPPROTO_UDP} }

// ICMPUnreach matches an ICMP (type 3) or ICMPv6 (type 1) destination unreachable.
func ICMPUnreach(v6 bool) Match {
	if v6 {
		return Match{NFProto: unix.NFPROTO_IPV6, Proto: unix.IPPROTO_ICMPV6, Bytes: [][2]uint32{{0, 1}}}
	}
	return Match{NFProto: unix.NFPROTO_IPV4, Proto: unix.IPPROTO_ICMP, Bytes: [][2]uint32{{0, 3}}}
}

// ND matches an ICMPv6 message of type t (neighbour discovery: 135, 136).
func ND(t uint32) Match {
	return Match{NFProto: unix.NFPROTO_IPV6, Proto: unix.IPPROTO_ICMPV6, Bytes: [][2]uint32{{0, t}}}
}

func nfproto(v6 bool) byte {
	if v6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// WithFlags is m that also tests TCP flags f.
func (m Match) WithFlags(f Flags) Match { m.Flags = f; return m }

// InnerProto is m (an ICMP error) whose offending packet was of protocol p
// (at byte 9 of its IPv4 header, or 6 of its IPv6 header, after 8 of ICMP).
func (m Match) InnerProto(p uint32) Match {
	off := uint32(17)
	if m.NFProto == unix.NFPROTO_IPV6 {
		off = 14
	}
	m.Bytes = append(append([][2]uint32{}, m.Bytes...), [2]uint32{off, p})
	return m
}

// Exprs are m's tests as nft compiles them: family, protocol, flags, bytes.
func (m Match) Exprs() []expr.Any {
	const reg = 1 // NFT_REG_1, which is also NFT_REG32_00
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{m.NFProto}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{m.Proto}},
	}
	e = append(e, FlagExprs(m.Flags)...)
	for _, b := range m.Bytes {
		e = append(e,
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: b[0], Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{byte(b[1])}})
	}
	return e
}

// FlagExprs test TCP flags under a mask; none for zero Flags.
func FlagExprs(f Flags) []expr.Any {
	if f == 0 {
		return nil
	}
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{byte(f >> 8)}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(f)}},
	}
}

// LoadKey loads each key field into its 4-byte-aligned register, from
// NFT_REG32_00 on, as nft lays out a concatenation.
func LoadKey(key ...Field) []expr.Any {
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
