package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/sentinel"
	"github.com/egresslab/egresslab/netns/serve"
	"golang.org/x/sys/unix"
)

// Lab is what a probe needs from a lab; scenarios.LabBench has it.
type Lab interface {
	Socket(id netns.Identity, family, sotype int) (fd int, err error)
	Left(f netns.Flow) (bool, error)
	Answered(f netns.Flow) (bool, error)
	Egress(f netns.Flow) (left, answered bool, err error)
	WhereDropped(f netns.Flow) (sentinel.ReturnPath, error)
	NeighbourDiscovery(dst netip.Addr) (sentinel.Discovery, error)
	NextHop(dst netip.Addr) (hop netip.Addr, gateway bool, ok bool)
	HostRefusal(dst netip.Addr) (sentinel.Refusal, bool, error)
	WhoAnswered(proto, client string) (serve.Service, bool)
	AwaitAnswered(proto, client string, deadline time.Time) (serve.Service, bool)
	AwaitGreeted(client string, deadline time.Time) bool
	Release(f netns.Flow, sock io.Closer)
	ForgetMark() uint64
	Recycled(f netns.Flow, mark uint64) bool
	AwaitForgotten(f netns.Flow) error
	AwaitHeldPorts(mark uint64) (bool, error)
	Uplink() string
}

// Target is one address and port to dial.
type Target struct {
	Addr  netip.Addr
	Port  uint16
	Proto string // "tcp" or "udp"
}

func (t Target) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(t.Addr, t.Port), t.Proto)
}

// Result is a probe's verdict, the evidence that decided it, and what it
// saw in words.
type Result struct {
	Outcome  Outcome
	Evidence Evidence
	Detail   string
}

func failure(format string, args ...any) Result {
	return Result{Error, Evidence{Kind: Failure}, fmt.Sprintf(format, args...)}
}

// DefaultBackstop bounds the only wait left: a packet that passed every
// egress rule and left, but got no answer and left no evidence of a drop.
const DefaultBackstop = time.Second

// Dial probes t as id from inside lab, as a real client would: an unbound
// socket whose source port the kernel picks. A drop at the lab's egress is
// known as soon as the send returns (the lab's sentinel never saw the
// packet); only a packet that left and got no answer, with no evidence of
// where it died, waits, for at most backstop.
func Dial(ctx context.Context, lab Lab, id netns.Identity, t Target, backstop time.Duration) Result {
	r, _ := DialFlow(ctx, lab, id, t, backstop)
	return r
}

// DialFlow is Dial that also returns the probe's flow (zero when it never
// bound), which picks its packets out of a trace of the lab.
func DialFlow(ctx context.Context, lab Lab, id netns.Identity, t Target, backstop time.Duration) (Result, netns.Flow) {
	if backstop <= 0 {
		backstop = DefaultBackstop
	}
	for {
		mark := lab.ForgetMark()
		r, flow, again := dialOnce(ctx, lab, id, t, backstop, mark)
		switch again {
		case recycled:
			// The kernel gave this probe a flow whose earlier probe's
			// evidence was not gone yet (see netns.Lab.Recycled): its
			// packets cannot be told apart from that probe's. Once both are
			// gone, dial afresh.
			if err := lab.AwaitForgotten(flow); err != nil {
				return failure("%v", err), flow
			}
		case portsHeld:
			// No source port was free, but sockets the lab still holds for
			// their evidence's removal (a host would have closed them) may
			// have them: once those are closed, dial afresh. With none
			// held, the kernel's answer is the verdict.
			held, err := lab.AwaitHeldPorts(mark)
			if err != nil {
				return failure("%v", err), flow
			}
			if !held {
				return r, flow
			}
		default:
			return r, flow
		}
		if err := ctx.Err(); err != nil {
			return failure("%v", err), flow
		}
	}
}

// dialAgain is why a probe's attempt cannot give its verdict.
type dialAgain int

const (
	final     dialAgain = iota
	recycled            // its flow was not clean
	portsHeld           // no source port was free
)

