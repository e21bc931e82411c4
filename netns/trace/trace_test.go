package trace

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables"

	"github.com/egresslab/egresslab/netns/internal/nfttest"
)

// The trace table as nft's own syntax writes it: the reference that the
// netlink-built table (trace_build.go) must equal.

// traceRuleset is the trace table for dsts. Its sets hold ranges of
// concatenations: a sweep of every port is one element per address.
func traceRuleset(dsts []Destination) string {
	var v4, v6 []string
	for _, d := range mergeDestinations(dsts) {
		e := fmt.Sprintf("%s . %d", d.Addr, d.First)
		if d.Last != d.First {
			e += fmt.Sprintf("-%d", d.Last)
		}
		if d.Addr.Is4() {
			v4 = append(v4, e)
		} else {
			v6 = append(v6, e)
		}
	}
	var b strings.Builder
	// A lab probed again gets its trace table anew, not a second copy.
	fmt.Fprintf(&b, "table inet %[1]s {}\ndelete table inet %[1]s\ntable inet %[1]s {\n", traceTable)
	fmt.Fprintf(&b, "\tset dst4 { type ipv4_addr . inet_service; flags interval; %s}\n", elements(v4))
	fmt.Fprintf(&b, "\tset dst6 { type ipv6_addr . inet_service; flags interval; %s}\n", elements(v6))
	const request = "tcp flags & (syn|ack) == syn"
	// The trace starts just after the sentinel's first chains and stops just
	// before its last ones: only the candidate's chains report, which keeps
	// the kernel's reports (and their cost) to what names a rule.
	for _, hook := range []string{"postrouting", "input"} {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority %d; policy accept;\n\t\tmeta nftrace set 0\n\t}\n", hook, hook, math.MaxInt32-1)
	}
	// Each rule that sets nftrace also ends this chain (accept here lets the
	// packet on to the candidate's chains): the kernel then reports one
	// verdict of ours per packet, not three (the rule, the chain's return
	// and its policy), and a sweep's reader has a third less to read.
	for _, hook := range []string{"output", "prerouting"} {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority %d; policy accept;\n", hook, hook, math.MinInt32+1)
		if hook == "output" {
			fmt.Fprintf(&b, "\t\tip daddr %s udp dport %d meta nftrace set 1 drop\n", markerDst.Addr(), markerDst.Port())
		}
		// A probe to an IPv6 neighbour needs neighbour discovery first.
		b.WriteString("\t\ticmpv6 type nd-neighbor-solicit meta nftrace set 1 accept\n")
		b.WriteString("\t\ticmpv6 type nd-neighbor-advert meta nftrace set 1 accept\n")
		for _, fam := range []string{"ip", "ip6"} {
			set := map[string]string{"ip": "@dst4", "ip6": "@dst6"}[fam]
			fmt.Fprintf(&b, "\t\t%s daddr . tcp dport %s %s meta nftrace set 1 accept\n", fam, set, request)
			for _, answer := range []string{"tcp flags & (syn|ack) == syn|ack", "tcp flags & rst == rst"} {
				fmt.Fprintf(&b, "\t\t%s saddr . tcp sport %s %s meta nftrace set 1 accept\n", fam, set, answer)
			}
			fmt.Fprintf(&b, "\t\t%s daddr . udp dport %s meta nftrace set 1 accept\n", fam, set)
			fmt.Fprintf(&b, "\t\t%s saddr . udp sport %s meta nftrace set 1 accept\n", fam, set)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func elements(es []string) string {
	if len(es) == 0 {
		return ""
	}
	return "elements = { " + strings.Join(es, ", ") + " }; "
}

// The trace table built in-process is what nft makes of traceRuleset, for
// destinations that merge (a range holding a single port) and both families.
func TestTraceTableIsWhatNftMakesOfItsRuleset(t *testing.T) {
	dsts := []Destination{
		{Addr: netip.MustParseAddr("192.0.2.80"), First: 1, Last: 1023},
		{Addr: netip.MustParseAddr("192.0.2.80"), First: 25, Last: 25},
		{Addr: netip.MustParseAddr("192.0.2.80"), First: 8080, Last: 8080},
		{Addr: netip.MustParseAddr("192.0.2.81"), First: 8080, Last: 8080},
		{Addr: netip.MustParseAddr("127.0.0.1"), First: 443, Last: 443},
		{Addr: netip.MustParseAddr("2001:db8::80"), First: 1, Last: 65535},
		{Addr: netip.MustParseAddr("::1"), First: 25, Last: 25},
	}
	nfttest.SameAsNft(t, traceTable, traceRuleset(dsts), func(c *nftables.Conn) error { _, err := buildTrace(c, dsts); return err })
}
