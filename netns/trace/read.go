package trace

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns"
)

// The reader must keep up with probes that run at tens of thousands a
// second, each with a few reports: it reads the socket into one buffer,
// walks the attributes in place, keys flows by value and keeps one copy of
// each table and chain name. Should it fall behind anyway, the kernel drops
// reports (ENOBUFS) and the trace says so rather than name a wrong rule.
// It polls the socket and an eventfd that Stop and Close signal.

// traceKey names the packets of one direction of a flow (addresses in
// their 16-byte form); ndKey collects neighbour discovery, which no flow owns.
type traceKey struct {
	src, dst     [16]byte
	sport, dport uint16
	proto        uint8
}

var ndKey = traceKey{proto: unix.IPPROTO_ICMPV6}

func flowKey(src, dst netip.AddrPort, proto string) traceKey {
	p := uint8(unix.IPPROTO_TCP)
	if proto == "udp" {
		p = unix.IPPROTO_UDP
	}
	return traceKey{src: src.Addr().As16(), dst: dst.Addr().As16(), sport: src.Port(), dport: dst.Port(), proto: p}
}

// flowTrace is what decides a probe from one direction's reports: whether
// the candidate's rules saw it at all, its first drop, its first accept by a
// rule and its first by a chain's policy. A sweep keeps one per probe: the
// verdicts are numbers into Trace.met, half the size of pointers.
type flowTrace struct {
	seen                       bool
	drop, accept, policyAccept eventRef
}

// eventRef is 1 + the index of a verdict in Trace.met; 0 is none.
type eventRef uint32

// event is the verdict r refers to (nil for none). Call it with t.mu held,
// or once the reader has stopped.
func (t *Trace) event(r eventRef) *traceEvent {
	if r == 0 {
		return nil
	}
	return t.met[r-1]
}

// packetIDs maps a trace id to the packet it follows. Ids are reused by
// later packets, so entries are dropped in generations: an id is kept for at
// least packetGeneration packets after its last headers.
type packetIDs struct {
	current, previous map[uint32]traceKey
}

const packetGeneration = 1 << 12 // a packet's reports come within microseconds

func (p *packetIDs) set(id uint32, k traceKey) {
	if len(p.current) >= packetGeneration {
		p.previous, p.current = p.current, make(map[uint32]traceKey, packetGeneration)
	}
	p.current[id] = k
}

func (p *packetIDs) get(id uint32) (traceKey, bool) {
	if k, ok := p.current[id]; ok {
		return k, true
	}
	k, ok := p.previous[id]
	return k, ok
}

// Probes can make reports faster than one reader takes them, and a report
// the kernel cannot queue is lost: probes wait (Pace) while the kernel holds
// more than traceHighWater bytes for the reader, until it is down to
// traceLowWater.
const (
	traceHighWater = 24 << 20
	traceLowWater  = 8 << 20
)

// Pace waits while the reader is far behind the kernel's reports.
func (t *Trace) Pace() {
	if t.backlog.Load() < traceHighWater {
		return
	}
	t.paceMu.Lock()
	for t.backlog.Load() >= traceLowWater {
		t.paced.Wait()
	}
	t.paceMu.Unlock()
}

func (t *Trace) setBacklog(n int64) {
	if t.backlog.Swap(n) >= traceLowWater && n < traceLowWater {
		t.paceMu.Lock()
		t.paced.Broadcast()
		t.paceMu.Unlock()
	}
}

// queued is how many bytes of reports the kernel holds for fd (SO_MEMINFO's
// receive allocation).
func queued(fd int) int64 {
	var info [unix.SK_MEMINFO_VARS]uint32
	size := uint32(len(info) * 4)
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return 0
	}
	return int64(info[unix.SK_MEMINFO_RMEM_ALLOC])
}

// traceBatch is how many reports one receive takes, each in a slot of
// traceSlot bytes (a report is a few hundred).
const (
	traceBatch = 256
	traceSlot  = 2048
)

// read takes the kernel's trace reports until stop is signalled, many per
// system call (recvmmsg): read one at a time, the reader fell behind a
// sweep's probes and the kernel dropped reports.
func (t *Trace) read() {
	defer close(t.done)
	defer t.setBacklog(0) // no probe waits on a reader that is gone
	ids := &packetIDs{current: map[uint32]traceKey{}}
	chains := map[[3]string]*traceChain{} // one copy of each chain's names
	verdicts := map[traceEvent]eventRef{} // and of each verdict
	buf := make([]byte, traceBatch*traceSlot)
	msgs := make([]mmsghdr, traceBatch)
	iovs := make([]unix.Iovec, traceBatch)
	for i := range msgs {
		iovs[i].Base = &buf[i*traceSlot]
		iovs[i].SetLen(traceSlot)
		msgs[i].hdr.Iov = &iovs[i]
		msgs[i].hdr.SetIovlen(1)
	}
	fds := []unix.PollFd{{Fd: int32(t.sock), Events: unix.POLLIN}, {Fd: int32(t.stop), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return
		}
		if fds[1].Revents != 0 {
			return // Stop or Close
		}
		for {
			n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(t.sock), uintptr(unsafe.Pointer(&msgs[0])), traceBatch, unix.MSG_DONTWAIT, 0, 0)
			if errno == unix.ENOBUFS {
				t.mu.Lock()
				t.lost = true
				t.mu.Unlock()
				continue
			}
			if errno != 0 {
				t.setBacklog(0) // EAGAIN: drained; back to poll
				break
			}
			t.setBacklog(queued(t.sock))
			for i := 0; i < int(n); i++ {
				msg := buf[i*traceSlot : i*traceSlot+int(min(msgs[i].n, traceSlot))]
				for len(msg) >= unix.NLMSG_HDRLEN {
					size := int(binary.NativeEndian.Uint32(msg))
					if size < unix.NLMSG_HDRLEN || size > len(msg) {
						break
					}
					t.report(binary.NativeEndian.Uint16(msg[4:]), msg[unix.NLMSG_HDRLEN:size], ids, chains, verdicts)
					msg = msg[min(nlmAlign(size), len(msg)):]
				}
			}
		}
	}
}