func dialOnce(ctx context.Context, lab Lab, id netns.Identity, t Target, backstop time.Duration, mark uint64) (Result, netns.Flow, dialAgain) {
	family := unix.AF_INET
	if t.Addr.Is6() {
		family = unix.AF_INET6
	}
	sotype := unix.SOCK_STREAM
	if t.Proto == "udp" {
		sotype = unix.SOCK_DGRAM
	}
	fd, err := lab.Socket(id, family, sotype)
	if err != nil {
		return failure("open a socket as uid %d: %v", id.UID, err), netns.Flow{}, final
	}
	deadline := time.Now().Add(backstop)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	p := &dialer{lab: lab, fd: fd, t: t, deadline: deadline, backstop: backstop, ctx: ctx, mark: mark}
	// A cancelled context ends every wait at once: the socket's deadline
	// moves to the past, and the verdict is the context's error.
	f := p.file()
	stop := context.AfterFunc(ctx, func() { _ = f.SetDeadline(time.Unix(1, 0)) })
	var r Result
	if t.Proto == "udp" {
		r = p.udp()
	} else {
		r = p.tcp()
	}
	stop()
	if err := ctx.Err(); err != nil && r.Outcome != Connected {
		r = failure("%v", err)
	}
	// The flow's evidence goes before the socket does: while the socket is
	// open, the kernel cannot give its flow to another probe. A packet that
	// never left and drew no answer left no evidence: nothing to remove.
	if p.flow.Src.IsValid() && (p.again == recycled || !p.unrecorded) {
		lab.Release(p.flow, p)
	} else {
		p.Close()
	}
	return r, p.flow, p.again
}

type dialer struct {
	lab  Lab
	f    *os.File
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
	backstop time.Duration
	ctx      context.Context
}

// file is the probe's socket as an *os.File, for waits with a deadline.
func (p *dialer) file() *os.File {
	if p.f == nil {
		p.f = os.NewFile(uintptr(p.fd), "probe")
	}
	return p.f
}

// Close closes the probe's socket.
func (p *dialer) Close() error {
	if p.f != nil {
		return p.f.Close()
	}
	return unix.Close(p.fd)
}

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

func (p *dialer) tcp() Result {
	err := unix.Connect(p.fd, p.sockaddr())
	if err != nil && !errors.Is(err, unix.EINPROGRESS) {
		return p.refusedLocally("connect", err)
	}
	if !p.bound() {
		return failure("connect returned without a source port")
	}
	if p.again == recycled {
		return Result{}
	}
	// Inside the lab a handshake or a reset usually completes before
	// connect() returns: then the socket itself is the answer.
	if ready(p.fd) {
		return p.established()
	}
	left, answered, err := p.lab.Egress(p.flow)
	if err != nil {
		return failure("%v", err)
	}
	if !left {
		if !answered {
			p.unrecorded = true
			return Result{Dropped, Evidence{Kind: Egress, Where: "output"}, "SYN dropped by the lab's egress rules (it never left)"}
		}
		// A REJECT answered; its reset or ICMP error may still be on its
		// way to the socket: wait for it (it is a real, imminent signal).
	}
	if r, done := p.await(left, p.waitWritable); done {
		return r
	}
	return p.established()
}

// refusedLocally classifies a connect() or send() that the lab host's own
// kernel refused: the verdict the kernel gives, with the host state behind
// it as evidence. With no such state, nothing explains it: a probe error.
func (p *dialer) refusedLocally(call string, err error) Result {
	// connect() found no free source port: TCP says EADDRNOTAVAIL, UDP EAGAIN.
	if call == "connect" && (errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.EAGAIN)) {
		p.again = portsHeld
	}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return failure("%s: %v", call, err)
	}
	refusal, ok, lerr := p.lab.HostRefusal(p.t.Addr)
	if lerr != nil {
		return failure("%s: %v (and reading the lab's state: %v)", call, err, lerr)
	}
	if !ok {
		return failure("%s: %v", call, err)
	}
	ev := Evidence{Kind: HostState, Errno: errnoName(errno), Cause: refusal.String()}
	detail := fmt.Sprintf("%s: %v: %s", call, err, refusal)
	if refusal.What == sentinel.RouteType && refusal.RouteType == "blackhole" {
		return Result{Dropped, ev, detail}
	}
	return Result{Rejected, ev, detail}
}

// established classifies a TCP socket that became writable or failed.
func (p *dialer) established() Result {
	if r, failed := p.socketError(); failed {
		return r
	}
	if serve.SMTPPort(p.t.Port) {
		return p.greeting()
	}
	ev := Evidence{Kind: Handshake, AnsweredBy: p.answeredBy()}
	if ev.AnsweredBy != "" {
		return Result{Connected, ev, "TCP handshake completed by " + ev.AnsweredBy}
	}
	return Result{Connected, ev, "TCP handshake completed"}
}

