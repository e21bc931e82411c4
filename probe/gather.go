package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/sentinel"
	"golang.org/x/sys/unix"
)

// The I/O half of a probe: it dials, waits on real signals, and reads the
// lab's evidence into the probe's Facts. It stops when a fact settles the
// flow (the socket answered, the packet never left, a silence has evidence
// or reached the backstop); decide, not this file, says what the facts mean.

type dialer struct {
	lab  Lab
	fwd  ForwardLab // a client's probe: the forward path's evidence; nil for a user's
	f    Facts
	file *os.File
	fd   int
	flow netns.Flow // known once connect() has bound the socket
	// unrecorded: the sentinel holds nothing of the flow. Its one packet
	// died in OUTPUT (synchronously, inside connect or send) before any
	// chain that records, and nothing answered it; the socket closes before
	// TCP would send the SYN again (a second later).
	unrecorded bool
	// mark: how far the removal of earlier probes' evidence had got before
	// this probe dialled; again: why this attempt has no verdict.
	mark     uint64
	again    dialAgain
	t        Target
	deadline time.Time
	ctx      context.Context
	// stopCancel ends the cancellation's hold on file (nil: no file yet).
	stopCancel func() bool
}

// socketFile is the probe's socket as an *os.File, for waits with a deadline.
// It is made only for a probe that waits (most probes are decided without):
// from then on a cancelled context ends every wait at once, since the
// socket's deadline moves to the past, and the verdict is the context's error.
func (p *dialer) socketFile() *os.File {
	if p.file == nil {
		f := os.NewFile(uintptr(p.fd), "probe")
		p.file = f
		p.stopCancel = context.AfterFunc(p.ctx, func() { _ = f.SetDeadline(time.Unix(1, 0)) })
	}
	return p.file
}

// Close closes the probe's socket.
func (p *dialer) Close() error { return p.socket().Close() }

