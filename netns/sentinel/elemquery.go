package sentinel

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns"
)

// A probe reads the sentinel a few times, one element at a time: a netlink
// GETSETELEM, which the kernel answers inside the send (its reply is queued
// before sendto returns). These sockets do just that, with two plain system
// calls on a reused buffer; a general netlink client (its poller, its
// message validation, its allocations) cost more than the kernel's own work
// at a sweep's 131,070 probes. Each socket serves one query at a time.

// elemQueries is the lab's pool of query sockets, opened as needed.
type elemQueries struct {
	lab  *netns.Lab
	free chan *elemQuery

	// Queries hold rw's read lock; close takes it whole, so no socket
	// closes (and no descriptor number is reused) under a query.
	rw     sync.RWMutex
	closed bool

	mu  sync.Mutex // guards all
	all []*elemQuery
}

type elemQuery struct {
	fd  int
	seq uint32
	req []byte // the questions
	buf []byte // the answers
	// receive's headers over buf's slots, made once
	msgs []mmsghdr
	iovs []unix.Iovec
	got  [][]byte
}

// maxElemQueries bounds the open sockets: more probes than this wait.
const maxElemQueries = 64

func newElemQueries(lab *netns.Lab) *elemQueries {
	return &elemQueries{lab: lab, free: make(chan *elemQuery, maxElemQueries)}
}

// has reports, for each question, whether key is an element of the
// sentinel's set.
func (p *elemQueries) has(reqs ...elemReq) ([]bool, error) {
	p.rw.RLock()
	defer p.rw.RUnlock()
	if p.closed {
		return nil, netns.ErrClosed
	}
	q, err := p.get()
	if err != nil {
		return nil, err
	}
	defer p.put(q)
	return q.ask(reqs, nil)
}

// value is the data a map of the sentinel's holds for r's key; ok is false
// when the key is not in it.
func (p *elemQueries) value(r elemReq) (data []byte, ok bool, err error) {
	p.rw.RLock()
	defer p.rw.RUnlock()
	if p.closed {
		return nil, false, netns.ErrClosed
	}
	q, err := p.get()
	if err != nil {
		return nil, false, err
	}
	defer p.put(q)
	values := make([][]byte, 1)
	answers, err := q.ask([]elemReq{r}, values)
	if err != nil {
		return nil, false, err
	}
	return values[0], answers[0], nil
}

func (p *elemQueries) get() (*elemQuery, error) {
	select {
	case q := <-p.free:
		return q, nil
	default:
	}
	p.mu.Lock()
	if len(p.all) >= maxElemQueries {
		p.mu.Unlock()
		return <-p.free, nil
	}
	q := &elemQuery{fd: -1, req: make([]byte, 0, 1024), buf: make([]byte, 8192)}
	p.all = append(p.all, q)
	p.mu.Unlock()
	err := p.lab.Do(func() (err error) {
		q.fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		return err
	})
	if err == nil {
		// Never blocks in practice (the reply is there when sendto
		// returns); the bound only keeps a broken lab from hanging a probe.
		err = unix.SetsockoptTimeval(q.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10})
	}
	if err != nil {
		p.put(q)
		return nil, fmt.Errorf("open a query socket for the drop sentinel: %w", err)
	}
	return q, nil
}

func (p *elemQueries) put(q *elemQuery) { p.free <- q }

func (p *elemQueries) close() {
	p.rw.Lock()
	defer p.rw.Unlock()
	p.closed = true
	for _, q := range p.all {
		if q.fd >= 0 {
			unix.Close(q.fd)
		}
	}
}

// elemReq is one question: is key in set?
type elemReq struct {
	set string
	key []byte
}

// ask asks the kernel each question, all in one send, and reads the answers
// with one receive (recvmmsg): a probe's questions cost two system calls.
// With values, each found element's data (a map's) is copied there too.
func (q *elemQuery) ask(reqs []elemReq, values [][]byte) ([]bool, error) {
	if q.fd < 0 {
		return nil, fmt.Errorf("read the drop sentinel: no socket")
	}
	first := q.seq + 1
	msg := q.req[:0]
	for _, r := range reqs {
		q.seq++
		msg = appendGetSetElem(msg, q.seq, r.set, r.key)
	}
	q.req = msg[:0]
	if err := unix.Sendto(q.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("read the drop sentinel: %w", err)
	}
	answers := make([]bool, len(reqs))
	pending := len(reqs)
	for pending > 0 {
		replies, err := q.receive(pending)
		if err != nil {
			return nil, fmt.Errorf("read the drop sentinel: %w", err)
		}
		for _, reply := range replies {
			if len(reply) < unix.NLMSG_HDRLEN {
				return nil, fmt.Errorf("read the drop sentinel: a short reply")
			}
			typ := binary.NativeEndian.Uint16(reply[4:])
			i := int(binary.NativeEndian.Uint32(reply[8:]) - first)
			if i < 0 || i >= len(reqs) {
				continue // the late answer to a query that gave up
			}
			switch {
			case typ == unix.NLMSG_ERROR && len(reply) >= unix.NLMSG_HDRLEN+4:
				switch errno := -int32(binary.NativeEndian.Uint32(reply[unix.NLMSG_HDRLEN:])); errno {
				case 0:
					return nil, fmt.Errorf("read the drop sentinel: an acknowledgement instead of an answer")
				case int32(unix.ENOENT):
					answers[i] = false
				default:
					return nil, fmt.Errorf("read the drop sentinel: %s: %w", reqs[i].set, unix.Errno(errno))
				}
			case typ == unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWSETELEM:
				answers[i] = true
				if values != nil {
					values[i] = elemData(reply[unix.NLMSG_HDRLEN:])
				}
			default:
				return nil, fmt.Errorf("read the drop sentinel: an answer of type %#x", typ)
			}
			pending--
		}
	}
	return answers, nil
}

