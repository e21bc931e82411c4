package rulesource_test

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/scenarios/policy"
	"github.com/egresslab/egresslab/scenarios/report/rulesource"
)

// The rules below are placed as the kernel would list them (the trace's
// position in the chain); the specs check the line the replay finds for
// each, and that where it cannot be exact it gives none.
var _ = Describe("where a deciding rule was written", func() {
	const v6 = `# comment
*filter
:INPUT ACCEPT [0:0]
:OUTPUT DROP [0:0]
-A OUTPUT -o lo -j ACCEPT
-A OUTPUT -p tcp --dport 587 -j ACCEPT
-I OUTPUT 1 -p tcp --dport 25 -m owner --uid-owner 107 -j ACCEPT
[0:0] -A OUTPUT -p tcp --dport 25 -j REJECT
COMMIT
`
	const nft = `#!/usr/sbin/nft -f
flush ruleset
table inet egress {
	set mailers { type uid; elements = {
		107, 108 } }
	chain output {
		type filter hook output priority filter; policy drop;
		oifname "lo" accept # loopback
		tcp dport {
			25, 587 } meta skuid @mailers accept
		tcp dport 25 reject with icmpx admin-prohibited
	}
}
add rule inet egress output udp dport 53 accept
insert rule inet egress output ct state established accept
`
	withRuleset := func(rs policy.Ruleset) *policy.Policy {
		return &policy.Policy{File: "ci/egresslab.yaml", Ruleset: rs}
	}
	file := func(path, data string) *policy.RulesetFile {
		return &policy.RulesetFile{Path: path, Data: []byte(data)}
	}

	DescribeTable("iptables-restore input, replayed in order (-A, -I, counters, the chain's policy)",
		func(rule trace.Rule, line int) {
			at, ok := rulesource.Read(withRuleset(policy.Ruleset{IP6Tables: file("rules.v6", v6)})).Of(&rule)
			Expect(ok).To(BeTrue())
			Expect(at.String()).To(Equal("ci/rules.v6:" + itoa(line)))
		},
		Entry("an inserted rule is first", trace.Rule{Family: "ip6", Table: "filter", Chain: "OUTPUT", Position: 1, Verdict: "accept"}, 7),
		Entry("the rules it went before move down", trace.Rule{Family: "ip6", Table: "filter", Chain: "OUTPUT", Position: 3, Verdict: "accept"}, 6),
		Entry("a REJECT rule after counters (the kernel's verdict is the drop after its answer)", trace.Rule{Family: "ip6", Table: "filter", Chain: "OUTPUT", Position: 4, Verdict: "drop"}, 8),
		Entry("the chain's policy", trace.Rule{Family: "ip6", Table: "filter", Chain: "OUTPUT", Policy: true, Verdict: "drop"}, 4),
	)

	DescribeTable("nft files, replayed by block and command (multi-line sets, add rule, insert rule)",
		func(rule trace.Rule, line int) {
			at, ok := rulesource.Read(withRuleset(policy.Ruleset{NFT: file("rules.nft", nft)})).Of(&rule)
			Expect(ok).To(BeTrue())
			Expect(at.String()).To(Equal("ci/rules.nft:" + itoa(line)))
		},
		Entry("an inserted rule is first", trace.Rule{Family: "inet", Table: "egress", Chain: "output", Position: 1, Verdict: "accept"}, 15),
		Entry("a rule after the chain's type line", trace.Rule{Family: "inet", Table: "egress", Chain: "output", Position: 2, Verdict: "accept"}, 8),
		Entry("a rule over two lines is its first", trace.Rule{Family: "inet", Table: "egress", Chain: "output", Position: 3, Verdict: "accept"}, 9),
		Entry("a reject (the kernel's verdict is the drop after its answer)", trace.Rule{Family: "inet", Table: "egress", Chain: "output", Position: 4, Verdict: "drop"}, 11),
		Entry("an added rule is last", trace.Rule{Family: "inet", Table: "egress", Chain: "output", Position: 5, Verdict: "accept"}, 14),
		Entry("the policy on the type line", trace.Rule{Family: "inet", Table: "egress", Chain: "output", Policy: true, Verdict: "drop"}, 7),
	)

	DescribeTable("no line where the replay cannot be exact",
		func(rs policy.Ruleset, rule trace.Rule) {
			_, ok := rulesource.Read(withRuleset(rs)).Of(&rule)
			Expect(ok).To(BeFalse())
		},
		Entry("a user's script", policy.Ruleset{IP6Tables: file("rules.v6", v6), Script: file("fw.sh", "#!/bin/sh\n")},
			trace.Rule{Family: "ip6", Table: "filter", Chain: "OUTPUT", Position: 1, Verdict: "accept"}),
		Entry("a delete by rule text", policy.Ruleset{IP6Tables: file("rules.v6", v6+"*filter\n:OUTPUT DROP\n-A OUTPUT -j ACCEPT\n-D OUTPUT -j ACCEPT\nCOMMIT\n")},
			trace.Rule{Family: "ip6", Table: "filter", Chain: "OUTPUT", Position: 1, Verdict: "accept"}),
		Entry("an nft include", policy.Ruleset{NFT: file("rules.nft", "include \"more.nft\"\n"+nft)},
			trace.Rule{Family: "inet", Table: "egress", Chain: "output", Position: 2, Verdict: "accept"}),
		Entry("an nft rule placed by handle", policy.Ruleset{NFT: file("rules.nft", nft+"add rule inet egress output handle 3 drop\n")},
			trace.Rule{Family: "inet", Table: "egress", Chain: "output", Position: 2, Verdict: "accept"}),
		Entry("a position past the file's rules (someone else's rule)", policy.Ruleset{IP6Tables: file("rules.v6", v6)},
			trace.Rule{Family: "ip6", Table: "filter", Chain: "OUTPUT", Position: 5, Verdict: "accept"}),
		Entry("a line that does not carry the kernel's verdict", policy.Ruleset{IP6Tables: file("rules.v6", v6)},
			trace.Rule{Family: "ip6", Table: "filter", Chain: "OUTPUT", Position: 4, Verdict: "accept"}),
		Entry("a chain the file never declared", policy.Ruleset{IP6Tables: file("rules.v6", v6)},
			trace.Rule{Family: "ip6", Table: "filter", Chain: "FORWARD", Position: 1, Verdict: "accept"}),
		Entry("an untraced run", policy.Ruleset{IP6Tables: file("rules.v6", v6)}, trace.Rule{Untraced: "no trace"}),
	)
})

func itoa(n int) string { return fmt.Sprint(n) }