// nlaTypeMask takes the nested and byte-order flags off an attribute type.
const nlaTypeMask = ^uint16(unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)

func nlmAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// attrs calls fn for each netlink attribute in b (type without its flags).
func attrs(b []byte, fn func(typ uint16, v []byte)) {
	for len(b) >= unix.NLA_HDRLEN {
		size := int(binary.NativeEndian.Uint16(b))
		if size < unix.NLA_HDRLEN || size > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[unix.NLA_HDRLEN:size])
		b = b[min((size+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1), len(b)):]
	}
}

// report files one trace report under its packet's flow.
func (t *Trace) report(typ uint16, data []byte, ids *packetIDs, chains map[[3]string]*traceChain, verdicts map[traceEvent]eventRef) {
	if typ != unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_TRACE || len(data) < 4 {
		return
	}
	var ev traceEvent
	var table, chain []byte
	var id, nfproto uint32
	var network, transport []byte
	attrs(data[4:], func(typ uint16, v []byte) { // after the nfgenmsg
		be32 := func() uint32 {
			if len(v) < 4 {
				return 0
			}
			return binary.BigEndian.Uint32(v)
		}
		switch typ {
		case unix.NFTA_TRACE_TABLE:
			table = bytes.TrimRight(v, "\x00")
		case unix.NFTA_TRACE_CHAIN:
			chain = bytes.TrimRight(v, "\x00")
		case unix.NFTA_TRACE_RULE_HANDLE:
			if len(v) >= 8 {
				ev.handle = int(binary.BigEndian.Uint64(v))
			}
		case unix.NFTA_TRACE_TYPE:
			ev.policy = be32() == unix.NFT_TRACETYPE_POLICY
		case unix.NFTA_TRACE_VERDICT:
			attrs(v, func(typ uint16, v []byte) {
				if typ == unix.NFTA_VERDICT_CODE && len(v) >= 4 {
					ev.verdict = verdictName(int32(binary.BigEndian.Uint32(v)))
				}
			})
		case unix.NFTA_TRACE_POLICY:
			ev.verdict = verdictName(int32(be32()))
		case unix.NFTA_TRACE_ID:
			id = be32()
		case unix.NFTA_TRACE_NFPROTO:
			nfproto = be32()
		case unix.NFTA_TRACE_NETWORK_HEADER:
			network = v
		case unix.NFTA_TRACE_TRANSPORT_HEADER:
			transport = v
		}
	})
	if network != nil { // a packet's first report in each base chain carries its headers
		key, ok, isMarker := headerKey(nfproto, network, transport)
		if !ok {
			return
		}
		ids.set(id, key)
		if isMarker {
			t.markerSeen(key.sport)
		}
	}
	key, ok := ids.get(id)
	if !ok || ev.verdict == "" || bytes.HasPrefix(table, []byte("egresslab_")) {
		return
	}
	name := [3]string{tableFamily(data[0]), string(table), string(chain)} // no copy for the lookup
	if ev.where = chains[name]; ev.where == nil {
		ev.where = &traceChain{family: name[0], table: string(table), chain: string(chain)}
		chains[name] = ev.where
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ref := verdicts[ev]
	if ref == 0 {
		v := ev
		t.met = append(t.met, &v)
		ref = eventRef(len(t.met))
		verdicts[ev] = ref
	}
	v := t.event(ref)
	if key == ndKey {
		if v.verdict == "drop" && !slices.Contains(t.ndDrops, v) {
			t.ndDrops = append(t.ndDrops, v)
		}
		return
	}
	ft := t.events[key]
	ft.seen = true
	switch {
	case v.verdict == "drop" && ft.drop == 0:
		ft.drop = ref
	case v.verdict == "accept" && !v.policy && ft.accept == 0:
		ft.accept = ref
	case v.verdict == "accept" && v.policy && ft.policyAccept == 0:
		ft.policyAccept = ref
	}
	t.events[key] = ft
}

func (t *Trace) markerSeen(sport uint16) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ch, ok := t.markers[sport]; ok {
		delete(t.markers, sport)
		close(ch)
	}
}

// Netfilter's own verdicts (linux/netfilter.h), beside nf_tables' negative ones.
const (
	nfDrop   = 0
	nfAccept = 1
)

// traceReadBuffer holds a whole matrix's reports (a few hundred bytes each)
// should the reader fall behind.
const traceReadBuffer = 64 << 20

// traceSocket joins the lab's trace group, with a receive buffer forced past
// the namespace's default (as root on the host; rootless, as far as
// net.core.rmem_max allows).
func traceSocket(l *netns.Lab) (int, error) {
	fd := -1
	err := l.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("open a trace socket in lab %s: %w", l.Name(), err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind the trace socket in lab %s: %w", l.Name(), err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, unix.NFNLGRP_NFTRACE); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("join the trace group in lab %s: %w", l.Name(), err)
	}
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, traceReadBuffer)
	if errors.Is(err, unix.EPERM) && netns.Rootless() {
		// Forcing needs CAP_NET_ADMIN on the host: rootless, the buffer
		// is what net.core.rmem_max allows, and a reader that falls
		// behind loses reports, which the trace says (ENOBUFS).
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, traceReadBuffer)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("size the trace socket in lab %s: %w", l.Name(), err)
	}
	return fd, nil
}

// mmsghdr is the kernel's struct mmsghdr, for recvmmsg.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}