// answeredBy names the lab's service that saw this probe, if it was one of
// them. A UDP echo is recorded before it is sent; a TCP handshake completes
// in the kernel before the listener accepts, so that record is awaited.
func (p *dialer) answeredBy() string {
	s, ok := p.lab.WhoAnswered(p.t.Proto, p.flow.Src.String())
	if !ok && p.t.Proto == "tcp" {
		s, ok = p.lab.AwaitAnswered(p.t.Proto, p.flow.Src.String(), p.deadline)
	}
	if ok {
		return s.String()
	}
	return ""
}

// ready reports, without waiting, whether a connecting socket is done.
func ready(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(pfd, 0)
	return err == nil && n > 0 && pfd[0].Revents&(unix.POLLOUT|unix.POLLERR|unix.POLLHUP) != 0
}

func (p *dialer) udp() Result {
	if err := unix.Connect(p.fd, p.sockaddr()); err != nil {
		return p.refusedLocally("connect", err)
	}
	if !p.bound() {
		return failure("connect returned without a source port")
	}
	if p.again == recycled {
		return Result{}
	}
	payload := []byte("egresslab probe\n")
	_, err := unix.Write(p.fd, payload)
	left := false
	switch {
	case errors.Is(err, unix.EPERM):
		// OUTPUT dropped or rejected it, synchronously. A REJECT also sent
		// an ICMP error back, which tells the two apart.
		answered, aerr := p.lab.Answered(p.flow)
		if aerr != nil {
			return failure("%v", aerr)
		}
		if !answered {
			p.unrecorded = true
			return Result{Dropped, Evidence{Kind: Egress, Where: "output", Errno: "EPERM"}, "datagram dropped by the lab's egress rules (send: operation not permitted)"}
		}
	case err != nil:
		if r, failed := p.socketError(); failed {
			return r
		}
		return p.refusedLocally("send", err)
	default:
		if left, err = p.lab.Left(p.flow); err != nil {
			return failure("%v", err)
		}
	}
	buf := make([]byte, 2048)
	var n int
	var rerr error
	rc, err := p.file().SyscallConn()
	if err != nil {
		return failure("%v", err)
	}
	read := func(deadline time.Time) error {
		_ = p.file().SetReadDeadline(deadline)
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
		return failure("receive: %v", rerr)
	}
	ev := Evidence{Kind: Reply, AnsweredBy: p.answeredBy()}
	detail := fmt.Sprintf("reply of %d bytes", n)
	if ev.AnsweredBy != "" {
		detail = "echo from " + ev.AnsweredBy
	}
	return Result{Connected, ev, detail}
}

// noAnswer is the verdict when the wait for an answer ended.
func (p *dialer) noAnswer(left bool, err error) Result {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return failure("wait for an answer: %v", err)
	}
	if left {
		return Result{Dropped, Evidence{Kind: Backstop}, fmt.Sprintf("it left the lab but nothing answered within %s (the return path)", p.backstop)}
	}
	return failure("a reject was sent but did not reach the socket within %s", p.backstop)
}

// serverLag bounds how long the lab's own SMTP server may take to write a
// greeting once the handshake is done, before the probe says the lab itself
// could not keep up (a probe error, never a verdict).
const serverLag = 30 * time.Second

// settle is how long an answer may take inside the lab before the sentinel's
// evidence is read. Lab packets cross one veth or lo within microseconds; the
// settle only covers a packet caught mid-way through the hooks when we look.
const settle = 15 * time.Millisecond

// await waits, with wait, for the answer to a probe. For a packet that left,
// it reads the evidence after a settle: a packet seen entering the lab's
// rules and not leaving them, at two looks a settle apart, was dropped by
// them (on the return path, or in neighbour discovery), and a host state
// that discards packets (an interface set down) explains the silence too;
// neither needs the backstop. Without such evidence the wait goes on to the
// backstop. done reports that r is the verdict.
func (p *dialer) await(left bool, wait func(deadline time.Time) error) (r Result, done bool) {
	if left {
		for look := 0; look < 2; look++ {
			err := wait(minTime(time.Now().Add(settle), p.deadline))
			if err == nil {
				return Result{}, false
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return failure("wait for an answer: %v", err), true
			}
			verdict, found, err := p.silence()
			if err != nil {
				return failure("%v", err), true
			}
			if !found {
				break
			}
			if look == 1 {
				return verdict, true
			}
		}
	}
	if err := wait(p.deadline); err != nil {
		return p.noAnswer(left, err), true
	}
	return Result{}, false
}

