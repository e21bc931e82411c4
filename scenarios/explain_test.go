package scenarios_test

import (
	"fmt"
	"strings"
	"testing/fstest"

	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/report/words"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// decider is what a spec checks of a probe's deciding rule.
type decider struct {
	Family, Table, Chain string
	Position             int
	Verdict              string
	Policy               bool
	Text                 string
}

func deciders(rep *scenarios.Report) map[string]decider {
	out := map[string]decider{}
	for _, r := range rep.Results {
		key := fmt.Sprintf("%s %d", r.Family(), r.Port.Number)
		if r.Decider == nil {
			out[key] = decider{Text: "<none>"}
			continue
		}
		d := r.Decider
		out[key] = decider{d.Family, d.Table, d.Chain, d.Position, words.RuleVerdict(d.Verdict, r.Observed), d.Policy, d.Text + d.Untraced}
	}
	return out
}

var _ = Describe("the rule that decided each probe", Label("lab"), func() {
	run := func(ctx SpecContext, file string) *scenarios.Report {
		GinkgoHelper()
		p, err := scenarios.Load("../testdata/rule/" + file)
		Expect(err).NotTo(HaveOccurred())
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.Pass()).To(BeTrue(), "the rule specs' policies hold: accept, drop, reject and a policy drop per family")
		return rep
	}

	It("names iptables-nft's rule by iptables-save's line and its position", func(ctx SpecContext) {
		rule := func(fam string, pos int, verdict, text string) decider {
			return decider{fam, "filter", "OUTPUT", pos, verdict, false, text}
		}
		policy := func(fam string) decider { return decider{fam, "filter", "OUTPUT", 0, "drop", true, "policy drop"} }
		Expect(deciders(run(ctx, "iptables.yaml"))).To(Equal(map[string]decider{
			"ipv4 80":   rule("ip", 2, "accept", "-A OUTPUT -p tcp -m tcp --dport 80 -j ACCEPT"),
			"ipv4 443":  rule("ip", 3, "drop", "-A OUTPUT -p tcp -m tcp --dport 443 -j DROP"),
			"ipv4 25":   rule("ip", 4, "reject", "-A OUTPUT -p tcp -m tcp --dport 25 -j REJECT --reject-with icmp-port-unreachable"),
			"ipv4 8080": policy("ip"),
			"ipv6 80":   rule("ip6", 2, "accept", "-A OUTPUT -p tcp -m tcp --dport 80 -j ACCEPT"),
			"ipv6 443":  rule("ip6", 3, "drop", "-A OUTPUT -p tcp -m tcp --dport 443 -j DROP"),
			"ipv6 25":   rule("ip6", 4, "reject", "-A OUTPUT -p tcp -m tcp --dport 25 -j REJECT --reject-with icmp6-port-unreachable"),
			"ipv6 8080": policy("ip6"),
		}))
	})

	It("names an nft rule as nft prints it", func(ctx SpecContext) {
		rule := func(pos int, verdict, text string) decider {
			return decider{"inet", "filter", "output", pos, verdict, false, text}
		}
		policy := decider{"inet", "filter", "output", 0, "drop", true, "policy drop"}
		want := map[string]decider{}
		for _, fam := range []string{"ipv4", "ipv6"} {
			want[fam+" 80"] = rule(2, "accept", "tcp dport 80 accept")
			want[fam+" 443"] = rule(3, "drop", "tcp dport 443 drop")
			want[fam+" 25"] = rule(4, "reject", "tcp dport 25 reject")
			want[fam+" 8080"] = policy
		}
		Expect(deciders(run(ctx, "nft.yaml"))).To(Equal(want))
	})

	It("says plainly, per probe, that the legacy flavour cannot be traced", func(ctx SpecContext) {
		rep := run(ctx, "legacy.yaml")
		Expect(rep.Results).To(HaveLen(8))
		for _, r := range rep.Results {
			Expect(r.Decider).To(Equal(&trace.Rule{Untraced: "the iptables-legacy flavour cannot be traced (its rules are not nf_tables rules)"}))
		}
	})

	It("says what a rule matched on that a reader may not expect", func(ctx SpecContext) {
		fsys := fstest.MapFS{
			"surprise.yaml": {Data: []byte(`version: 1
users:
  alice: {uid: 1000, gid: 1001}
hosts:
  web.example.test:
    addresses: [192.0.2.80, "2001:db8::80"]
    ports: [80/tcp, 443/tcp]
ruleset:
  nft: surprise.nft
expect:
  - allow: {port: 80}
  - allow: {port: 443, family: ipv4}
  - drop: {}
`)},
			"surprise.nft": {Data: []byte(`table inet filter {
	chain output {
		type filter hook output priority 0; policy drop;
		meta l4proto ipv6-icmp accept
		meta skgid 1001 tcp dport 80 accept
		ip daddr 192.0.2.80 tcp dport 443 accept
	}
}
`)},
		}
		p, err := scenarios.LoadFS(fsys, "surprise.yaml")
		Expect(err).NotTo(HaveOccurred())
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())
		notes := map[string]string{}
		for _, r := range rep.Results {
			Expect(r.Decider).NotTo(BeNil(), r.Probe.String())
			// The report's words: the rule, then what it matched on that a reader may not expect.
			notes[fmt.Sprintf("%s %d", r.Family(), r.Port.Number)] = strings.TrimPrefix(strings.TrimPrefix(words.DecidedBy(r.Decider), r.Decider.String()), " — ")
		}
		Expect(notes).To(Equal(map[string]string{
			"ipv4 80":  "a group owner match sees the socket's primary group only, not supplementary groups",
			"ipv6 80":  "a group owner match sees the socket's primary group only, not supplementary groups",
			"ipv4 443": "an IPv4-only match in an inet table: IPv6 packets pass this rule by",
			"ipv6 443": "", // the chain's policy dropped it
		}))
	})

	It("names the same rules when one lab is probed again", func(ctx SpecContext) {
		p, err := scenarios.Load("../testdata/rule/nft.yaml")
		Expect(err).NotTo(HaveOccurred())
		lab, err := scenarios.StartLab(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		first, err := scenarios.ProbeAll(ctx, lab, p, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())
		again, err := scenarios.ProbeAll(ctx, lab, p, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(deciders(again)).To(Equal(deciders(first)))
		Expect(deciders(first)["ipv6 443"].Position).To(Equal(3))
	})

	It("costs nothing when switched off", func(ctx SpecContext) {
		p, err := scenarios.Load("../testdata/rule/nft.yaml")
		Expect(err).NotTo(HaveOccurred())
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{NoRule: true})
		Expect(err).NotTo(HaveOccurred())
		for _, r := range rep.Results {
			Expect(r.Decider).To(BeNil())
		}
	})
})
