package probe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Reading the probe's socket: whether it is done, what went wrong on it (an
// ICMP error with its type and code, a reset, the kernel's own refusal), and
// an SMTP server's greeting.

// ready reports, without waiting, whether a connecting socket is done.
func ready(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(pfd, 0)
	return err == nil && n > 0 && pfd[0].Revents&(unix.POLLOUT|unix.POLLERR|unix.POLLHUP) != 0
}

// serverLag bounds how long the lab's own SMTP server may take to write a
// greeting once the handshake is done, before the probe says the lab itself
// could not keep up (a probe error, never a verdict).
const serverLag = 30 * time.Second

func (p *dialer) waitWritable(deadline time.Time) error {
	rc, err := p.socketFile().SyscallConn()
	if err != nil {
		return err
	}
	_ = p.socketFile().SetWriteDeadline(deadline)
	return p.lastLook(rc.Write(func(fd uintptr) bool { return ready(int(fd)) }), ready)
}

// lastLook gives a wait that ran out one more look at the socket, without
// waiting: Go ends a wait when its deadline's timer fires, and on a loaded
// machine that timer can run before the poller has seen an answer the kernel
// already queued (runtime findRunnable checks timers before netpoll), so the
// wait's end alone does not prove that nothing came. try is the wait's own
// test, run once on the probe's non-blocking socket.
func (p *dialer) lastLook(err error, try func(fd int) bool) error {
	if errors.Is(err, os.ErrDeadlineExceeded) && try(p.fd) {
		return nil
	}
	return err
}

// socketError reads what went wrong on the socket, if anything: an ICMP error
// from its error queue (precise: type and code), else its pending error. It
// reports whether it found something (or failed to read).
func (p *dialer) socketError() bool {
	if p.icmpError() {
		return true
	}
	errno, err := unix.GetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		p.fail(fmt.Errorf("read socket error: %w", err))
		return true
	}
	switch e := unix.Errno(errno); e {
	case 0:
		return false
	case unix.ECONNREFUSED:
		p.f.Reset = true
	default:
		p.refusedLocally("connect", e)
	}
	return true
}

func (p *dialer) icmpError() bool {
	buf := make([]byte, 512)
	oob := make([]byte, 512)
	_, oobn, _, _, err := unix.Recvmsg(p.fd, buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
	if err != nil {
		return false
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return false
	}
	for _, m := range msgs {
		if !(m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR) &&
			!(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR) {
			continue
		}
		if len(m.Data) < 8 {
			continue
		}
		origin, typ, code := m.Data[4], m.Data[5], m.Data[6]
		switch origin {
		case unix.SO_EE_ORIGIN_ICMP:
			p.f.ICMP = &ICMP{Version: 4, Type: typ, Code: code}
		case unix.SO_EE_ORIGIN_ICMP6:
			p.f.ICMP = &ICMP{Version: 6, Type: typ, Code: code}
			if typ == 1 && code == addressUnreachable {
				// Did the candidate's rules break the discovery the kernel
				// gave up on? Unreadable evidence leaves the ICMP alone.
				_ = p.readDiscovery()
			}
		default:
			// A local error (SO_EE_ORIGIN_LOCAL): the host refused, no
			// ICMP came back.
			p.refusedLocally("connect", unix.Errno(binary.NativeEndian.Uint32(m.Data[0:4])))
		}
		return true
	}
	return false
}

// greeting reads the SMTP server's first line: on an SMTP port, "connected"
// means the greeting came back, not just the handshake.
func (p *dialer) greeting() {
	rc, err := p.socketFile().SyscallConn()
	if err != nil {
		p.fail(err)
		return
	}
	_ = p.socketFile().SetReadDeadline(p.deadline)
	var line []byte
	buf := make([]byte, 512)
	var rerr error
	try := func(fd int) bool {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return false
		}
		if err != nil || n == 0 {
			rerr = err
			if n == 0 && err == nil {
				rerr = errors.New("the server closed the connection")
			}
			return true
		}
		line = append(line, buf[:n]...)
		return bytes.IndexByte(line, '\n') >= 0 || len(line) > 1024
	}
	read := func() error {
		return p.lastLook(rc.Read(func(fd uintptr) bool { return try(int(fd)) }), try)
	}
	werr := read()
	if errors.Is(werr, os.ErrDeadlineExceeded) {
		// Only a greeting the lab's server wrote and the client never got
		// is a drop; a server that has not written it yet is the lab's own
		// lag (a loaded machine), which is waited out, and never a verdict.
		client, server, known := p.connEnds()
		if !known {
			return
		}
		if !p.lab.AwaitGreeted(client, server, time.Now()) {
			if !p.lab.AwaitGreeted(client, server, time.Now().Add(serverLag)) {
				p.fail(fmt.Errorf("the lab's SMTP server did not greet within %s: the machine is too loaded", serverLag))
				return
			}
			_ = p.socketFile().SetReadDeadline(time.Now().Add(p.f.Backstop))
			werr = read()
		}
		p.f.Greeted = true
	}
	if werr != nil {
		if errors.Is(werr, os.ErrDeadlineExceeded) {
			p.f.Silent = true
			return
		}
		p.fail(fmt.Errorf("read the greeting: %w", werr))
		return
	}
	if rerr != nil {
		if !p.socketError() {
			p.fail(fmt.Errorf("read the greeting: %w", rerr))
		}
		return
	}
	_, _ = unix.Write(p.fd, []byte("QUIT\r\n"))
	greet := strings.TrimSpace(string(line))
	if i := strings.IndexByte(greet, '\n'); i >= 0 {
		greet = strings.TrimSpace(greet[:i])
	}
	p.f.Greeting = greet
	if strings.HasPrefix(greet, "220") {
		p.f.AnsweredBy = p.answeredBy()
	}
}

func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}
