package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/egresslab/egresslab/netns"
	"golang.org/x/sys/unix"
)

// Lab is what a probe needs from a lab; *netns.Lab has it.
type Lab interface {
	Socket(id netns.Identity, family, sotype int) (fd int, port uint16, err error)
	Left(proto string, port uint16) (bool, error)
	Answered(port uint16) (bool, error)
	WhoAnswered(proto, client string) (netns.Service, bool)
	WhereDropped(port uint16) (string, error)
}

var _ Lab = (*netns.Lab)(nil)

// Target is one address and port to dial.
type Target struct {
	Addr  netip.Addr
	Port  uint16
	Proto string // "tcp" or "udp"
}

func (t Target) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(t.Addr, t.Port), t.Proto)
}

// Result is a probe's verdict and what it saw.
type Result struct {
	Outcome Outcome
	Detail  string
}

// DefaultBackstop bounds the only wait left: a packet that passed every
// egress rule and left, but got no answer (the return path).
const DefaultBackstop = time.Second

// Dial probes t as id from inside lab. A drop at the lab's egress is known as
// soon as the send returns (the lab's sentinel never saw the packet); only a
// packet that left and got no answer waits, for at most backstop.
func Dial(ctx context.Context, lab Lab, id netns.Identity, t Target, backstop time.Duration) Result {
	if backstop <= 0 {
		backstop = DefaultBackstop
	}
	family := unix.AF_INET
	if t.Addr.Is6() {
		family = unix.AF_INET6
	}
	sotype := unix.SOCK_STREAM
	if t.Proto == "udp" {
		sotype = unix.SOCK_DGRAM
	}
	fd, port, err := lab.Socket(id, family, sotype)
	if err != nil {
		return Result{Error, fmt.Sprintf("open a socket as uid %d: %v", id.UID, err)}
	}
	f := os.NewFile(uintptr(fd), "probe") // hands fd to Go's poller; closes it
	defer f.Close()
	deadline := time.Now().Add(backstop)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	p := &dialer{lab: lab, f: f, fd: fd, port: port, t: t, deadline: deadline, backstop: backstop}
	if t.Proto == "udp" {
		return p.udp()
	}
	return p.tcp()
}

type dialer struct {
	lab      Lab
	f        *os.File
	fd       int
	port     uint16
	t        Target
	deadline time.Time
	backstop time.Duration
}

func (p *dialer) sockaddr() unix.Sockaddr {
	if p.t.Addr.Is4() {
		return &unix.SockaddrInet4{Addr: p.t.Addr.As4(), Port: int(p.t.Port)}
	}
	return &unix.SockaddrInet6{Addr: p.t.Addr.As16(), Port: int(p.t.Port)}
}

func (p *dialer) tcp() Result {
	err := unix.Connect(p.fd, p.sockaddr())
	switch {
	case err == nil, errors.Is(err, unix.EINPROGRESS):
	case errors.Is(err, unix.EPERM):
		return Result{Dropped, "connect: operation not permitted (dropped on the way out)"}
	default:
		if o, ok := fromErrno(err); ok {
			return Result{o, "connect: " + err.Error()}
		}
		return Result{Error, "connect: " + err.Error()}
	}
	// Inside the lab a handshake or a reset usually completes before
	// connect() returns: then the socket itself is the answer.
	if ready(p.fd) {
		return p.established()
	}
	left, err := p.lab.Left("tcp", p.port)
	if err != nil {
		return Result{Error, err.Error()}
	}
	if !left {
		answered, err := p.lab.Answered(p.port)
		if err != nil {
			return Result{Error, err.Error()}
		}
		if !answered {
			return Result{Dropped, "SYN dropped by the lab's egress rules (it never left)"}
		}
		// A REJECT answered; its reset or ICMP error may still be on its
		// way to the socket: wait for it (it is a real, imminent signal).
	}
	if r, done := p.await(left, p.waitWritable); done {
		return r
	}
	return p.established()
}

// established classifies a TCP socket that became writable or failed.
func (p *dialer) established() Result {
	if r, failed := p.socketError(); failed {
		return r
	}
	if netns.SMTPPorts[p.t.Port] {
		return p.greeting()
	}
	return Result{Connected, "TCP handshake completed"}
}

