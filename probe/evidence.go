package probe

// Kind names how a probe's outcome was known. A verdict is a value decided in
// one place (the prober); reports turn it into words.
type Kind string

const (
	// Handshake: the TCP handshake completed (and, on an SMTP port, the
	// greeting was read).
	Handshake Kind = "handshake"
	// Reply: a UDP reply came back.
	Reply Kind = "reply"
	// Egress: the lab's sentinel at the end of egress never saw the packet:
	// the candidate's egress rules dropped it.
	Egress Kind = "egress"
	// ReturnPath: the packet left, and the sentinel saw it (or the answer)
	// enter the candidate's rules and never leave them (Where, Packet).
	ReturnPath Kind = "return-path"
	// ICMPError: an ICMP or ICMPv6 error came back to the socket (ICMP).
	ICMPError Kind = "icmp"
	// Reset: a TCP reset came back.
	Reset Kind = "reset"
	// HostState: the lab host's own kernel refused to send, because of its
	// routes, links or sysctls (Errno, Cause): what a candidate did to the
	// host itself.
	HostState Kind = "host"
	// NeighbourDiscovery: IPv6 neighbour discovery with the next hop
	// (Neighbour) died in the candidate's rules (Where, Packet).
	NeighbourDiscovery Kind = "neighbour-discovery"
	// Backstop: the packet left and nothing answered within the backstop.
	Backstop Kind = "backstop"
	// Failure: the probe itself failed; no evidence of any verdict.
	Failure Kind = "probe-error"
)

// Evidence is what decided a probe's outcome.
type Evidence struct {
	Kind Kind `json:"kind"`
	// Where names the lab's hook whose rules dropped the packet: "output"
	// (OUTPUT through POSTROUTING) or "input" (PREROUTING through INPUT).
	Where string `json:"where,omitempty"`
	// Packet is the packet that died: "request" (the probe's own, on its way
	// into a loopback listener), "answer", "solicitation" or "advertisement".
	Packet string `json:"packet,omitempty"`
	ICMP   *ICMP  `json:"icmp,omitempty"`
	// Errno is what the kernel answered connect() or send() with, when it
	// refused locally.
	Errno string `json:"errno,omitempty"`
	// Cause is the host state behind a local refusal.
	Cause string `json:"cause,omitempty"`
	// Neighbour is the next hop whose discovery failed.
	Neighbour string `json:"neighbour,omitempty"`
	// AnsweredBy is the service that answered (a NAT rule may send a probe
	// somewhere other than it dialled).
	AnsweredBy string `json:"answered_by,omitempty"`
}

// ICMP is an ICMP (Version 4) or ICMPv6 (Version 6) error's type and code.
type ICMP struct {
	Version int   `json:"version"`
	Type    uint8 `json:"type"`
	Code    uint8 `json:"code"`
}
