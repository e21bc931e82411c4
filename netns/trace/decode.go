package trace

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// Decoding a trace event's attributes: the table's family, the verdict, the
// flow a packet's headers belong to.

func tableFamily(f byte) string {
	switch f {
	case unix.NFPROTO_IPV4:
		return "ip"
	case unix.NFPROTO_IPV6:
		return "ip6"
	case unix.NFPROTO_INET:
		return "inet"
	}
	return strconv.Itoa(int(f))
}

func verdictName(code int32) string {
	switch code {
	case nfDrop:
		return "drop"
	case nfAccept:
		return "accept"
	case unix.NFT_JUMP:
		return "jump"
	case unix.NFT_GOTO:
		return "goto"
	case unix.NFT_RETURN:
		return "return"
	case unix.NFT_CONTINUE, unix.NFT_BREAK:
		return "continue"
	}
	return "verdict " + strconv.Itoa(int(code))
}

// headerKey reads a packet's addresses and ports from the headers a trace
// carries: its flow key, and whether it is the lab's marker. Neighbour
// discovery has a key of its own; ok is false for any other packet.
func headerKey(nfproto uint32, nh, th []byte) (key traceKey, ok, marker bool) {
	var src, dst netip.Addr
	var proto byte
	switch {
	case nfproto == unix.NFPROTO_IPV4 && len(nh) >= 20:
		src, dst, proto = netip.AddrFrom4([4]byte(nh[12:16])), netip.AddrFrom4([4]byte(nh[16:20])), nh[9]
	case nfproto == unix.NFPROTO_IPV6 && len(nh) >= 40:
		src, dst, proto = netip.AddrFrom16([16]byte(nh[8:24])), netip.AddrFrom16([16]byte(nh[24:40])), nh[6]
	default:
		return traceKey{}, false, false
	}
	if proto == unix.IPPROTO_ICMPV6 && len(th) > 0 && (th[0] == 135 || th[0] == 136) {
		return ndKey, true, false
	}
	if (proto != unix.IPPROTO_TCP && proto != unix.IPPROTO_UDP) || len(th) < 4 {
		return traceKey{}, false, false
	}
	key = traceKey{src: src.As16(), dst: dst.As16(), sport: binary.BigEndian.Uint16(th[0:2]), dport: binary.BigEndian.Uint16(th[2:4]), proto: proto}
	return key, true, dst == markerDst.Addr() && key.dport == markerDst.Port() && proto == unix.IPPROTO_UDP
}