// ready reports, without waiting, whether a connecting socket is done.
func ready(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(pfd, 0)
	return err == nil && n > 0 && pfd[0].Revents&(unix.POLLOUT|unix.POLLERR|unix.POLLHUP) != 0
}

func (p *dialer) udp() Result {
	if err := unix.Connect(p.fd, p.sockaddr()); err != nil {
		return Result{Error, "connect: " + err.Error()}
	}
	payload := []byte("egresslab probe\n")
	_, err := unix.Write(p.fd, payload)
	left := false
	switch {
	case errors.Is(err, unix.EPERM):
		// OUTPUT dropped or rejected it, synchronously. A REJECT also sent
		// an ICMP error back, which tells the two apart.
		answered, aerr := p.lab.Answered(p.port)
		if aerr != nil {
			return Result{Error, aerr.Error()}
		}
		if !answered {
			return Result{Dropped, "datagram dropped by the lab's egress rules (send: operation not permitted)"}
		}
	case err != nil:
		if o, ok := fromErrno(err); ok {
			return Result{o, "send: " + err.Error()}
		}
		return Result{Error, "send: " + err.Error()}
	default:
		if left, err = p.lab.Left("udp", p.port); err != nil {
			return Result{Error, err.Error()}
		}
	}
	buf := make([]byte, 2048)
	var n int
	var rerr error
	rc, err := p.f.SyscallConn()
	if err != nil {
		return Result{Error, err.Error()}
	}
	read := func(deadline time.Time) error {
		_ = p.f.SetReadDeadline(deadline)
		return rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			return !errors.Is(rerr, unix.EAGAIN)
		})
	}
	if r, done := p.await(left, read); done {
		return r
	}
	if rerr != nil {
		if r, failed := p.socketError(); failed {
			return r
		}
		if o, ok := fromErrno(rerr); ok {
			return Result{o, "receive: " + rerr.Error()}
		}
		return Result{Error, "receive: " + rerr.Error()}
	}
	detail := fmt.Sprintf("reply of %d bytes", n)
	if local, err := unix.Getsockname(p.fd); err == nil {
		if s, ok := p.lab.WhoAnswered("udp", addrPort(local).String()); ok {
			detail = "echo from " + s.String()
		}
	}
	return Result{Connected, detail}
}

// noAnswer is the verdict when the wait for an answer ended.
func (p *dialer) noAnswer(left bool, err error) Result {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return Result{Error, "wait for an answer: " + err.Error()}
	}
	if left {
		return Result{Dropped, fmt.Sprintf("it left the lab but nothing answered within %s (the return path)", p.backstop)}
	}
	return Result{Error, fmt.Sprintf("a reject was sent but did not reach the socket within %s", p.backstop)}
}

// settle is how long an answer may take inside the lab before the sentinel's
// evidence is read. Lab packets cross one veth or lo within microseconds; the
// settle only covers a packet caught mid-way through the hooks when we look.
const settle = 15 * time.Millisecond

// await waits, with wait, for the answer to a probe. For a packet that left,
// it reads the sentinel's evidence after a settle: a packet seen entering the
// lab's rules and not leaving them, at two looks a settle apart, was dropped
// by them, and the verdict needs no backstop. Without such evidence the wait
// goes on to the backstop. done reports that r is the verdict.
func (p *dialer) await(left bool, wait func(deadline time.Time) error) (r Result, done bool) {
	if left {
		for look := 0; look < 2; look++ {
			err := wait(minTime(time.Now().Add(settle), p.deadline))
			if err == nil {
				return Result{}, false
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return Result{Error, "wait for an answer: " + err.Error()}, true
			}
			where, err := p.lab.WhereDropped(p.port)
			if err != nil {
				return Result{Error, err.Error()}, true
			}
			if where == "" {
				break
			}
			if look == 1 {
				return Result{Dropped, "it left the lab, but " + where}, true
			}
		}
	}
	if err := wait(p.deadline); err != nil {
		return p.noAnswer(left, err), true
	}
	return Result{}, false
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (p *dialer) waitWritable(deadline time.Time) error {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	_ = p.f.SetWriteDeadline(deadline)
	return rc.Write(func(fd uintptr) bool { return ready(int(fd)) })
}

// socketError reads what went wrong on the socket, if anything: an ICMP error
// from its error queue (precise: type and code), else its pending error.
func (p *dialer) socketError() (Result, bool) {
	if r, ok := p.icmpError(); ok {
		return r, true
	}
	errno, err := unix.GetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return Result{Error, "read socket error: " + err.Error()}, true
	}
	if errno == 0 {
		return Result{}, false
	}
	e := unix.Errno(errno)
	if e == unix.ECONNREFUSED {
		return Result{Refused, "TCP reset (connection refused)"}, true
	}
	if o, ok := fromErrno(e); ok {
		return Result{o, e.Error()}, true
	}
	return Result{Error, e.Error()}, true
}

