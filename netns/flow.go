package netns

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Flow is one probe's connection as the kernel sees it: the source address
// and port the kernel picked, the destination, and the protocol.
type Flow struct {
	Src, Dst netip.AddrPort
	Proto    string // "tcp" or "udp"
}

func (f Flow) String() string { return fmt.Sprintf("%s %s -> %s", f.Proto, f.Src, f.Dst) }

// IPv6 reports whether the flow goes to an IPv6 destination (not an
// IPv4-mapped one).
func (f Flow) IPv6() bool { return f.Dst.Addr().Is6() && !f.Dst.Addr().Is4In6() }

// key lays the flow out as the sentinel's sets store it: each part of the
// concatenation padded to 4 bytes, ports in network order.
func (f Flow) key() []byte {
	proto := byte(unix.IPPROTO_TCP)
	if f.Proto == "udp" {
		proto = unix.IPPROTO_UDP
	}
	var k []byte
	for _, ap := range []netip.AddrPort{f.Src, f.Dst} {
		k = append(k, ap.Addr().Unmap().AsSlice()...)
		k = append(k, byte(ap.Port()>>8), byte(ap.Port()), 0, 0)
	}
	return append(k, proto, 0, 0, 0)
}

// icmpKey is the flow as an ICMP error's inner header names it: the key
// without the protocol, whose own set it goes in.
func (f Flow) icmpKey() []byte {
	k := f.key()
	return k[:len(k)-4]
}

func (f Flow) set(name string) string {
	if f.IPv6() {
		return name + "6"
	}
	return name + "4"
}

func (l *Lab) seen(f Flow, set string) (bool, error) {
	if l.sentinel == nil {
		return false, errors.New("the drop sentinel is not installed")
	}
	return l.sentinel.has(f.set(set), f.key())
}

// Left reports whether the flow's first packet (a TCP SYN, or a UDP
// datagram) passed every egress rule and left towards its destination.
func (l *Lab) Left(f Flow) (bool, error) { return l.seen(f, "out") }

// Answered reports whether the lab's rules sent back a TCP reset or an ICMP
// unreachable for the flow, and let it through: a REJECT's answer.
func (l *Lab) Answered(f Flow) (bool, error) {
	if ok, err := l.seen(f, "rst"); err != nil || ok {
		return ok, err
	}
	return l.sentinel.has(f.set(icmpSets[f.Proto]), f.icmpKey())
}

// Egress is Left and Answered at once: whether the flow's first packet left,
// and whether a REJECT's answer to it did.
func (l *Lab) Egress(f Flow) (left, answered bool, err error) {
	if l.sentinel == nil {
		return false, false, errors.New("the drop sentinel is not installed")
	}
	a, err := l.sentinel.query.has(elemReq{f.set("out"), f.key()}, elemReq{f.set("rst"), f.key()},
		elemReq{f.set(icmpSets[f.Proto]), f.icmpKey()})
	if err != nil {
		return false, false, err
	}
	return a[0], a[1] || a[2], nil
}

// ReturnPath is where, on the way to a listener and back, the lab's rules
// dropped a flow whose first packet left.
type ReturnPath int

const (
	NotDropped     ReturnPath = iota // no evidence of a drop (yet)
	RequestAtInput                   // the probe's packet died in INPUT, on its way into a loopback listener
	AnswerAtOutput                   // a loopback listener answered and OUTPUT dropped the answer
	AnswerAtInput                    // the answer came back and INPUT dropped it
)

// WhereDropped tells, from the sentinel's evidence, where the lab's rules
// dropped the traffic of a flow whose first packet left: a packet seen
// entering the candidate's rules and never leaving them.
func (l *Lab) WhereDropped(f Flow) (ReturnPath, error) {
	for _, step := range []struct {
		entered, passed string
		where           ReturnPath
	}{
		{"req_arr", "req_in", RequestAtInput},
		{"rep_gen", "rep_out", AnswerAtOutput},
		{"rep_arr", "rep_in", AnswerAtInput},
	} {
		entered, err := l.seen(f, step.entered)
		if err != nil {
			return NotDropped, err
		}
		if !entered {
			continue
		}
		passed, err := l.seen(f, step.passed)
		if err != nil {
			return NotDropped, err
		}
		if !passed {
			return step.where, nil
		}
	}
	return NotDropped, nil
}

// Discovery is what went wrong with IPv6 neighbour discovery on the uplink,
// from the sentinel's evidence.
type Discovery int

const (
	DiscoveryOK               Discovery = iota // no evidence that discovery failed
	SolicitationAtOutput                       // the lab's neighbour solicitation (ICMPv6 135) died in OUTPUT
	AdvertisementAtInput                       // the neighbour's advertisement (ICMPv6 136) died in INPUT
	RouterSolicitationAtInput                  // the router's solicitation for the lab's address died in INPUT
	AdvertisementAtOutput                      // the lab's advertisement to the router died in OUTPUT
)

// NextHop is the neighbour a packet to dst goes to first: the uplink's
// gateway, or dst itself when the uplink has none. ok is false for loopback.
func (l *Lab) NextHop(dst netip.Addr) (hop netip.Addr, gateway bool, ok bool) {
	if dst.IsLoopback() {
		return netip.Addr{}, false, false
	}
	for _, g := range l.gateways {
		if g.Is6() == dst.Is6() {
			return g, true, true
		}
	}
	return dst, false, true
}

// NeighbourDiscovery reports whether IPv6 neighbour discovery between the lab
// and the next hop towards dst failed, and where. IPv4's ARP does not pass
// through iptables or ip6tables, so only IPv6 is examined.
func (l *Lab) NeighbourDiscovery(dst netip.Addr) (Discovery, error) {
	hop, _, ok := l.NextHop(dst)
	if !ok || !dst.Is6() || l.sentinel == nil {
		return DiscoveryOK, nil
	}
	type step struct {
		entered, passed string // the sets seeing the packet enter and leave the rules
		target          netip.Addr
		failure         Discovery
	}
	steps := []step{{"ns_gen", "ns_out", hop, SolicitationAtOutput}, {"na_arr", "na_in", hop, AdvertisementAtInput}}
	for _, p := range l.cfg.UplinkAddrs {
		if p.Addr().Is6() {
			steps = append(steps, step{"rns_arr", "rns_in", p.Addr(), RouterSolicitationAtInput},
				step{"rna_gen", "rna_out", p.Addr(), AdvertisementAtOutput})
		}
	}
	for _, s := range steps {
		in, err := l.sentinel.has(s.entered, s.target.AsSlice())
		if err != nil {
			return DiscoveryOK, err
		}
		if !in {
			continue
		}
		out, err := l.sentinel.has(s.passed, s.target.AsSlice())
		if err != nil {
			return DiscoveryOK, err
		}
		if !out {
			return s.failure, nil
		}
	}
	return DiscoveryOK, nil
}
