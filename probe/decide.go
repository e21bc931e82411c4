package probe

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// decide is the verdict: from a flow's facts alone, the outcome and the
// evidence behind it. Pure; every rule has a spec (decide_test.go). The
// rules, strongest fact first:
func decide(f Facts) (Outcome, Evidence) {
	o, ev := decideFacts(f)
	// A cancelled probe that did not connect has no verdict.
	if f.Cancelled != nil && o != Connected {
		return Error, Evidence{Kind: Failure}
	}
	return o, ev
}

func decideFacts(f Facts) (Outcome, Evidence) {
	switch {
	case f.Err != nil:
		return Error, Evidence{Kind: Failure}
	case f.Errno != 0 && f.Forwarded:
		// The client's own kernel: no address or route in that family.
		return Rejected, Evidence{Kind: ClientState, Errno: errnoName(f.Errno)}
	case f.Errno != 0:
		return refusedLocally(f)
	case f.ICMP != nil:
		return icmpError(f)
	case f.Reset:
		return Refused, Evidence{Kind: Reset}
	case f.Departure == NeverLeft:
		ev := Evidence{Kind: Egress, Where: Output}
		if f.SendEPERM {
			ev.Errno = errnoName(unix.EPERM)
		}
		return Dropped, ev
	case f.Handshake && f.SMTP:
		return greeting(f)
	case f.Handshake:
		return Connected, Evidence{Kind: Handshake, AnsweredBy: f.AnsweredBy}
	case f.Replied:
		return Connected, Evidence{Kind: Reply, AnsweredBy: f.AnsweredBy}
	case f.Silent:
		return silence(f)
	}
	return Error, Evidence{Kind: Failure}
}

// refusedLocally: the lab host's own kernel refused connect() or send(); the
// verdict is the kernel's, with the host state behind it as evidence. With
// no such state, nothing explains it: a probe error.
func refusedLocally(f Facts) (Outcome, Evidence) {
	if f.Host == nil {
		return Error, Evidence{Kind: Failure}
	}
	ev := Evidence{Kind: HostState, Errno: errnoName(f.Errno), Host: f.Host}
	if discards(*f.Host, false) {
		return Dropped, ev
	}
	return Rejected, ev
}

// discards is the one rule for the host's state: a blackhole route
// discards without a word (connect() fails with EINVAL, but the class is a
// drop); an interface that is down loses a packet that was sent into it,
// while a connect() it refused at once is a rejection, as every other
// refusal (no route, prohibit, unreachable, IPv6 off) is.
func discards(h HostRefusal, sent bool) bool {
	return h.What == RouteType && h.RouteType == "blackhole" || sent && h.What == LinkDown
}

// icmpError: port unreachable is a refusal (as a TCP reset is); every other
// unreachable or prohibited a rejection; an ICMPv6 address unreachable after
// the candidate's rules broke neighbour discovery is that drop.
func icmpError(f Facts) (Outcome, Evidence) {
	c := *f.ICMP
	if c.Version == 6 && c.Type == 1 && c.Code == addressUnreachable && f.Discovery != DiscoveryOK {
		_, ev := discovery(f)
		ev.ICMP = &c
		return Dropped, ev
	}
	ev := Evidence{Kind: ICMPError, ICMP: &c}
	refusedType, refusedCode := uint8(3), uint8(3)
	if c.Version == 6 {
		refusedType, refusedCode = 1, 4
	}
	if c.Type == refusedType && c.Code == refusedCode {
		return Refused, ev
	}
	return Rejected, ev
}

// addressUnreachable is ICMPv6 destination unreachable's code 3: the lab
// host's own kernel sends it to its sockets when neighbour discovery for
// the next hop ends without an answer (ndisc_error_report, from the
// neighbour entry's timer once its solicitations run out). A host's first
// attempt waits out the retries in silence; a probe that joined a discovery
// already under way gets the report at once: either way the rules broke
// discovery, so the verdict never depends on when the probe came.
const addressUnreachable = 3

// greeting: on an SMTP port, connected means the 220 greeting was read.
func greeting(f Facts) (Outcome, Evidence) {
	switch {
	case f.Greeted && f.Silent:
		// The lab's server wrote it and the client never got it.
		return Dropped, Evidence{Kind: Backstop}
	case strings.HasPrefix(f.Greeting, "220"):
		return Connected, Evidence{Kind: Handshake, AnsweredBy: f.AnsweredBy}
	}
	// Silence from a server that never greeted is the lab's failure (Err);
	// anything but 220 is an unexpected greeting.
	return Error, Evidence{Kind: Failure}
}

// silence explains, from evidence, why a packet got no answer.
func silence(f Facts) (Outcome, Evidence) {
	if f.Forwarded {
		return forwardSilence(f)
	}
	if f.Departure != Departed {
		// A reject was sent but never reached the socket.
		return Error, Evidence{Kind: Failure}
	}
	switch f.DropSite {
	case RequestAtInput:
		return Dropped, Evidence{Kind: ReturnPath, Where: Input, Packet: Request}
	case AnswerAtOutput:
		return Dropped, Evidence{Kind: ReturnPath, Where: Output, Packet: Answer}
	case AnswerAtInput:
		return Dropped, Evidence{Kind: ReturnPath, Where: Input, Packet: Answer}
	}
	if f.Discovery != DiscoveryOK {
		return discovery(f)
	}
	if f.Host != nil && discards(*f.Host, true) {
		return Dropped, Evidence{Kind: HostState, Host: f.Host}
	}
	return Dropped, Evidence{Kind: Backstop}
}

// discovery: the candidate's rules broke IPv6 neighbour discovery.
func discovery(f Facts) (Outcome, Evidence) {
	ev := Evidence{Kind: NeighbourDiscovery, Neighbour: f.Neighbour.String()}
	switch f.Discovery {
	case SolicitationAtOutput:
		ev.Where, ev.Packet = Output, Solicitation
	case AdvertisementAtInput:
		ev.Where, ev.Packet = Input, Advertisement
	case RouterSolicitationAtInput:
		ev.Where, ev.Packet = Input, Solicitation
	case AdvertisementAtOutput:
		ev.Where, ev.Packet = Output, Advertisement
	}
	return Dropped, ev
}

// errnoName is an errno's C name (EHOSTUNREACH), which evidence carries.
func errnoName(e unix.Errno) string {
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return fmt.Sprintf("errno %d", int(e))
}
