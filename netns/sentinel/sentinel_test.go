package sentinel

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/egresslab/egresslab/netns/internal/nfttest"
)

// The sentinel as nft's own syntax writes it: the reference that the
// netlink-built sentinel (sentinel_build.go) must equal, rule for rule.

// Flow keys, as nft lays out a concatenation: every part padded to 4 bytes.
// IPv4: saddr . sport . daddr . dport . proto; IPv6 the same with 16-byte
// addresses. An answer's key is the same flow read backwards.
const (
	key4    = "ip saddr . th sport . ip daddr . th dport . meta l4proto"
	key4Rev = "ip daddr . th dport . ip saddr . th sport . meta l4proto"
	key6    = "ip6 saddr . th sport . ip6 daddr . th dport . meta l4proto"
	key6Rev = "ip6 daddr . th dport . ip6 saddr . th sport . meta l4proto"
	// the flow inside an ICMP / ICMPv6 error: 8 bytes of ICMP header, then
	// the offending packet's IP header and ports, as raw fields (its
	// protocol picks the set; probes send no IP options)
	icmpKey4   = "@th,160,32 . @th,224,16 . @th,192,32 . @th,240,16"
	icmpKey6   = "@th,128,128 . @th,384,16 . @th,256,128 . @th,400,16"
	icmpProto4 = "@th,136,8"
	icmpProto6 = "@th,112,8"
	ndTarget   = "@th,64,128"
)

// flowTimeout lets elements nobody removes (answers that belong to no probe,
// a probe abandoned mid-way) age out; probes remove their own at once.
const flowTimeout = "10m"

func sentinelRuleset() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", sentinelTable)
	set := func(name, k4, k6 string) {
		fmt.Fprintf(&b, "\tset %s4 { typeof %s; flags dynamic,timeout; timeout %s; size 4194304; }\n", name, k4, flowTimeout)
		fmt.Fprintf(&b, "\tset %s6 { typeof %s; flags dynamic,timeout; timeout %s; size 4194304; }\n", name, k6, flowTimeout)
	}
	for _, name := range flowSets {
		set(name, key4, key6)
	}
	for _, name := range []string{icmpSets["tcp"], icmpSets["udp"]} {
		set(name, icmpKey4, icmpKey6)
	}
	for _, name := range ndSets {
		fmt.Fprintf(&b, "\tset %s { typeof %s; flags dynamic; size 65536; }\n", name, ndTarget)
	}
	// A probe's first packet: a TCP SYN without ACK, or any UDP datagram
	// (answers are UDP too; their elements belong to no probe and age out).
	const v4, v6 = "meta nfproto ipv4", "meta nfproto ipv6"
	first := []string{"tcp flags & (syn|ack) == syn", "meta l4proto udp"}
	answer := []string{"tcp flags & (syn|ack) == syn|ack", "meta l4proto udp"}
	rules := func(chain string, hook string, prio int64, body []string) {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority %d; policy accept;\n", chain, hook, prio)
		for _, r := range body {
			fmt.Fprintf(&b, "\t\t%s\n", r)
		}
		b.WriteString("\t}\n")
	}
	both := func(set string, match []string, fwd bool) []string {
		var out []string
		for _, m := range match {
			k4, k6 := key4, key6
			if !fwd {
				k4, k6 = key4Rev, key6Rev
			}
			out = append(out, fmt.Sprintf("%s %s add @%s4 { %s }", v4, m, set, k4), fmt.Sprintf("%s %s add @%s6 { %s }", v6, m, set, k6))
		}
		return out
	}
	nd := func(typ, set string) string {
		return fmt.Sprintf("icmpv6 type %s add @%s { %s }", typ, set, ndTarget)
	}
	var post []string
	post = append(post, both("out", first, true)...)
	post = append(post,
		v4+" tcp flags & rst == rst add @rst4 { "+key4Rev+" }",
		v6+" tcp flags & rst == rst add @rst6 { "+key6Rev+" }",
		"icmp type destination-unreachable "+icmpProto4+" 6 add @icmp_tcp4 { "+icmpKey4+" }",
		"icmp type destination-unreachable "+icmpProto4+" 17 add @icmp_udp4 { "+icmpKey4+" }",
		"icmpv6 type destination-unreachable "+icmpProto6+" 6 add @icmp_tcp6 { "+icmpKey6+" }",
		"icmpv6 type destination-unreachable "+icmpProto6+" 17 add @icmp_udp6 { "+icmpKey6+" }")
	post = append(post, both("rep_out", answer, false)...)
	post = append(post, nd("nd-neighbor-solicit", "ns_out"), nd("nd-neighbor-advert", "rna_out"))
	rules("post", "postrouting", math.MaxInt32, post)

	firstOut := append(both("rep_gen", answer, false), nd("nd-neighbor-solicit", "ns_gen"), nd("nd-neighbor-advert", "rna_gen"))
	rules("first_out", "output", math.MinInt32, firstOut)

	firstIn := append(both("req_arr", first, true), both("rep_arr", answer, false)...)
	firstIn = append(firstIn, nd("nd-neighbor-solicit", "rns_arr"), nd("nd-neighbor-advert", "na_arr"))
	rules("first_in", "prerouting", math.MinInt32, firstIn)

	lastIn := append(both("req_in", first, true), both("rep_in", answer, false)...)
	lastIn = append(lastIn, nd("nd-neighbor-solicit", "rns_in"), nd("nd-neighbor-advert", "na_in"))
	rules("last_in", "input", math.MaxInt32, lastIn)
	b.WriteString("}\n")
	return b.String()
}

// The sentinel built in-process is what nft makes of sentinelRuleset: the
// same chains, the same byte code in every rule, the same sets (flags,
// timeout, size, key length), as the kernel lists them back. Only the sets'
// key types may differ where nft reads raw fields (it calls them integer).
func TestSentinelIsWhatNftMakesOfItsRuleset(t *testing.T) {
	nfttest.SameAsNft(t, sentinelTable, sentinelRuleset(), buildSentinel)
}
