package probe

import (
	"fmt"
	"net/netip"
)

// Kind names how a probe's outcome was known. A verdict is a value decided in
// one place (decide); reports turn it into words. It is one byte, as are Hook
// and Packet: a sweep keeps the evidence of 131,070 probes.
type Kind uint8

const (
	noKind Kind = iota // the zero Evidence: no probe ran
	// Handshake: the TCP handshake completed (and, on an SMTP port, the
	// greeting was read).
	Handshake
	// Reply: a UDP reply came back.
	Reply
	// Egress: the lab's sentinel at the end of egress never saw the packet:
	// the candidate's egress rules dropped it.
	Egress
	// ReturnPath: the packet left, and the sentinel saw it (or the answer)
	// enter the candidate's rules and never leave them (Where, Packet).
	ReturnPath
	// ICMPError: an ICMP or ICMPv6 error came back to the socket (ICMP).
	ICMPError
	// Reset: a TCP reset came back.
	Reset
	// HostState: the lab host's own kernel refused to send, because of its
	// routes, links or sysctls (Errno, Host): what a candidate did to the
	// host itself.
	HostState
	// NeighbourDiscovery: IPv6 neighbour discovery with the next hop
	// (Neighbour) died in the candidate's rules (Where, Packet).
	NeighbourDiscovery
	// ForwardPath: a client's packet (Packet request) or its answer
	// crossed the host and died in its rules at Where (prerouting,
	// forward, postrouting: the nat), by the forward path's evidence.
	ForwardPath
	// ClientState: the client's own kernel refused to send (Errno): it has
	// no address or route in the destination's family.
	ClientState
	// Backstop: the packet left and nothing answered within the backstop.
	Backstop
	// Failure: the probe itself failed; no evidence of any verdict.
	Failure
)

var kindWords = [...]string{noKind: "", Handshake: "handshake", Reply: "reply", Egress: "egress",
	ReturnPath: "return-path", ICMPError: "icmp", Reset: "reset", HostState: "host",
	NeighbourDiscovery: "neighbour-discovery", ForwardPath: "forward-path", ClientState: "client",
	Backstop: "backstop", Failure: "probe-error"}

func (k Kind) String() string { return word(kindWords[:], k) }

// MarshalText makes a Kind its word in JSON.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a Kind's word.
func (k *Kind) UnmarshalText(b []byte) error { return parseWord(kindWords[:], k, b, "evidence kind") }

// Hook names the lab's hooks whose rules dropped a packet.
type Hook uint8

const (
	noHook Hook = iota
	Output      // OUTPUT through POSTROUTING
	Input       // PREROUTING through INPUT
	// A forwarded packet's hooks on the host.
	Prerouting
	Forward
	Postrouting
)

var hookWords = [...]string{noHook: "", Output: "output", Input: "input", Prerouting: "prerouting",
	Forward: "forward", Postrouting: "postrouting"}

func (h Hook) String() string { return word(hookWords[:], h) }

// MarshalText makes a Hook its word in JSON.
func (h Hook) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads a Hook's word.
func (h *Hook) UnmarshalText(b []byte) error { return parseWord(hookWords[:], h, b, "hook") }

// Packet names the packet that died.
type Packet uint8

const (
	noPacket Packet = iota
	Request         // the probe's own, on its way into a loopback listener
	Answer
	Solicitation
	Advertisement
)

var packetWords = [...]string{noPacket: "", Request: "request", Answer: "answer",
	Solicitation: "solicitation", Advertisement: "advertisement"}

func (p Packet) String() string { return word(packetWords[:], p) }

// MarshalText makes a Packet its word in JSON.
func (p Packet) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads a Packet's word.
func (p *Packet) UnmarshalText(b []byte) error { return parseWord(packetWords[:], p, b, "packet") }

// word is v's word in words.
func word[T ~uint8](words []string, v T) string {
	if int(v) < len(words) {
		return words[v]
	}
	return fmt.Sprintf("%d", v)
}

// parseWord sets *v to the value whose word is b.
func parseWord[T ~uint8](words []string, v *T, b []byte, what string) error {
	for i, w := range words {
		if w == string(b) {
			*v = T(i)
			return nil
		}
	}
	return fmt.Errorf("unknown %s %q", what, b)
}

// Evidence is what decided a probe's outcome: typed values only; the report
// words them (the JSON report's "cause" and "answered_by" are its words for
// Host and AnsweredBy).
type Evidence struct {
	Kind   Kind   `json:"kind"`
	Where  Hook   `json:"where,omitempty"`
	Packet Packet `json:"packet,omitempty"`
	ICMP   *ICMP  `json:"icmp,omitempty"`
	// Errno is what the kernel answered connect() or send() with, when it
	// refused locally: its C name (EHOSTUNREACH).
	Errno string `json:"errno,omitempty"`
	// Host is the lab host's state behind a local refusal or a silence.
	Host *HostRefusal `json:"-"`
	// Neighbour is the next hop whose discovery failed.
	Neighbour string `json:"neighbour,omitempty"`
	// AnsweredBy is the service that answered (a NAT rule may send a probe
	// somewhere other than it dialled).
	AnsweredBy *Service `json:"-"`
}

// ICMP is an ICMP (Version 4) or ICMPv6 (Version 6) error's type and code.
type ICMP struct {
	Version int   `json:"version"`
	Type    uint8 `json:"type"`
	Code    uint8 `json:"code"`
}

// HostRefusal is the lab host's own state that keeps it from reaching a
// destination: what a candidate script did to the host itself.
type HostRefusal struct {
	What      RefusalKind
	Link      string       // the interface, for LinkDown; the sysctl's scope for IPv6Off
	Route     netip.Prefix // for RouteType
	RouteType string       // the kernel's name: "unreachable", "prohibit", "blackhole" or "throw"
}

// RefusalKind is which part of the host's state refused.
type RefusalKind int

const (
	IPv6Off       RefusalKind = iota + 1 // net.ipv6.conf.*.disable_ipv6=1
	LinkDown                             // the interface the destination is reached through is down
	RouteType                            // a route of a type that refuses
	NoRoute                              // no route at all
	ForwardingOff                        // the host does not forward (net.ipv4.ip_forward=0, net.ipv6.conf.all.forwarding=0)
)

// Service is one of the lab's services: the one that answered a probe.
type Service struct {
	Host  string // the host name it answers as
	Addr  netip.Addr
	Port  uint16
	Proto string
}