// silence explains, from evidence, why a packet that left got no answer.
func (p *dialer) silence() (Result, bool, error) {
	where, err := p.lab.WhereDropped(p.flow)
	if err != nil {
		return Result{}, false, err
	}
	switch where {
	case sentinel.RequestAtInput:
		return Result{Dropped, Evidence{Kind: ReturnPath, Where: "input", Packet: "request"},
			"it left the lab, but the lab's INPUT rules dropped it on its way into the loopback listener"}, true, nil
	case sentinel.AnswerAtOutput:
		return Result{Dropped, Evidence{Kind: ReturnPath, Where: "output", Packet: "answer"},
			"it left the lab, but the listener answered, and the lab's OUTPUT rules dropped the answer"}, true, nil
	case sentinel.AnswerAtInput:
		return Result{Dropped, Evidence{Kind: ReturnPath, Where: "input", Packet: "answer"},
			"it left the lab, but the answer came back, and the lab's INPUT rules dropped it"}, true, nil
	}
	if r, ok, err := p.discovery(); err != nil || ok {
		return r, ok, err
	}
	refusal, ok, err := p.lab.HostRefusal(p.t.Addr)
	if err != nil || !ok || !refusal.Blackhole() {
		return Result{}, false, err
	}
	return Result{Dropped, Evidence{Kind: HostState, Cause: refusal.String()}, "it was sent, but " + refusal.String()}, true, nil
}

// discovery explains a silence by failed IPv6 neighbour discovery.
func (p *dialer) discovery() (Result, bool, error) {
	d, err := p.lab.NeighbourDiscovery(p.t.Addr)
	if err != nil || d == sentinel.DiscoveryOK {
		return Result{}, false, err
	}
	hop, gateway, _ := p.lab.NextHop(p.t.Addr)
	who := "the destination " + hop.String()
	if gateway {
		who = "the gateway " + hop.String()
	}
	ev := Evidence{Kind: NeighbourDiscovery, Neighbour: hop.String()}
	var detail string
	switch d {
	case sentinel.SolicitationAtOutput:
		ev.Where, ev.Packet = "output", "solicitation"
		detail = fmt.Sprintf("neighbour discovery for %s dropped by the lab's OUTPUT rules (ICMPv6 135)", who)
	case sentinel.AdvertisementAtInput:
		ev.Where, ev.Packet = "input", "advertisement"
		detail = fmt.Sprintf("neighbour discovery for %s failed: its advertisement was dropped by the lab's INPUT rules (ICMPv6 136)", who)
	case sentinel.RouterSolicitationAtInput:
		ev.Where, ev.Packet = "input", "solicitation"
		detail = fmt.Sprintf("the router's neighbour solicitation for this host was dropped by the lab's INPUT rules (ICMPv6 135), so answers cannot come back on %s", p.lab.Uplink())
	case sentinel.AdvertisementAtOutput:
		ev.Where, ev.Packet = "output", "advertisement"
		detail = fmt.Sprintf("this host's neighbour advertisement to the router was dropped by the lab's OUTPUT rules (ICMPv6 136), so answers cannot come back on %s", p.lab.Uplink())
	}
	return Result{Dropped, ev, detail}, true, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (p *dialer) waitWritable(deadline time.Time) error {
	rc, err := p.file().SyscallConn()
	if err != nil {
		return err
	}
	_ = p.file().SetWriteDeadline(deadline)
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
		return failure("read socket error: %v", err), true
	}
	if errno == 0 {
		return Result{}, false
	}
	e := unix.Errno(errno)
	if e == unix.ECONNREFUSED {
		return Result{Refused, Evidence{Kind: Reset}, "TCP reset (connection refused)"}, true
	}
	return p.refusedLocally("connect", e), true
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
		if origin != unix.SO_EE_ORIGIN_ICMP && origin != unix.SO_EE_ORIGIN_ICMP6 {
			// A local error (SO_EE_ORIGIN_LOCAL): the host refused, no
			// ICMP came back.
			return p.refusedLocally("connect", unix.Errno(binary.NativeEndian.Uint32(m.Data[0:4]))), true
		}
		if origin == unix.SO_EE_ORIGIN_ICMP6 && typ == 1 && code == addressUnreachable {
			if r, ok := p.discoveryGaveUp(); ok {
				return r, true
			}
		}
		return classifyICMP(origin, typ, code), true
	}
	return Result{}, false
}

// addressUnreachable is ICMPv6 destination unreachable's code 3: the lab
// host's own kernel sends it to its sockets when neighbour discovery for
// the next hop ends without an answer (ndisc_error_report, from the
// neighbour entry's timer once its solicitations run out).
const addressUnreachable = 3

