package probe

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sync"
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
	// WhoAnswered, AwaitAnswered and AwaitGreeted name a connection by both
	// its ends as the lab's service saw them ("ip:port"): after the
	// candidate's nat, which AfterNAT tells.
	WhoAnswered(proto, client, server string) (serve.Service, bool)
	AwaitAnswered(proto, client, server string, deadline time.Time) (serve.Service, bool)
	AwaitGreeted(client, server string, deadline time.Time) bool
	AfterNAT(f netns.Flow) (netns.Flow, error)
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

// Result is a probe's verdict, the evidence that decided it, and the facts
// it was decided from (reports word it from these).
type Result struct {
	Outcome  Outcome
	Evidence Evidence
	Facts    Facts
}

// verdict decides f.
func verdict(f Facts) Result {
	o, ev := decide(f)
	return Result{o, ev, f}
}

// failed is the result of a probe that could not run.
func failed(err error) Result { return verdict(Facts{Err: err}) }

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
	return dialFlow(ctx, lab, nil, id, t, backstop)
}

// dialFlow is DialFlow; fwd is lab as a client's (DialClient), or nil.
func dialFlow(ctx context.Context, lab Lab, fwd ForwardLab, id netns.Identity, t Target, backstop time.Duration) (Result, netns.Flow) {
	if backstop <= 0 {
		backstop = DefaultBackstop
	}
	for {
		mark := lab.ForgetMark()
		r, flow, again := dialOnce(ctx, lab, fwd, id, t, backstop, mark)
		switch again {
		case recycled:
			// The kernel gave this probe a flow whose earlier probe's
			// evidence was not gone yet (see netns.Lab.Recycled): its
			// packets cannot be told apart from that probe's. Once both are
			// gone, dial afresh.
			if err := lab.AwaitForgotten(flow); err != nil {
				return failed(err), flow
			}
		case portsHeld:
			// No source port was free, but sockets the lab still holds for
			// their evidence's removal (a host would have closed them) may
			// have them: once those are closed, dial afresh. With none
			// held, the kernel's answer is the verdict.
			held, err := lab.AwaitHeldPorts(mark)
			if err != nil {
				return failed(err), flow
			}
			if !held {
				return r, flow
			}
		default:
			return r, flow
		}
		if err := ctx.Err(); err != nil {
			return failed(err), flow
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

func dialOnce(ctx context.Context, lab Lab, fwd ForwardLab, id netns.Identity, t Target, backstop time.Duration, mark uint64) (Result, netns.Flow, dialAgain) {
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
		return failed(fmt.Errorf("open a socket as uid %d: %w", id.UID, err)), netns.Flow{}, final
	}
	deadline := time.Now().Add(backstop)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	// A sweep dials hundreds of thousands of probes: their dialers are
	// recycled rather than left to the collector.
	p := dialers.Get().(*dialer)
	defer func() { *p = dialer{}; dialers.Put(p) }()
	*p = dialer{lab: lab, fwd: fwd, fd: fd, t: t, deadline: deadline, ctx: ctx, mark: mark,
		f: Facts{Proto: t.Proto, SMTP: t.Proto == "tcp" && serve.SMTPPort(t.Port), Backstop: backstop, Forwarded: fwd != nil}}
	if t.Proto == "udp" {
		p.udp()
	} else {
		p.tcp()
	}
	if p.stopCancel != nil {
		p.stopCancel()
	}
	if fwd != nil && !p.f.LeftAs.IsValid() {
		p.readLeftAs()
	}
	p.f.Cancelled = ctx.Err()
	// The flow's evidence goes before the socket does: while the socket is
	// open, the kernel cannot give its flow to another probe. A packet that
	// never left and drew no answer left no evidence: nothing to remove.
	if p.flow.Src.IsValid() && (p.again == recycled || !p.unrecorded) {
		lab.Release(p.flow, p.socket())
	} else {
		p.Close()
	}
	return verdict(p.f), p.flow, p.again
}

var dialers = sync.Pool{New: func() any { return new(dialer) }}