// socket is the probe's socket to close, apart from the dialer (which is
// reused once the probe is decided). A connection whose handshake completed
// ends with a reset (SO_LINGER 0), not the FIN exchange: its verdict and
// evidence are known by now, and each packet it sends crosses the
// candidate's chains again (a FIN and the ACK of the peer's FIN are two, a
// reset one). Not to an address of the lab's own: the sentinel records a
// reset leaving the lab under its flow read backwards, which a later probe
// from that address could take for its own.
func (p *dialer) socket() io.Closer {
	if p.f.Handshake && !p.t.Addr.IsLoopback() && p.flow.Src.Addr() != p.t.Addr {
		_ = unix.SetsockoptLinger(p.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
	}
	if p.file != nil {
		return p.file
	}
	return socketFD(p.fd)
}

// socketFD is a socket that no wait has made into an *os.File.
type socketFD int

func (s socketFD) Close() error { return unix.Close(int(s)) }

func (p *dialer) fail(err error) { p.f.Err = err }

func (p *dialer) sockaddr() unix.Sockaddr {
	if p.t.Addr.Is4() {
		return &unix.SockaddrInet4{Addr: p.t.Addr.As4(), Port: int(p.t.Port)}
	}
	return &unix.SockaddrInet6{Addr: p.t.Addr.As16(), Port: int(p.t.Port)}
}

// bound learns the flow: connect() has picked the source address and port.
func (p *dialer) bound() bool {
	local, err := unix.Getsockname(p.fd)
	if err != nil {
		return false
	}
	src := addrPort(local)
	if src.Port() == 0 {
		return false
	}
	p.flow = netns.Flow{Src: src, Dst: netip.AddrPortFrom(p.t.Addr, p.t.Port), Proto: p.t.Proto}
	if p.lab.Recycled(p.flow, p.mark) {
		p.again = recycled
	}
	return true
}

func (p *dialer) tcp() {
	err := unix.Connect(p.fd, p.sockaddr())
	if err != nil && !errors.Is(err, unix.EINPROGRESS) {
		p.refusedLocally("connect", err)
		return
	}
	if !p.bound() {
		p.fail(errors.New("connect returned without a source port"))
		return
	}
	if p.again == recycled {
		return
	}
	// Inside the lab a handshake or a reset usually completes before
	// connect() returns: then the socket itself is the answer.
	if ready(p.fd) {
		p.established()
		return
	}
	if p.fwd != nil {
		// The client's kernel sent it; the host's evidence, or the
		// socket's answer, tells the rest.
		if p.await(true, p.waitWritable) {
			p.established()
		}
		return
	}
	left, answered, err := p.lab.Egress(p.flow)
	if err != nil {
		p.fail(err)
		return
	}
	switch {
	case left:
		p.f.Departure = Departed
	case answered:
		// A REJECT answered; its reset or ICMP error may still be on its
		// way to the socket: wait for it (it is a real, imminent signal).
		p.f.Departure = NeverLeftAnswered
	default:
		p.f.Departure = NeverLeft
		p.unrecorded = true
		return
	}
	if p.await(left, p.waitWritable) {
		p.established()
	}
}

// refusedLocally reads what stands behind a connect() or send() that the lab
// host's own kernel refused: the host's state.
func (p *dialer) refusedLocally(call string, err error) {
	// connect() found no free source port: TCP says EADDRNOTAVAIL, UDP EAGAIN.
	if call == "connect" && (errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.EAGAIN)) {
		p.again = portsHeld
	}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		p.fail(fmt.Errorf("%s: %w", call, err))
		return
	}
	if p.fwd != nil {
		p.f.Call, p.f.Errno = call, errno // the client's kernel, not the host's
		return
	}
	refusal, ok, lerr := p.lab.HostRefusal(p.t.Addr)
	if lerr != nil {
		p.fail(fmt.Errorf("%s: %v (and reading the lab's state: %w)", call, err, lerr))
		return
	}
	p.f.Call, p.f.Errno, p.f.Host = call, errno, nil
	if ok {
		p.f.Host = hostRefusal(refusal)
	}
}

func hostRefusal(r sentinel.Refusal) *HostRefusal {
	return &HostRefusal{What: RefusalKind(r.What), Link: r.Link, Route: r.Route, RouteType: r.RouteType}
}

// established reads a TCP socket that became writable or failed.
func (p *dialer) established() {
	if p.socketError() {
		return
	}
	p.f.Handshake = true
	if p.f.SMTP {
		p.greeting()
		return
	}
	p.f.AnsweredBy = p.answeredBy()
}

func (p *dialer) udp() {
	if err := unix.Connect(p.fd, p.sockaddr()); err != nil {
		p.refusedLocally("connect", err)
		return
	}
	if !p.bound() {
		p.fail(errors.New("connect returned without a source port"))
		return
	}
	if p.again == recycled {
		return
	}
	payload := []byte("egresslab probe\n")
	_, err := unix.Write(p.fd, payload)
	left := false
	switch {
	case p.fwd != nil && err == nil:
		left = true // from the client: the host's evidence tells the rest
	case errors.Is(err, unix.EPERM):
		// OUTPUT dropped or rejected it, synchronously. A REJECT also sent
		// an ICMP error back, which tells the two apart.
		p.f.SendEPERM = true
		answered, aerr := p.lab.Answered(p.flow)
		if aerr != nil {
			p.fail(aerr)
			return
		}
		if !answered {
			p.f.Departure = NeverLeft
			p.unrecorded = true
			return
		}
		p.f.Departure = NeverLeftAnswered
	case err != nil:
		if !p.socketError() {
			p.refusedLocally("send", err)
		}
		return
	default:
		if left, err = p.lab.Left(p.flow); err != nil {
			p.fail(err)
			return
		}
		if left {
			p.f.Departure = Departed
		}
	}
	buf := make([]byte, 2048)
	var n int
	var rerr error
	rc, err := p.socketFile().SyscallConn()
	if err != nil {
		p.fail(err)
		return
	}
	try := func(fd int) bool {
		n, rerr = unix.Read(fd, buf)
		return !errors.Is(rerr, unix.EAGAIN)
	}
	read := func(deadline time.Time) error {
		_ = p.socketFile().SetReadDeadline(deadline)
		return p.lastLook(rc.Read(func(fd uintptr) bool { return try(int(fd)) }), try)
	}
	if !p.await(left, read) {
		return
	}
	if rerr != nil {
		if !p.socketError() {
			p.fail(fmt.Errorf("receive: %w", rerr))
		}
		return
	}
	p.f.Replied, p.f.ReplyBytes = true, n
	p.f.AnsweredBy = p.answeredBy()
}

