package scenarios_test

import (
	"os"
	"path/filepath"
	"regexp"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Every packet a probe sends crosses the candidate's chains: on a ruleset of
// 20,000 rules that walk is most of verify --complete's time.
var _ = Describe("a connected probe's packets", func() {
	It("cross the candidate's OUTPUT chain three times (SYN, ACK, the closing reset), none of them without an owner", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		// No conntrack rule: every packet of a connection walks the chain.
		// Owner matches, as a host's service rules have: a FIN exchange's
		// last ACK (from a socket in TIME_WAIT, which has no owner) would
		// fall through to the last DROP, and draw the peer's FIN again.
		rules := `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -p ipv6-icmp -j ACCEPT
-A OUTPUT -p tcp --dport 80 -m owner --uid-owner 107 -j ACCEPT
-A OUTPUT -m owner --uid-owner 33 -j DROP
-A OUTPUT -j DROP
COMMIT
`
		policy := `version: 1
name: probe-close
users:
  postfix: {uid: 107}
  www-data: {uid: 33}
hosts:
  web.example.test:
    addresses: [192.0.2.80, "2001:db8::80"]
    ports: [80]
ruleset:
  iptables: r.rules
  ip6tables: r.rules
expect:
  - allow: {user: postfix}
  - drop: {}
`
		Expect(os.WriteFile(filepath.Join(dir, "r.rules"), []byte(rules), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(policy), 0o644)).To(Succeed())
		p, err := scenarios.Load(filepath.Join(dir, "p.yaml"))
		Expect(err).NotTo(HaveOccurred())
		lab, err := scenarios.StartLab(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		rep, err := scenarios.ProbeAll(ctx, lab, p, scenarios.RunOptions{NoRule: true})
		Expect(err).NotTo(HaveOccurred())
		outcomes := map[string]probe.Outcome{}
		for _, r := range rep.Results {
			outcomes[r.User.Name+" "+r.Address.String()] = r.Observed
		}
		Expect(outcomes).To(Equal(map[string]probe.Outcome{
			"postfix 192.0.2.80": probe.Connected, "postfix 2001:db8::80": probe.Connected,
			"www-data 192.0.2.80": probe.Dropped, "www-data 2001:db8::80": probe.Dropped,
		}))
		// every probe's socket is closed once its evidence is gone
		_, err = lab.AwaitHeldPorts(0)
		Expect(err).NotTo(HaveOccurred())
		for _, save := range []string{"iptables-nft-save", "ip6tables-nft-save"} {
			out, err := lab.Command(ctx, save, "-c").Output()
			Expect(err).NotTo(HaveOccurred())
			Expect(counter(out, "--uid-owner 107 -j ACCEPT")).To(Equal("3"), save)
			Expect(counter(out, "-A OUTPUT -j DROP")).To(Equal("0"), save)
		}
	})
})

// counter is the packet count iptables-save -c prints for the rule that ends
// with rule.
func counter(save []byte, rule string) string {
	GinkgoHelper()
	m := regexp.MustCompile(`(?m)^\[(\d+):\d+\] .*` + regexp.QuoteMeta(rule) + `$`).FindSubmatch(save)
	Expect(m).NotTo(BeNil(), "no rule ending %q in:\n%s", rule, save)
	return string(m[1])
}
