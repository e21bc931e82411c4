package probe

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Facts is everything the prober learned about one flow: what the kernel
// answered, what the lab's sentinel saw, and what the socket got back. The
// I/O part gathers them (gather.go); decide reads nothing else. Reports word
// a verdict from its Evidence and these Facts.
type Facts struct {
	Proto string // "tcp" or "udp"
	// SMTP: the port greets, so "connected" means the 220 greeting came.
	SMTP     bool
	Backstop time.Duration

	// Err: the probe itself failed (a socket, a lab's answer, a wait).
	Err error
	// Cancelled: the probe's context ended before a verdict.
	Cancelled error

	// Call and Errno: the lab host's kernel refused connect() or send()
	// itself (Errno 0: it did not).
	Call  string
	Errno unix.Errno
	// Host is the lab host's state that keeps it from sending to the
	// destination, read after a local refusal or a silence (nil: none).
	Host *HostRefusal

	// Departure is what the sentinel saw of the probe's first packet.
	Departure Departure
	// SendEPERM: a UDP send failed at once with EPERM (OUTPUT stopped it).
	SendEPERM bool

	// The socket's answer.
	ICMP       *ICMP // an ICMP or ICMPv6 error from the error queue
	Reset      bool  // a TCP reset (ECONNREFUSED)
	Handshake  bool  // the TCP handshake completed
	Greeting   string
	Greeted    bool // the lab's SMTP server wrote its greeting to this client
	Replied    bool // a UDP reply came back
	ReplyBytes int
	AnsweredBy *Service // the lab's service that saw the probe

	// Silent: the wait for an answer ended without one (with evidence, or at
	// the backstop). The silence's evidence, as last read:
	Silent    bool
	DropSite  DropSite
	Discovery Discovery
	Neighbour netip.Addr // the next hop whose discovery failed
	Gateway   bool       // the next hop is the uplink's gateway
	Uplink    string

	// Forwarded: a client's probe, through the host. Where the forward
	// path's evidence saw its packet die, whether the host's forwarding
	// is off, and the address and port it left the host with (after nat).
	Forwarded     bool
	ForwardSite   ForwardSite
	ForwardingOff bool
	LeftAs        netip.AddrPort
}

// Departure is what the lab's sentinel saw of a probe's first packet.
type Departure int

const (
	Unread            Departure = iota // not asked: the socket answered first
	Departed                           // it left the lab
	NeverLeft                          // it never left, and nothing answered
	NeverLeftAnswered                  // it never left, but a REJECT answered
)

// DropSite is where the sentinel saw a flow's packet enter the candidate's
// rules and never leave them.
type DropSite int

const (
	NotDropped     DropSite = iota
	RequestAtInput          // the probe's packet died in INPUT, on its way into a loopback listener
	AnswerAtOutput          // a loopback listener answered and OUTPUT dropped the answer
	AnswerAtInput           // the answer came back and INPUT dropped it
)

// Discovery is how IPv6 neighbour discovery with the next hop died.
type Discovery int

const (
	DiscoveryOK               Discovery = iota // no evidence that it failed
	SolicitationAtOutput                       // the lab's solicitation (ICMPv6 135) died in OUTPUT
	AdvertisementAtInput                       // the neighbour's advertisement (ICMPv6 136) died in INPUT
	RouterSolicitationAtInput                  // the router's solicitation for the lab's address died in INPUT
	AdvertisementAtOutput                      // the lab's advertisement to the router died in OUTPUT
)

// silenceExplained reports whether the silence's evidence in f explains it
// without the backstop: decide's rules, asked by the waits.
func (f Facts) silenceExplained() bool {
	f.Silent = true
	_, ev := decide(f)
	return ev.Kind != Backstop && ev.Kind != Failure
}