// settle is how long an answer may take inside the lab before the sentinel's
// evidence is read. Lab packets cross one veth or lo within microseconds; the
// settle only covers a packet caught mid-way through the hooks when we look.
const settle = 15 * time.Millisecond

// await waits, with wait, for the answer to a probe, and reports whether it
// came. For a packet that left, it reads the evidence after a settle: a
// silence that the evidence explains (see Facts.silenceExplained) at two
// looks a settle apart needs no backstop. Without such evidence the wait goes
// on to the backstop.
func (p *dialer) await(left bool, wait func(deadline time.Time) error) bool {
	if left {
		for look := 0; look < 2; look++ {
			err := wait(minTime(time.Now().Add(settle), p.deadline))
			if err == nil {
				return true
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				p.fail(fmt.Errorf("wait for an answer: %w", err))
				return false
			}
			if err := p.readSilence(); err != nil {
				p.fail(err)
				return false
			}
			if !p.f.silenceExplained() {
				break
			}
			if look == 1 {
				p.f.Silent = true
				return false
			}
		}
	}
	err := wait(p.deadline)
	if err == nil {
		return true
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		p.fail(fmt.Errorf("wait for an answer: %w", err))
		return false
	}
	p.clearSilence()
	p.f.Silent = true
	return false
}

// clearSilence forgets the silence's evidence: what a look found and the
// next did not decides nothing.
func (p *dialer) clearSilence() {
	p.f.DropSite, p.f.Discovery, p.f.Host = NotDropped, DiscoveryOK, nil
	p.f.ForwardSite, p.f.ForwardingOff = ForwardNotDropped, false
	p.f.Neighbour, p.f.Gateway, p.f.Uplink = netip.Addr{}, false, ""
}

// readSilence reads the evidence of why a packet that left got no answer,
// the sentinel's first: where its rules dropped it, then neighbour
// discovery, then the host's own state.
func (p *dialer) readSilence() error {
	if p.fwd != nil {
		return p.readForwardSilence()
	}
	p.clearSilence()
	where, err := p.lab.WhereDropped(p.flow)
	if err != nil {
		return err
	}
	if p.f.DropSite = DropSite(where); p.f.DropSite != NotDropped {
		return nil
	}
	if err := p.readDiscovery(); err != nil || p.f.Discovery != DiscoveryOK {
		return err
	}
	refusal, ok, err := p.lab.HostRefusal(p.t.Addr)
	if err != nil || !ok {
		return err
	}
	p.f.Host = hostRefusal(refusal)
	return nil
}

// readDiscovery reads whether IPv6 neighbour discovery with the next hop
// died in the candidate's rules.
func (p *dialer) readDiscovery() error {
	p.f.Discovery = DiscoveryOK
	d, err := p.lab.NeighbourDiscovery(p.t.Addr)
	if err != nil {
		return err
	}
	if p.f.Discovery = Discovery(d); p.f.Discovery != DiscoveryOK {
		p.f.Neighbour, p.f.Gateway, _ = p.lab.NextHop(p.t.Addr)
		p.f.Uplink = p.lab.Uplink()
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