// discoveryGaveUp decides an address unreachable that the candidate's rules
// caused: the sentinel saw them drop this next hop's discovery. A host's
// first attempt waits out the retries (about 3 s) in silence; a probe that
// joined a discovery already under way (a real client's, or an earlier
// probe's, in the same lab) gets the kernel's report at once. Either way the
// rules broke discovery: dropped, with the discovery's evidence, so the
// verdict never depends on when the probe came.
func (p *dialer) discoveryGaveUp() (Result, bool) {
	r, ok, err := p.discovery()
	if err != nil || !ok {
		return Result{}, false
	}
	r.Evidence.ICMP = &ICMP{Version: 6, Type: 1, Code: addressUnreachable}
	r.Detail += "; the kernel then gave up on the neighbour (ICMPv6 address unreachable)"
	return r, true
}

// classifyICMP names an ICMP or ICMPv6 destination unreachable: port
// unreachable is a refusal (as a TCP reset is); everything else a rejection.
func classifyICMP(origin, typ, code byte) Result {
	proto, version, names, refusedType, refusedCode := "ICMP", 4, icmpCodes, byte(3), byte(3)
	if origin != unix.SO_EE_ORIGIN_ICMP {
		proto, version, names, refusedType, refusedCode = "ICMPv6", 6, icmp6Codes, 1, 4
	}
	name, ok := names[code]
	if !ok {
		name = fmt.Sprintf("code %d", code)
	}
	ev := Evidence{Kind: ICMPError, ICMP: &ICMP{Version: version, Type: typ, Code: code}}
	d := fmt.Sprintf("%s type %d code %d (%s)", proto, typ, code, name)
	if typ == refusedType && code == refusedCode {
		return Result{Refused, ev, d}
	}
	return Result{Rejected, ev, d}
}

var icmpCodes = map[byte]string{
	0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable",
	9: "net prohibited", 10: "host prohibited", 13: "administratively prohibited",
}

var icmp6Codes = map[byte]string{
	0: "no route", 1: "administratively prohibited", 3: "address unreachable", 4: "port unreachable",
	5: "source address failed policy", 6: "reject route",
}

// errnoName is an errno's C name (EHOSTUNREACH), which evidence carries.
func errnoName(e unix.Errno) string {
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return fmt.Sprintf("errno %d", int(e))
}

// greeting reads the SMTP server's first line: on an SMTP port, "connected"
// means the greeting came back, not just the handshake.
func (p *dialer) greeting() Result {
	rc, err := p.file().SyscallConn()
	if err != nil {
		return failure("%v", err)
	}
	_ = p.file().SetReadDeadline(p.deadline)
	var line []byte
	buf := make([]byte, 512)
	var rerr error
	read := func() error {
		return rc.Read(func(fd uintptr) bool {
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
	}
	werr := read()
	if errors.Is(werr, os.ErrDeadlineExceeded) {
		// Only a greeting the lab's server wrote and the client never got
		// is a drop; a server that has not written it yet is the lab's own
		// lag (a loaded machine), which is waited out, and never a verdict.
		client := p.flow.Src.String()
		if !p.lab.AwaitGreeted(client, time.Now()) {
			if !p.lab.AwaitGreeted(client, time.Now().Add(serverLag)) {
				return failure("the lab's SMTP server did not greet within %s: the machine is too loaded", serverLag)
			}
			_ = p.file().SetReadDeadline(time.Now().Add(p.backstop))
			werr = read()
		}
	}
	if werr != nil {
		if errors.Is(werr, os.ErrDeadlineExceeded) {
			return Result{Dropped, Evidence{Kind: Backstop}, fmt.Sprintf("handshake completed and the server greeted, but no greeting arrived within %s", p.backstop)}
		}
		return failure("read the greeting: %v", werr)
	}
	if rerr != nil {
		if r, failed := p.socketError(); failed {
			return r
		}
		return failure("read the greeting: %v", rerr)
	}
	_, _ = unix.Write(p.fd, []byte("QUIT\r\n"))
	greet := strings.TrimSpace(string(line))
	if i := strings.IndexByte(greet, '\n'); i >= 0 {
		greet = strings.TrimSpace(greet[:i])
	}
	if !strings.HasPrefix(greet, "220") {
		return failure("unexpected greeting %q", greet)
	}
	return Result{Connected, Evidence{Kind: Handshake, AnsweredBy: p.answeredBy()}, greet}
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
