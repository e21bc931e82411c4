package sentinel

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/egresslab/egresslab/netns"
)

// A lab that routes for networks (netns.Lab.Forwarding) has the forward
// path's evidence too, in the sentinel's table: chains at the very start and
// end of the forward hook and at the end of postrouting, whose sets record a
// client's flow keyed by conntrack's original tuple (ct original saddr,
// proto-src, daddr, proto-dst): the candidate's MASQUERADE or SNAT rewrites
// the packet, never the tuple it came in with, and an answer's original
// tuple is the client's flow too. With the sentinel's req_arr (the packet
// entered prerouting) and rep_out (the de-natted answer passed the end of
// egress towards the client), each step tells where a packet died:
//
//	fwd_in     a client's TCP SYN / UDP datagram entered FORWARD
//	fwd_pass   ... and passed its end
//	fwd_out    ... and passed the end of postrouting (the nat included): it left
//	frep_in    the answer (SYN-ACK, UDP reply) entered FORWARD
//	frep_pass  ... and passed its end
//
// These chains go in with nft (ct's address keys in an inet table need its
// ct original ip saddr, which the netlink library cannot express), only in
// labs with networks. A packet the candidate marks notrack has no tuple and
// leaves no forward evidence (its silence waits for the backstop).
var forwardSets = []string{"fwd_in", "fwd_pass", "fwd_out", "frep_in", "frep_pass"}

func forwardRuleset() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", sentinelTable)
	for _, name := range forwardSets {
		fmt.Fprintf(&b, "\tset %s4 { type ipv4_addr . inet_service . ipv4_addr . inet_service . inet_proto; flags dynamic,timeout; timeout 10m; size 4194304; }\n", name)
		fmt.Fprintf(&b, "\tset %s6 { type ipv6_addr . inet_service . ipv6_addr . inet_service . inet_proto; flags dynamic,timeout; timeout 10m; size 4194304; }\n", name)
	}
	for _, c := range forwardChainSpec() {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority %d; policy accept;\n", c.name, c.hook, c.priority)
		for _, r := range c.rules {
			fmt.Fprintf(&b, "\t\t%s\n", r)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// forwardChain is one of the forward path's chains, as nft writes it.
type forwardChain struct {
	name, hook string
	priority   int32
	rules      []string
}

// forwardChainSpec is the forward path's chains in order. installLeftAs
// adds one rule per family to fwd_post (leftAsRules).
func forwardChainSpec() []forwardChain {
	key := func(fam string) string {
		return fmt.Sprintf("ct original %s saddr . ct original proto-src . ct original %s daddr . ct original proto-dst . meta l4proto", fam, fam)
	}
	// A client's first packet goes the original direction; its answer the reply's.
	rules := func(set, dir, tcp string) []string {
		var out []string
		for _, f := range []struct{ nfproto, fam, suffix string }{{"ipv4", "ip", "4"}, {"ipv6", "ip6", "6"}} {
			for _, m := range []string{tcp, "meta l4proto udp"} {
				out = append(out, fmt.Sprintf("meta nfproto %s ct direction %s %s add @%s%s { %s }", f.nfproto, dir, m, set, f.suffix, key(f.fam)))
			}
		}
		return out
	}
	const syn, synack = "tcp flags & (syn|ack) == syn", "tcp flags & (syn|ack) == syn|ack"
	return []forwardChain{
		{"fwd_first", "forward", math.MinInt32, append(rules("fwd_in", "original", syn), rules("frep_in", "reply", synack)...)},
		{"fwd_last", "forward", math.MaxInt32, append(rules("fwd_pass", "original", syn), rules("frep_pass", "reply", synack)...)},
		{"fwd_post", "postrouting", math.MaxInt32, rules("fwd_out", "original", syn)},
	}
}

// leftAsRules is how many rules installLeftAs adds to fwd_post.
const leftAsRules = 2

// InstallForward adds the forward path's evidence to the sentinel's table in
// lab, after the sentinel went in. Labs without networks need none.
func InstallForward(ctx context.Context, lab *netns.Lab) error {
	if !lab.Forwarding() {
		return nil
	}
	out, err := lab.RunAs(ctx, netns.Identity{}, []byte(forwardRuleset()), false, "nft", "-f", "-")
	if err != nil {
		return fmt.Errorf("install the forward path's evidence in lab %s: %w: %s", lab.Name(), err, out)
	}
	if err := installLeftAs(lab); err != nil {
		return fmt.Errorf("install the forward path's evidence in lab %s: %w", lab.Name(), err)
	}
	return nil
}

// ForwardSite is where a client's forwarded packet, or its answer, died.
type ForwardSite int

const (
	ForwardNotDropped   ForwardSite = iota // no evidence of a drop (yet)
	AtPrerouting                           // it entered the host and never reached FORWARD (PREROUTING, or the host's routing)
	AtForward                              // it entered FORWARD and never passed it
	AtPostrouting                          // it passed FORWARD and never left (POSTROUTING, its nat)
	AnswerAtForward                        // the answer entered FORWARD and never passed it
	AnswerAtPostrouting                    // the answer passed FORWARD and never reached the client's network
)

// ForwardLeft reports whether a client's first packet left the host by the
// uplink (after the nat).
func (s *Sentinel) ForwardLeft(f netns.Flow) (bool, error) { return s.seen(f, "fwd_out") }

// ForwardDropped tells, from the forward path's evidence, where the host
// dropped a client's flow: a packet seen entering a stage and never leaving it.
func (s *Sentinel) ForwardDropped(f netns.Flow) (ForwardSite, error) {
	if s == nil {
		return ForwardNotDropped, fmt.Errorf("the drop sentinel is not installed")
	}
	steps := []struct {
		entered, passed string
		where           ForwardSite
	}{
		{"req_arr", "fwd_in", AtPrerouting},
		{"fwd_in", "fwd_pass", AtForward},
		{"fwd_pass", "fwd_out", AtPostrouting},
		{"frep_in", "frep_pass", AnswerAtForward},
		{"frep_pass", "rep_out", AnswerAtPostrouting},
	}
	var reqs []elemReq
	for _, st := range steps {
		reqs = append(reqs, elemReq{setOf(f, st.entered), flowKey(f)}, elemReq{setOf(f, st.passed), flowKey(f)})
	}
	seen, err := s.query.has(reqs...)
	if err != nil {
		return ForwardNotDropped, err
	}
	// The latest stage a packet entered and did not pass decides: an answer's
	// drop is after its request's passage.
	where := ForwardNotDropped
	for i, st := range steps {
		if seen[2*i] && !seen[2*i+1] {
			where = st.where
		}
	}
	return where, nil
}

// ForwardingOff reports whether the host's forwarding of dst's family is
// switched off (by the candidate's sysctl): the host then drops what its
// clients send beyond it.
func (s *Sentinel) ForwardingOff(v6 bool) (bool, error) {
	path := "net/ipv4/ip_forward"
	if v6 {
		path = "net/ipv6/conf/all/forwarding"
	}
	v, err := s.sysctl(path)
	return v == "0", err
}
