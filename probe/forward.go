package probe

import (
	"context"
	"net/netip"
	"time"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/sentinel"
)

// ForwardLab is a lab as one of its clients probes it: Socket makes the
// client's sockets (in its namespace, as its root), and the forward path's
// evidence says where the host dropped what it forwards.
type ForwardLab interface {
	Lab
	ForwardDropped(f netns.Flow) (sentinel.ForwardSite, error)
	ForwardingOff(v6 bool) (bool, error)
	// LeftAs is the address and port the flow left the host with, after
	// the candidate's nat.
	LeftAs(f netns.Flow) (netip.AddrPort, bool, error)
}

// DialClient probes t from a client behind the lab host: its packets cross
// the host's PREROUTING, FORWARD and POSTROUTING (nat included). A REJECT's
// answer reaches the client's socket; a drop is known from the forward
// path's evidence; only a silence without evidence waits for the backstop.
func DialClient(ctx context.Context, lab ForwardLab, t Target, backstop time.Duration) (Result, netns.Flow) {
	return dialFlow(ctx, lab, lab, netns.Identity{}, t, backstop)
}

// ForwardSite is where the host dropped a client's forwarded packet or its
// answer.
type ForwardSite int

const (
	ForwardNotDropped   ForwardSite = iota
	AtPrerouting                    // it entered the host and never reached FORWARD
	AtForward                       // it entered FORWARD and never passed it
	AtPostrouting                   // it passed FORWARD and never left (POSTROUTING, the nat)
	AnswerAtForward                 // the answer entered FORWARD and never passed it
	AnswerAtPostrouting             // the answer passed FORWARD and never reached the client
)

// readForwardSilence reads why a client's packet got no answer: where the
// host dropped it, and whether the candidate switched forwarding off.
func (p *dialer) readForwardSilence() error {
	p.clearSilence()
	where, err := p.fwd.ForwardDropped(p.flow)
	if err != nil {
		return err
	}
	p.f.ForwardSite = ForwardSite(where)
	if p.f.ForwardSite == AtPrerouting {
		p.f.ForwardingOff, err = p.fwd.ForwardingOff(p.t.Addr.Is6())
	}
	return err
}

// readLeftAs records the address the flow left the host with, if it left.
func (p *dialer) readLeftAs() {
	if !p.flow.Src.IsValid() {
		return
	}
	if src, ok, err := p.fwd.LeftAs(p.flow); err == nil && ok {
		p.f.LeftAs = src
	}
}

// forwardSilence explains a client's silence from the forward path's evidence.
func forwardSilence(f Facts) (Outcome, Evidence) {
	ev := Evidence{Kind: ForwardPath, Packet: Request}
	switch f.ForwardSite {
	case AtPrerouting:
		ev.Where = Prerouting
		if f.ForwardingOff {
			ev.Kind = HostState
			ev.Host = &HostRefusal{What: ForwardingOff}
		}
	case AtForward:
		ev.Where = Forward
	case AtPostrouting:
		ev.Where = Postrouting
	case AnswerAtForward:
		ev.Where, ev.Packet = Forward, Answer
	case AnswerAtPostrouting:
		ev.Where, ev.Packet = Postrouting, Answer
	default:
		return Dropped, Evidence{Kind: Backstop}
	}
	return Dropped, ev
}
