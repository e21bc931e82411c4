package probe

import "fmt"

// Outcome is what happened to one probe, as SPEC.md names it. One enum, not a
// struct of booleans: every probe ends in exactly one of these.
type Outcome int

const (
	// Error means the probe itself could not run. It is never read as blocked.
	Error Outcome = iota
	// Connected: the TCP handshake completed (on an SMTP port, the 220 greeting
	// was read), or a UDP reply came back.
	Connected
	// Refused: a TCP reset, or an ICMP/ICMPv6 port unreachable.
	Refused
	// Rejected: another ICMP/ICMPv6 unreachable or prohibited answer.
	Rejected
	// Dropped: the packet was discarded and nothing answered.
	Dropped
)

var outcomeNames = [...]string{
	Error:     "error",
	Connected: "connected",
	Refused:   "refused",
	Rejected:  "rejected",
	Dropped:   "dropped",
}

func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) {
		return fmt.Sprintf("outcome(%d)", int(o))
	}
	return outcomeNames[o]
}

// MarshalText makes an Outcome its name in JSON and YAML.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText reads an outcome name.
func (o *Outcome) UnmarshalText(b []byte) error {
	for i, n := range outcomeNames {
		if n == string(b) {
			*o = Outcome(i)
			return nil
		}
	}
	return fmt.Errorf("unknown outcome %q: want connected, refused, rejected, dropped or error", b)
}

// Blocked reports whether the outcome is one of the ways a connection is
// stopped (refused, rejected or dropped). An Error is not blocked.
func (o Outcome) Blocked() bool { return o == Refused || o == Rejected || o == Dropped }
