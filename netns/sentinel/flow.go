package sentinel

import (
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns"
)

// flowKey lays the flow out as the sentinel's sets store it: each part of the
// concatenation padded to 4 bytes, ports in network order.
func flowKey(f netns.Flow) []byte {
	return appendFlowKey(make([]byte, 0, flowKeyMax), f)
}

// flowKeyMax is the longest key, an IPv6 flow's.
const flowKeyMax = 2*(16+4) + 4

// appendFlowKey is flowKey appended to k: with room on the stack for a key
// that is only looked up, a probe's questions allocate nothing.
func appendFlowKey(k []byte, f netns.Flow) []byte {
	proto := byte(unix.IPPROTO_TCP)
	if f.Proto == "udp" {
		proto = unix.IPPROTO_UDP
	}
	for _, ap := range []netip.AddrPort{f.Src, f.Dst} {
		if a := ap.Addr().Unmap(); a.Is4() {
			b := a.As4()
			k = append(k, b[:]...)
		} else {
			b := a.As16()
			k = append(k, b[:]...)
		}
		k = append(k, byte(ap.Port()>>8), byte(ap.Port()), 0, 0)
	}
	return append(k, proto, 0, 0, 0)
}

// icmpKey is the flow as an ICMP error's inner header names it: the key
// without the protocol, whose own set it goes in.
func icmpKey(f netns.Flow) []byte {
	k := flowKey(f)
	return k[:len(k)-4]
}

func setOf(f netns.Flow, name string) string {
	if f.IPv6() {
		return name + "6"
	}
	return name + "4"
}

func (s *Sentinel) seen(f netns.Flow, set string) (bool, error) {
	if s == nil {
		return false, errors.New("the drop sentinel is not installed")
	}
	return s.has(setOf(f, set), flowKey(f))
}

// Left reports whether the flow's first packet (a TCP SYN, or a UDP
// datagram) passed every egress rule and left towards its destination.
func (s *Sentinel) Left(f netns.Flow) (bool, error) { return s.seen(f, "out") }

// Answered reports whether the lab's rules sent back a TCP reset or an ICMP
// unreachable for the flow, and let it through: a REJECT's answer.
func (s *Sentinel) Answered(f netns.Flow) (bool, error) {
	if ok, err := s.seen(f, "rst"); err != nil || ok {
		return ok, err
	}
	return s.has(setOf(f, icmpSets[f.Proto]), icmpKey(f))
}

// Egress is Left and Answered at once: whether the flow's first packet left,
// and whether a REJECT's answer to it did.
func (s *Sentinel) Egress(f netns.Flow) (left, answered bool, err error) {
	if s == nil {
		return false, false, errors.New("the drop sentinel is not installed")
	}
	key := flowKey(f) // one for the three questions, which only read it
	icmp := key[: len(key)-4 : len(key)-4]
	a, err := s.query.has(elemReq{setOf(f, "out"), key}, elemReq{setOf(f, "rst"), key},
		elemReq{setOf(f, icmpSets[f.Proto]), icmp})
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
func (s *Sentinel) WhereDropped(f netns.Flow) (ReturnPath, error) {
	for _, step := range []struct {
		entered, passed string
		where           ReturnPath
	}{
		{"req_arr", "req_in", RequestAtInput},
		{"rep_gen", "rep_out", AnswerAtOutput},
		{"rep_arr", "rep_in", AnswerAtInput},
	} {
		entered, err := s.seen(f, step.entered)
		if err != nil {
			return NotDropped, err
		}
		if !entered {
			continue
		}
		passed, err := s.seen(f, step.passed)
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

// NeighbourDiscovery reports whether IPv6 neighbour discovery between the lab
// and the next hop towards dst failed, and where. IPv4's ARP does not pass
// through iptables or ip6tables, so only IPv6 is examined.
func (s *Sentinel) NeighbourDiscovery(dst netip.Addr) (Discovery, error) {
	if s == nil {
		return DiscoveryOK, nil
	}
	hop, _, ok := s.lab.NextHop(dst)
	if !ok || !dst.Is6() {
		return DiscoveryOK, nil
	}
	type step struct {
		entered, passed string // the sets seeing the packet enter and leave the rules
		target          netip.Addr
		failure         Discovery
	}
	steps := []step{{"ns_gen", "ns_out", hop, SolicitationAtOutput}, {"na_arr", "na_in", hop, AdvertisementAtInput}}
	for _, p := range s.lab.UplinkAddrs() {
		if p.Addr().Is6() {
			steps = append(steps, step{"rns_arr", "rns_in", p.Addr(), RouterSolicitationAtInput},
				step{"rna_gen", "rna_out", p.Addr(), AdvertisementAtOutput})
		}
	}
	for _, st := range steps {
		in, err := s.has(st.entered, st.target.AsSlice())
		if err != nil {
			return DiscoveryOK, err
		}
		if !in {
			continue
		}
		out, err := s.has(st.passed, st.target.AsSlice())
		if err != nil {
			return DiscoveryOK, err
		}
		if !out {
			return st.failure, nil
		}
	}
	return DiscoveryOK, nil
}
