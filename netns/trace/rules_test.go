package trace

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/egresslab/egresslab/internal/nftlist"
	"github.com/egresslab/egresslab/netns"
)

// sharedFlows must mark exactly the probes whose flow (source, destination,
// protocol) another probe had too, however many flows there are.
func TestSharedFlowsMarksExactlyTheRepeatedFlows(t *testing.T) {
	src := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr("203.0.113.10"), port) }
	dst := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr("192.0.2.80"), port) }
	var flows []netns.Flow
	for p := range uint16(5000) {
		flows = append(flows, netns.Flow{Src: src(32768 + p), Dst: dst(1 + p), Proto: "tcp"})
	}
	flows = append(flows,
		netns.Flow{Src: src(40000), Dst: dst(25), Proto: "tcp"}, // 6: the same as 7
		netns.Flow{Src: src(40000), Dst: dst(25), Proto: "tcp"},
		netns.Flow{Src: src(40000), Dst: dst(25), Proto: "udp"}, // another protocol: not shared
		netns.Flow{Dst: dst(25), Proto: "tcp"},                  // never bound: never shared
		netns.Flow{Dst: dst(25), Proto: "tcp"},
	)
	got := sharedFlows(len(flows), func(i int) (netns.Flow, bool) { return flows[i], false })
	want := make([]bool, len(flows))
	want[5000], want[5001] = true, true
	if !slices.Equal(got, want) {
		var marked []int
		for i, s := range got {
			if s {
				marked = append(marked, i)
			}
		}
		t.Fatalf("shared flows at %v, want [5000 5001]", marked)
	}
}

// The trace names the rule and the kernel's verdict on the packet: a REJECT
// rule's is the drop that follows its answer, and the trace reports that
// drop as it is (the report says what a reader calls it), with no advice.
func TestARejectRuleIsNamedWithTheKernelsVerdict(t *testing.T) {
	for _, c := range []struct{ family, chain, text string }{
		{"ip", "OUTPUT", "-A OUTPUT -p tcp -m tcp --dport 25 -j REJECT --reject-with icmp-port-unreachable"},
		{"inet", "output", "ip daddr 192.0.2.25 tcp dport 25 reject"},
	} {
		tr := &Trace{index: ruleIndex{nftlist.Key(c.family, "filter", c.chain, 7): {position: 4, text: c.text}}}
		got := tr.newRule(traceEvent{where: &traceChain{c.family, "filter", c.chain}, handle: 7, verdict: "drop"}, "request")
		want := Rule{Family: c.family, Table: "filter", Chain: c.chain, Position: 4, Handle: 7, Text: c.text, Verdict: "drop", Packet: "request"}
		if *got != want {
			t.Errorf("%s: the trace named %+v, want %+v", c.text, *got, want)
		}
		if s, w := got.String(), c.family+" filter "+c.chain+" rule 4: "+c.text; s != w {
			t.Errorf("the trace's name for the rule is %q, want %q (no advice)", s, w)
		}
	}
}