// elemData is the data of the one element a NEWSETELEM answer (after its
// netlink header) carries, copied; nil for a set's element.
func elemData(b []byte) []byte {
	if len(b) < 4 {
		return nil
	}
	var data []byte
	// elements > element > data > value
	var walk func(b []byte, path []uint16)
	walk = func(b []byte, path []uint16) {
		ad, err := netlink.NewAttributeDecoder(b)
		if err != nil {
			return
		}
		for ad.Next() {
			if ad.Type() != path[0] {
				continue
			}
			if len(path) == 1 {
				data = append([]byte(nil), ad.Bytes()...)
				return
			}
			walk(ad.Bytes(), path[1:])
		}
	}
	walk(b[4:], []uint16{unix.NFTA_SET_ELEM_LIST_ELEMENTS, unix.NFTA_LIST_ELEM, unix.NFTA_SET_ELEM_DATA, unix.NFTA_DATA_VALUE})
	return data
}

// mmsghdr is the kernel's struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// receive reads up to max datagrams (at least one) into q.buf's slots.
func (q *elemQuery) receive(max int) ([][]byte, error) {
	const slot = 1024 // an answer is a few hundred bytes at most
	if q.msgs == nil {
		n := len(q.buf) / slot
		q.msgs, q.iovs, q.got = make([]mmsghdr, n), make([]unix.Iovec, n), make([][]byte, n)
		for i := range q.msgs {
			q.iovs[i].Base = &q.buf[i*slot]
			q.iovs[i].SetLen(slot)
			q.msgs[i].hdr.Iov = &q.iovs[i]
			q.msgs[i].hdr.SetIovlen(1)
		}
	}
	max = min(max, len(q.msgs))
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(q.fd), uintptr(unsafe.Pointer(&q.msgs[0])), uintptr(max), unix.MSG_WAITFORONE, 0, 0)
		runtime.KeepAlive(q.iovs)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return nil, errno
		}
		for i := range int(n) {
			q.got[i] = q.buf[i*slot : i*slot+int(q.msgs[i].n)]
		}
		return q.got[:n], nil
	}
}

// appendGetSetElem appends a GETSETELEM for key in the sentinel's set.
func appendGetSetElem(msg []byte, seq uint32, set string, key []byte) []byte {
	start := len(msg)
	msg = binary.NativeEndian.AppendUint32(msg, 0) // length, below
	msg = binary.NativeEndian.AppendUint16(msg, uint16(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETSETELEM))
	msg = binary.NativeEndian.AppendUint16(msg, unix.NLM_F_REQUEST)
	msg = binary.NativeEndian.AppendUint32(msg, seq)
	msg = binary.NativeEndian.AppendUint32(msg, 0)
	msg = append(msg, unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0)
	msg = appendAttr(msg, unix.NFTA_SET_ELEM_LIST_TABLE, []byte(sentinelTable+"\x00"))
	msg = appendAttr(msg, unix.NFTA_SET_ELEM_LIST_SET, append([]byte(set), 0))
	elems := len(msg)
	msg = appendAttr(msg, unix.NFTA_SET_ELEM_LIST_ELEMENTS|unix.NLA_F_NESTED, nil)
	elem := len(msg)
	msg = appendAttr(msg, unix.NFTA_LIST_ELEM|unix.NLA_F_NESTED, nil)
	k := len(msg)
	msg = appendAttr(msg, unix.NFTA_SET_ELEM_KEY|unix.NLA_F_NESTED, nil)
	msg = appendAttr(msg, unix.NFTA_DATA_VALUE, key)
	for _, at := range []int{k, elem, elems} {
		binary.NativeEndian.PutUint16(msg[at:], uint16(len(msg)-at))
	}
	binary.NativeEndian.PutUint32(msg[start:], uint32(len(msg)-start))
	return msg
}

// appendAttr appends a netlink attribute; nested attributes are appended
// after it and their length patched in by the caller.
func appendAttr(b []byte, typ uint16, data []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(unix.NLA_HDRLEN+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%unix.NLA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}
