package lint

import (
	"fmt"
	"slices"
	"strings"
)

// baseChain is a chain packets enter from a hook, in either language, with
// what it does to the packets no rule accepted.
type baseChain struct {
	File       string
	Name       string   // for messages: "OUTPUT" or "inet filter output"
	Hook       string   // input, output, forward
	Families   []string // ipv4, ipv6 or both (inet)
	Blocks     bool     // a DROP policy, or a final rule that drops or rejects everything
	BlockLine  int
	BlockText  string
	NDDropLine int // the first rule (or the policy) that takes ND before an accept let it through
	NDDropText string
	IPTables   bool
	TableChain string // iptables: "filter/OUTPUT"
}

func ipBaseChains(sets []*ipRuleset) []baseChain {
	var out []baseChain
	for _, rs := range sets {
		for _, c := range rs.Chains {
			hook := strings.ToLower(c.Name)
			if c.Table != "filter" || !slices.Contains([]string{"input", "output", "forward"}, hook) {
				continue
			}
			b := baseChain{File: rs.File, Name: c.Name, Hook: hook, Families: []string{familyName4(rs.IPv6)}, IPTables: true}
			rules := c.Rules
			switch {
			case c.Policy == "DROP":
				b.Blocks, b.BlockLine, b.BlockText = true, c.Line, ":"+c.Name+" DROP"
			case len(rules) > 0 && rules[len(rules)-1].Unconditional() && isBlocking(rules[len(rules)-1].Target()):
				last := rules[len(rules)-1]
				b.Blocks, b.BlockLine, b.BlockText = true, last.Line, last.Text()
				rules = rules[:len(rules)-1]
			}
			var nd ndWalk
			for _, r := range c.Rules {
				s, a := r.ndCoverage()
				nd.rule(r.Target() == "ACCEPT", isBlocking(r.Target()), s, a, r.Line, r.Text())
			}
			b.NDDropLine, b.NDDropText = nd.end(c.Policy == "DROP", c.Line, ":"+c.Name+" DROP")
			out = append(out, b)
		}
	}
	return out
}

// ndWalk follows a chain's rules in order to the first one that drops
// neighbour solicitations or advertisements that no earlier rule accepted.
type ndWalk struct {
	solicit, advert bool // accepted so far
	line            int
	text            string
}

func (w *ndWalk) rule(accepts, blocks, solicit, advert bool, line int, text string) {
	switch {
	case accepts:
		w.solicit, w.advert = w.solicit || solicit, w.advert || advert
	case blocks && w.line == 0 && (solicit && !w.solicit || advert && !w.advert):
		w.line, w.text = line, text
	}
}

func (w *ndWalk) end(policyDrops bool, line int, text string) (int, string) {
	if w.line == 0 && policyDrops && !(w.solicit && w.advert) {
		return line, text
	}
	return w.line, w.text
}

func nftBaseChains(sets []*nftRuleset) []baseChain {
	fams := map[string][]string{"ip": {"ipv4"}, "ip6": {"ipv6"}, "inet": {"ipv4", "ipv6"}}
	var out []baseChain
	for _, rs := range sets {
		for _, c := range rs.Chains {
			if fams[c.Family] == nil || !slices.Contains([]string{"input", "output", "forward"}, c.Hook) {
				continue
			}
			b := baseChain{File: rs.File, Name: c.Family + " " + c.Table + " " + c.Name, Hook: c.Hook, Families: fams[c.Family]}
			rules := c.Rules
			switch {
			case c.Policy == "drop":
				b.Blocks, b.BlockLine, b.BlockText = true, c.Line, "chain "+c.Name+" { policy drop; }"
			case len(rules) > 0 && rules[len(rules)-1].Unconditional() && isNFTBlocking(rules[len(rules)-1].Verdict()):
				last := rules[len(rules)-1]
				b.Blocks, b.BlockLine, b.BlockText = true, last.Line, last.Text
				rules = rules[:len(rules)-1]
			}
			var nd ndWalk
			for _, r := range c.Rules {
				s, a := r.ndCoverage()
				nd.rule(r.Verdict() == "accept", isNFTBlocking(r.Verdict()), s, a, r.Line, r.Text)
			}
			b.NDDropLine, b.NDDropText = nd.end(c.Policy == "drop", c.Line, "chain "+c.Name+" { policy drop; }")
			out = append(out, b)
		}
	}
	return out
}

