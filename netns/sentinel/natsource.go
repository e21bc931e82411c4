package sentinel

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns"
)

// conntrack netlink (linux/netfilter/nfnetlink_conntrack.h).
const (
	ipctnlMsgCtGet = 1
	ctaTupleOrig   = 1
	ctaTupleReply  = 2
	ctaTupleIP     = 1
	ctaTupleProto  = 2
	ctaIPv4Src     = 1
	ctaIPv4Dst     = 2
	ctaIPv6Src     = 3
	ctaIPv6Dst     = 4
	ctaProtoNum    = 1
	ctaProtoSrc    = 2
	ctaProtoDst    = 3
)

// natQueryWait bounds one conntrack question.
const natQueryWait = 50 * time.Millisecond

// natQuery is one conntrack netlink socket in the lab, for LeftAs.
type natQuery struct {
	mu   sync.Mutex
	conn *netlink.Conn
}

// LeftAs is the address and port a forwarded flow left the host with, after
// the candidate's nat: conntrack's reply tuple, read backwards. ok is false
// when the host has no confirmed connection for the flow (its first packet
// never left).
func (s *Sentinel) LeftAs(f netns.Flow) (src netip.AddrPort, ok bool, err error) {
	if s == nil {
		return src, false, errors.New("the drop sentinel is not installed")
	}
	s.nat.mu.Lock()
	defer s.nat.mu.Unlock()
	if s.nat.conn == nil {
		if s.nat.conn, err = netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: s.lab.NetNSFD()}); err != nil {
			return src, false, fmt.Errorf("conntrack netlink in lab %s: %w", s.lab.Name(), err)
		}
	}
	family, srcAttr, dstAttr := byte(unix.AF_INET), uint16(ctaIPv4Src), uint16(ctaIPv4Dst)
	if f.IPv6() {
		family, srcAttr, dstAttr = unix.AF_INET6, ctaIPv6Src, ctaIPv6Dst
	}
	proto := uint8(unix.IPPROTO_TCP)
	if f.Proto == "udp" {
		proto = unix.IPPROTO_UDP
	}
	ae := netlink.NewAttributeEncoder()
	ae.Nested(ctaTupleOrig, func(ae *netlink.AttributeEncoder) error {
		ae.Nested(ctaTupleIP, func(ae *netlink.AttributeEncoder) error {
			ae.Bytes(srcAttr, f.Src.Addr().Unmap().AsSlice())
			ae.Bytes(dstAttr, f.Dst.Addr().Unmap().AsSlice())
			return nil
		})
		ae.Nested(ctaTupleProto, func(ae *netlink.AttributeEncoder) error {
			ae.Uint8(ctaProtoNum, proto)
			ae.Bytes(ctaProtoSrc, []byte{byte(f.Src.Port() >> 8), byte(f.Src.Port())})
			ae.Bytes(ctaProtoDst, []byte{byte(f.Dst.Port() >> 8), byte(f.Dst.Port())})
			return nil
		})
		return nil
	})
	attrs, err := ae.Encode()
	if err != nil {
		return src, false, err
	}
	// A bounded wait: a kernel without conntrack's netlink answers nothing,
	// and the source is then unknown, never the verdict.
	_ = s.nat.conn.SetDeadline(time.Now().Add(natQueryWait))
	msgs, err := s.nat.conn.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_CTNETLINK<<8 | ipctnlMsgCtGet), Flags: netlink.Request},
		Data:   append([]byte{family, unix.NFNETLINK_V0, 0, 0}, attrs...),
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, os.ErrDeadlineExceeded) {
		return src, false, nil
	}
	if err != nil {
		return src, false, fmt.Errorf("read the lab's conntrack: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		if src, ok = replyDestination(m.Data[4:]); ok {
			return src, true, nil
		}
	}
	return src, false, nil
}

// replyDestination reads the reply tuple's destination out of a conntrack
// message's attributes: where the answer goes is where the flow came from,
// as the world saw it.
func replyDestination(b []byte) (netip.AddrPort, bool) {
	var addr netip.Addr
	var port uint16
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return netip.AddrPort{}, false
	}
	for ad.Next() {
		if ad.Type() != ctaTupleReply {
			continue
		}
		ad.Nested(func(nd *netlink.AttributeDecoder) error {
			for nd.Next() {
				switch nd.Type() {
				case ctaTupleIP:
					nd.Nested(func(ip *netlink.AttributeDecoder) error {
						for ip.Next() {
							if ip.Type() == ctaIPv4Dst || ip.Type() == ctaIPv6Dst {
								addr, _ = netip.AddrFromSlice(ip.Bytes())
							}
						}
						return nil
					})
				case ctaTupleProto:
					nd.Nested(func(pd *netlink.AttributeDecoder) error {
						for pd.Next() {
							if pd.Type() == ctaProtoDst {
								if b := pd.Bytes(); len(b) == 2 {
									port = uint16(b[0])<<8 | uint16(b[1])
								}
							}
						}
						return nil
					})
				}
			}
			return nil
		})
	}
	return netip.AddrPortFrom(addr, port), addr.IsValid() && ad.Err() == nil
}

func (q *natQuery) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conn != nil {
		q.conn.Close()
	}
}
