package netns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// read takes the kernel's trace reports until the socket closes.
func (t *Trace) read() {
	defer close(t.done)
	current := map[uint32]string{} // trace id -> the packet's flow key
	for {
		msgs, err := t.conn.Receive()
		if errors.Is(err, unix.ENOBUFS) {
			t.mu.Lock()
			t.lost = true
			t.mu.Unlock()
			continue
		}
		if err != nil {
			return // closed by Stop
		}
		for _, m := range msgs {
			t.report(m, current)
		}
	}
}

// report files one trace report under its packet's flow.
func (t *Trace) report(m netlink.Message, current map[uint32]string) {
	if m.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_TRACE) || len(m.Data) < 4 {
		return
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[4:]) // after the nfgenmsg
	if err != nil {
		return
	}
	ad.ByteOrder = binary.BigEndian
	ev := traceEvent{family: tableFamily(m.Data[0])}
	var id, nfproto uint32
	var network, transport []byte
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_TRACE_TABLE:
			ev.table = ad.String()
		case unix.NFTA_TRACE_CHAIN:
			ev.chain = ad.String()
		case unix.NFTA_TRACE_RULE_HANDLE:
			ev.handle = int(ad.Uint64())
		case unix.NFTA_TRACE_TYPE:
			ev.policy = ad.Uint32() == unix.NFT_TRACETYPE_POLICY
		case unix.NFTA_TRACE_VERDICT:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					if nad.Type() == unix.NFTA_VERDICT_CODE {
						ev.verdict = verdictName(int32(nad.Uint32()))
					}
				}
				return nil
			})
		case unix.NFTA_TRACE_POLICY:
			ev.verdict = verdictName(int32(ad.Uint32()))
		case unix.NFTA_TRACE_ID:
			id = ad.Uint32()
		case unix.NFTA_TRACE_NFPROTO:
			nfproto = ad.Uint32()
		case unix.NFTA_TRACE_NETWORK_HEADER:
			network = ad.Bytes()
		case unix.NFTA_TRACE_TRANSPORT_HEADER:
			transport = ad.Bytes()
		}
	}
	if network != nil { // a packet's first report in each base chain carries its headers
		key, sport, isMarker := headerKey(nfproto, network, transport)
		current[id] = key
		if isMarker {
			t.markerSeen(sport)
		}
	}
	key := current[id]
	if key == "" || ev.verdict == "" || strings.HasPrefix(ev.table, "egresslab_") {
		return
	}
	t.mu.Lock()
	t.events[key] = append(t.events[key], ev)
	t.mu.Unlock()
}

func (t *Trace) markerSeen(sport uint16) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ch, ok := t.markers[sport]; ok {
		delete(t.markers, sport)
		close(ch)
	}
}

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

// Netfilter's own verdicts (linux/netfilter.h), beside nf_tables' negative ones.
const (
	nfDrop   = 0
	nfAccept = 1
)

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
// carries: its flow key, its source port, and whether it is the lab's
// marker. Neighbour discovery has a key of its own.
func headerKey(nfproto uint32, nh, th []byte) (key string, sport uint16, marker bool) {
	var src, dst netip.Addr
	var proto byte
	switch {
	case nfproto == unix.NFPROTO_IPV4 && len(nh) >= 20:
		src, dst, proto = netip.AddrFrom4([4]byte(nh[12:16])), netip.AddrFrom4([4]byte(nh[16:20])), nh[9]
	case nfproto == unix.NFPROTO_IPV6 && len(nh) >= 40:
		src, dst, proto = netip.AddrFrom16([16]byte(nh[8:24])), netip.AddrFrom16([16]byte(nh[24:40])), nh[6]
	default:
		return "", 0, false
	}
	if proto == unix.IPPROTO_ICMPV6 && len(th) > 0 && (th[0] == 135 || th[0] == 136) {
		return ndKey, 0, false
	}
	name := map[byte]string{unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp"}[proto]
	if name == "" || len(th) < 4 {
		return "", 0, false
	}
	from := netip.AddrPortFrom(src, binary.BigEndian.Uint16(th[0:2]))
	to := netip.AddrPortFrom(dst, binary.BigEndian.Uint16(th[2:4]))
	return flowKey(from, to, name), from.Port(), to == markerDst && name == "udp"
}

// traceReadBuffer holds a whole matrix's reports (a few hundred bytes each)
// should the reader fall behind.
const traceReadBuffer = 64 << 20

// traceConn joins the lab's trace group, with a receive buffer forced past
// the namespace's default (this process is root on the host).
func (l *Lab) traceConn() (*netlink.Conn, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: l.labFD})
	if err != nil {
		return nil, fmt.Errorf("open a trace socket in lab %s: %w", l.cfg.Name, err)
	}
	if err := c.JoinGroup(unix.NFNLGRP_NFTRACE); err != nil {
		c.Close()
		return nil, fmt.Errorf("join the trace group in lab %s: %w", l.cfg.Name, err)
	}
	raw, err := c.SyscallConn()
	if err == nil {
		var serr error
		err = raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, traceReadBuffer)
		})
		err = errors.Join(err, serr)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("size the trace socket in lab %s: %w", l.cfg.Name, err)
	}
	return c, nil
}