// checkDrops finds a hook where one family drops by default and the other
// does not: whatever the rules forgot to name passes on the other family.
func checkDrops(chains []baseChain) []Finding {
	var findings []Finding
	for _, hook := range []string{"input", "output", "forward"} {
		blocks := map[string]bool{}
		for _, b := range chains {
			if b.Hook == hook && b.Blocks {
				for _, f := range b.Families {
					blocks[f] = true
				}
			}
		}
		if blocks["ipv4"] == blocks["ipv6"] {
			continue
		}
		for _, b := range chains {
			if b.Hook != hook || !b.Blocks || len(b.Families) != 1 {
				continue
			}
			fam := b.Families[0]
			other := map[string]string{"ipv4": "ipv6", "ipv6": "ipv4"}[fam]
			findings = append(findings, Finding{File: b.File, Line: b.BlockLine, Check: DropOneFamily, Family: fam, Rule: b.BlockText,
				Msg: fmt.Sprintf("%s drops what no rule accepts on %s only: on %s, whatever the rules do not name passes", b.Name, title(fam), title(other)),
				Fix: dropFix(b, other)})
		}
	}
	return findings
}

func dropFix(b baseChain, other string) string {
	if b.IPTables {
		tool := map[string]string{"ipv4": "iptables", "ipv6": "ip6tables"}[other]
		return fmt.Sprintf("give the %s ruleset (%s-restore input) the same default: `%s` (or a final `-A %s -j DROP`)", title(other), tool,
			":"+b.Name+" DROP [0:0]", b.Name)
	}
	return fmt.Sprintf("drop by default on %s too: make this an inet table, or add a table %s with a base chain on hook %s and `policy drop;`",
		title(other), map[string]string{"ipv4": "ip", "ipv6": "ip6"}[other], b.Hook)
}

// checkND finds IPv6 chains on input or output that drop ICMPv6 neighbour
// solicitations or advertisements (by policy, a final drop, or a drop of
// ICMPv6) before any rule accepts them: those
// have no socket owner and no connection, so the drop takes them, and the
// host loses every IPv6 neighbour, allowed traffic too.
func checkND(chains []baseChain) []Finding {
	var findings []Finding
	for _, b := range chains {
		if b.NDDropLine == 0 || !slices.Contains(b.Families, "ipv6") || b.Hook == "forward" {
			continue
		}
		fix := fmt.Sprintf("accept neighbour discovery before the drop: `icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept` in %s", b.Name)
		if b.IPTables {
			fix = fmt.Sprintf("accept neighbour discovery before the drop: `-A %[1]s -p ipv6-icmp -m icmp6 --icmpv6-type neighbour-solicitation -j ACCEPT` and `-A %[1]s -p ipv6-icmp -m icmp6 --icmpv6-type neighbour-advertisement -j ACCEPT` (or `-A %[1]s -p ipv6-icmp -j ACCEPT`)", b.Name)
		}
		findings = append(findings, Finding{File: b.File, Line: b.NDDropLine, Check: NDBlocked, Family: "ipv6", Rule: b.NDDropText,
			Msg: fmt.Sprintf("%s drops ICMPv6 neighbour discovery, which no rule before accepts: the host cannot resolve its IPv6 neighbours, so even allowed IPv6 traffic dies", b.Name),
			Fix: fix})
	}
	return findings
}

func title(fam string) string { return map[string]string{"ipv4": "IPv4", "ipv6": "IPv6"}[fam] }