func (p *dialer) icmpError() (Result, bool) {
	buf := make([]byte, 512)
	oob := make([]byte, 512)
	_, oobn, _, _, err := unix.Recvmsg(p.fd, buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
	if err != nil {
		return Result{}, false
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return Result{}, false
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
		return classifyICMP(origin, typ, code), true
	}
	return Result{}, false
}

// classifyICMP names an ICMP or ICMPv6 destination unreachable: port
// unreachable is a refusal (as a TCP reset is); everything else a rejection.
func classifyICMP(origin, typ, code byte) Result {
	proto, names, refusedType, refusedCode := "ICMP", icmpCodes, byte(3), byte(3)
	if origin != unix.SO_EE_ORIGIN_ICMP {
		proto, names, refusedType, refusedCode = "ICMPv6", icmp6Codes, 1, 4
	}
	name, ok := names[code]
	if !ok {
		name = fmt.Sprintf("code %d", code)
	}
	d := fmt.Sprintf("%s type %d code %d (%s)", proto, typ, code, name)
	if typ == refusedType && code == refusedCode {
		return Result{Refused, d}
	}
	return Result{Rejected, d}
}

var icmpCodes = map[byte]string{
	0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable",
	9: "net prohibited", 10: "host prohibited", 13: "administratively prohibited",
}

var icmp6Codes = map[byte]string{
	0: "no route", 1: "administratively prohibited", 3: "address unreachable", 4: "port unreachable",
	5: "source address failed policy", 6: "reject route",
}

// fromErrno maps the errors a socket reports for unreachables to outcomes.
func fromErrno(err error) (Outcome, bool) {
	switch {
	case errors.Is(err, unix.ECONNREFUSED):
		return Refused, true
	case errors.Is(err, unix.EHOSTUNREACH), errors.Is(err, unix.ENETUNREACH),
		errors.Is(err, unix.EACCES), errors.Is(err, unix.EPROTO):
		return Rejected, true
	}
	return Error, false
}

// greeting reads the SMTP server's first line: on an SMTP port, "connected"
// means the greeting came back, not just the handshake.
func (p *dialer) greeting() Result {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return Result{Error, err.Error()}
	}
	_ = p.f.SetReadDeadline(p.deadline)
	var line []byte
	buf := make([]byte, 512)
	var rerr error
	werr := rc.Read(func(fd uintptr) bool {
		n, err := unix.Read(int(fd), buf)
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
	})
	if werr != nil {
		if errors.Is(werr, os.ErrDeadlineExceeded) {
			return Result{Dropped, fmt.Sprintf("handshake completed but no SMTP greeting within %s", p.backstop)}
		}
		return Result{Error, "read the greeting: " + werr.Error()}
	}
	if rerr != nil {
		if r, failed := p.socketError(); failed {
			return r
		}
		return Result{Error, "read the greeting: " + rerr.Error()}
	}
	_, _ = unix.Write(p.fd, []byte("QUIT\r\n"))
	greet := strings.TrimSpace(string(line))
	if i := strings.IndexByte(greet, '\n'); i >= 0 {
		greet = strings.TrimSpace(greet[:i])
	}
	if !strings.HasPrefix(greet, "220") {
		return Result{Error, fmt.Sprintf("unexpected greeting %q", greet)}
	}
	return Result{Connected, greet}
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
