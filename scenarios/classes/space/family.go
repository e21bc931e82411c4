package space

import "math"

// Family is an address family a class belongs to.
type Family uint8

const (
	IPv4 Family = 1 << iota
	IPv6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	case IPv4 | IPv6:
		return "ipv4+ipv6"
	}
	return "none"
}

// Proto is a transport protocol the lab probes.
type Proto uint8

const (
	TCP Proto = 1 << iota
	UDP
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case TCP | UDP:
		return "tcp+udp"
	}
	return "none"
}

// The whole of each dimension. uid and gid stop below 2^32-1, which the
// kernel keeps for "no id".
const (
	MaxID   = math.MaxUint32 - 1
	MinPort = 1
	MaxPort = math.MaxUint16
)

// WholeID is every uid (or gid).
func WholeID() Span { return Span{NumPoint(0), NumPoint(MaxID)} }

// WholePort is every port a probe can be sent to.
func WholePort() Span { return Span{NumPoint(MinPort), NumPoint(MaxPort)} }

// WholeAddr is every address of family f.
func WholeAddr(f Family) Span {
	if f == IPv4 {
		return Span{NumPoint(0), NumPoint(math.MaxUint32)}
	}
	return Span{Point{}, Point{math.MaxUint64, math.MaxUint64}}
}
