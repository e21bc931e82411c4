package suites_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing/fstest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/classes"
)

// completePolicy is a mail host's policy: postfix may send mail, nothing
// else leaves. Its cells are two users × one dual-stack MX × port 25.
const completePolicy = `version: 1
users:
  postfix: {uid: 107}
  alice: {uid: 1000}
hosts:
  mx.example.test:
    addresses: [192.0.2.25, "2001:db8::25"]
    ports: [25/tcp]
ruleset:
  iptables: rules.v4
  ip6tables: rules.v6
expect:
  - allow: {user: postfix, host: mx.example.test, port: 25/tcp}
  - deny: {}
`

// mailRules lets postfix out on port 25 and drops the rest; extra lines go
// before the drop.
func mailRules(extra ...string) string {
	return filterDrop(append([]string{"-A OUTPUT -d 192.0.2.25 -p tcp -m tcp --dport 25 -m owner --uid-owner 107 -j ACCEPT"}, extra...))
}

// mailRules6 is mailRules for ip6tables: neighbour discovery must leave.
func mailRules6(extra ...string) string {
	return filterDrop(append([]string{"-A OUTPUT -p ipv6-icmp -j ACCEPT",
		"-A OUTPUT -d 2001:db8::25 -p tcp -m tcp --dport 25 -m owner --uid-owner 107 -j ACCEPT"}, extra...))
}

func filterDrop(lines []string) string {
	return "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n-A OUTPUT -o lo -j ACCEPT\n" +
		strings.Join(append(lines, ""), "\n") + "COMMIT\n"
}

func loadComplete(policy, v4, v6 string) *scenarios.Policy {
	fs := fstest.MapFS{"p.yaml": {Data: []byte(policy)}, "rules.v4": {Data: []byte(v4)}, "rules.v6": {Data: []byte(v6)}}
	p, err := scenarios.LoadFS(fs, "p.yaml")
	Expect(err).NotTo(HaveOccurred())
	return p
}

func failingClasses(rep *scenarios.Report) []scenarios.ClassResult {
	var out []scenarios.ClassResult
	for _, c := range rep.Classes {
		if !c.Pass() {
			out = append(out, c)
		}
	}
	return out
}

// classHolds says whether cell (family by address, proto, uid, gid,
// address, port) lies in class c.
func classHolds(c classes.Class, proto string, uid, gid uint32, addr netip.Addr, port uint16) bool {
	fam := classes.IPv4
	if addr.Is6() {
		fam = classes.IPv6
	}
	if c.Family != fam || c.Proto.String() != proto {
		return false
	}
	in := func(rs []classes.IDRange, v uint32) bool {
		for _, r := range rs {
			if r.First <= v && v <= r.Last {
				return true
			}
		}
		return false
	}
	if !in(c.Source.UIDs, uid) || !in(c.Source.GIDs, gid) {
		return false
	}
	okPort := false
	for _, r := range c.Ports {
		okPort = okPort || r.First <= port && port <= r.Last
	}
	okAddr := false
	for _, r := range c.Addresses {
		okAddr = okAddr || r.First.Compare(addr) <= 0 && addr.Compare(r.Last) <= 0
	}
	return okPort && okAddr
}

var _ = Describe("verify --complete", Label("complete"), func() {
	run := func(ctx context.Context, p *scenarios.Policy, complete bool) *scenarios.Report {
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{Complete: complete})
		Expect(err).NotTo(HaveOccurred())
		return rep
	}

	DescribeTable("finds the one bypass outside the policy's cells, which plain verify passes",
		func(ctx SpecContext, v4, v6 string, family classes.Family, proto, source string, addrs, ports []string) {
			p := loadComplete(completePolicy, v4, v6)
			plain := run(ctx, p, false)
			Expect(plain.Pass()).To(BeTrue(), "plain verify must pass: the bypass is outside its cells")
			Expect(plain.Classes).To(BeNil())

			rep := run(ctx, p, true)
			Expect(rep.Pass()).To(BeFalse())
			bad := failingClasses(rep)
			Expect(bad).To(HaveLen(1), "exactly one failing class, got %d", len(bad))
			c := bad[0]
			Expect(c.Class.Family).To(Equal(family))
			Expect(c.Class.Proto.String()).To(Equal(proto))
			Expect(c.SourceString()).To(Equal(source))
			Expect(c.AddressStrings()).To(Equal(addrs))
			Expect(c.PortStrings()).To(Equal(ports))
			Expect(c.Observed).To(Equal(probe.Connected))
			Expect(c.Expect).To(Equal(scenarios.Deny))
			Expect(c.Class.Sampled).To(BeFalse())
			Expect(rep.CompletenessLine()).To(HavePrefix(fmt.Sprintf("%d classes over uid, gid, daddr, dport, proto, family: all probed", len(rep.Classes))))
		},
		Entry("an uncovered uid range", mailRules("-A OUTPUT -m owner --uid-owner 60000-60100 -p tcp -j ACCEPT"), mailRules6(),
			classes.IPv4, "tcp", "uid 60000-60100", []string{"0.0.0.0/0"}, []string{"1-65535"}),
		Entry("an address outside every listed host", mailRules("-A OUTPUT -p tcp -d 198.51.100.0/24 -j ACCEPT"), mailRules6(),
			classes.IPv4, "tcp", "any", []string{"198.51.100.0/24"}, []string{"1-65535"}),
		Entry("a port range", mailRules("-A OUTPUT -p tcp -m tcp --dport 8000:8100 -j ACCEPT"), mailRules6(),
			classes.IPv4, "tcp", "any", []string{"0.0.0.0/0"}, []string{"8000-8100"}),
		Entry("UDP only", mailRules("-A OUTPUT -p udp -j ACCEPT"), mailRules6(),
			classes.IPv4, "udp", "any", []string{"0.0.0.0/0"}, []string{"1-65535"}),
		Entry("IPv6 only", mailRules(), mailRules6("-A OUTPUT -p tcp -m tcp --dport 8080 -j ACCEPT"),
			classes.IPv6, "tcp", "any", []string{"::/0"}, []string{"8080"}),
	)

	It("reaches representatives no host serves on any address and port, through the world's one socket per family and protocol", func(ctx SpecContext) {
		v4 := mailRules("-A OUTPUT -p tcp -m tcp -d 198.51.100.0/24 --dport 9000 -j ACCEPT",
			"-A OUTPUT -p udp -m udp -d 198.51.100.0/24 --dport 9000 -j ACCEPT")
		// 2001:db8:1::/64 is the lab's uplink prefix: the lab resolves
		// 2001:db8:1::101 on the link itself, which the world must answer
		v6 := mailRules6("-A OUTPUT -p tcp -m tcp -d 2001:db8:77::/48 --dport 9000 -j ACCEPT",
			"-A OUTPUT -p udp -m udp -d 2001:db8:77::/48 --dport 9000 -j ACCEPT",
			"-A OUTPUT -p tcp -m tcp -d 2001:db8:1::100/120 --dport 9001 -j ACCEPT")
		rep := run(ctx, loadComplete(completePolicy, v4, v6), true)
		reached := map[string]string{}
		for _, c := range failingClasses(rep) {
			r := c.Class.Representative
			Expect(r.PolicyAddr).To(BeFalse(), "no policy host lies in %s", c.Name())
			reached[fmt.Sprintf("%s %s", netip.AddrPortFrom(r.Addr, r.Port), c.Class.Proto)] = c.Observed.String()
			Expect(c.Detail).To(ContainSubstring(r.Addr.String()), "answered as the address dialled: %s", c.Detail)
		}
		Expect(reached).To(Equal(map[string]string{
			"198.51.100.1:9000 tcp": "connected", "198.51.100.1:9000 udp": "connected",
			"[2001:db8:77::1]:9000 tcp": "connected", "[2001:db8:77::1]:9000 udp": "connected",
			"[2001:db8:1::101]:9001 tcp": "connected",
		}))
	})

	It("names the matches it cannot split and marks their classes sampled, never complete", func(ctx SpecContext) {
		v4 := mailRules(
			"-A OUTPUT -p tcp -m mark --mark 0x1 -j ACCEPT",
			"-A OUTPUT -p tcp -m tcp --dport 8080 -m limit --limit 5/second -j ACCEPT",
			"-A OUTPUT -p udp -m string --algo bm --string secret -j DROP",
		)
		rep := run(ctx, loadComplete(completePolicy, v4, mailRules6()), true)
		var named []string
		for _, u := range rep.Completeness.Unsplit {
			named = append(named, u.Match)
		}
		Expect(named).To(ConsistOf("-m mark", "-m limit", "-m string"))
		line := rep.CompletenessLine()
		Expect(line).To(ContainSubstring("3 matches not split"))
		Expect(line).To(ContainSubstring("--mark 0x1"))
		sampled := 0
		for _, c := range rep.Classes {
			if c.Class.Family == classes.IPv6 {
				Expect(c.Class.Sampled).To(BeFalse(), "no unsplit match touches IPv6: %s", c.Name())
				continue
			}
			if c.Class.Sampled {
				sampled++
			}
		}
		// every IPv4 class meets the mark rule (tcp) or the string rule (udp)
		Expect(sampled).To(Equal(len(rep.Classes) - countFamily(rep, classes.IPv6)))
		var doc strings.Builder
		Expect(rep.WriteJSON(&doc)).To(Succeed())
		Expect(doc.String()).To(ContainSubstring(`"complete": false`))
		Expect(doc.String()).To(ContainSubstring(`"classes": [`))
	})

	It("finds every IPv6 bypass of the seed's rules with a one-line policy", func(ctx SpecContext) {
		seed := "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
			"-A OUTPUT -p tcp -m tcp --dport 25 -m owner --uid-owner 107 -j ACCEPT\n-A OUTPUT -j DROP\nCOMMIT\n"
		policy := `version: 1
users:
  postfix: {uid: 107}
hosts:
  mx.example.test: {addresses: [192.0.2.25], ports: [25/tcp]}
ruleset:
  iptables: rules.v4
expect:
  - allow: {user: postfix, host: mx.example.test, port: 25/tcp, family: ipv4}
  - deny: {}
`
		rep := run(ctx, loadComplete(policy, seed, ""), true)
		var bypassed []string
		for _, c := range failingClasses(rep) {
			Expect(c.Observed).To(Equal(probe.Connected))
			bypassed = append(bypassed, c.Class.Family.String()+" "+c.Class.Proto.String())
			Expect(c.AddressStrings()).To(Equal([]string{"::/0"}))
			Expect(c.PortStrings()).To(Equal([]string{"1-65535"}))
		}
		Expect(bypassed).To(ConsistOf("ipv6 tcp", "ipv6 udp"))
		for _, c := range rep.Classes {
			if c.Class.Family == classes.IPv4 {
				Expect(c.Pass()).To(BeTrue(), "%s: %s", c.Name(), c.Detail)
			}
		}
	})

	It("fails the classes no expectation covers as not covered, never passes them", func(ctx SpecContext) {
		policy := `version: 1
users:
  postfix: {uid: 107}
hosts:
  mx.example.test: {addresses: [192.0.2.25], ports: [25/tcp]}
ruleset:
  iptables: rules.v4
  ip6tables: rules.v6
expect:
  - allow: {user: postfix, host: mx.example.test, port: 25/tcp}
`
		v4 := mailRules("-A OUTPUT -p tcp -m tcp --dport 8080 -j ACCEPT")
		rep := run(ctx, loadComplete(policy, v4, mailRules6()), true)
		uncovered := 0
		for _, c := range rep.Classes {
			Expect(c.Observed).NotTo(Equal(probe.Error), "%s: %s", c.Name(), c.Detail)
			if c.Expect == "" {
				uncovered++
				Expect(c.Pass()).To(BeFalse())
			}
		}
		Expect(uncovered).To(Equal(len(rep.Classes) - 1)) // all but postfix's mail
		var table strings.Builder
		Expect(rep.WriteTable(&table, false)).To(Succeed())
		Expect(table.String()).To(ContainSubstring("NOT COVERED ipv4 tcp any to 0.0.0.0/0 port 8080"))
		Expect(rep.Pass()).To(BeFalse())
	})

	It("agrees with a brute-force sweep: no cell behaves otherwise than its class", func(ctx SpecContext) {
		// every uid of 1000-1003 × every port of 19-23 × addresses from
		// each prefix the rules name and one outside them, all probed
		rules := "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n" +
			"-A OUTPUT -o lo -j ACCEPT\n" +
			"-A OUTPUT -p tcp -d 198.51.100.0/30 -m tcp --dport 20:22 -m owner --uid-owner 1001-1002 -j ACCEPT\n" +
			"-A OUTPUT -p tcp -d 198.51.100.8/29 -m tcp --dport 21 -j ACCEPT\n" +
			"-A OUTPUT -p tcp -m owner --uid-owner 1003 -m tcp --dport 23 -j REJECT --reject-with tcp-reset\n" +
			"COMMIT\n"
		var b strings.Builder
		b.WriteString("version: 1\nusers:\n")
		for uid := 1000; uid <= 1003; uid++ {
			fmt.Fprintf(&b, "  u%d: {uid: %d}\n", uid, uid)
		}
		b.WriteString("hosts:\n")
		for _, a := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.9", "198.51.100.14", "198.51.100.5", "192.0.2.1"} {
			fmt.Fprintf(&b, "  h%s:\n    addresses: [%s]\n    ports: [19-23/tcp]\n", strings.ReplaceAll(a, ".", "-"), a)
		}
		b.WriteString("ruleset:\n  iptables: rules.v4\n  ip6tables: rules.v6\nexpect:\n  - deny: {}\n")
		rep := run(ctx, loadComplete(b.String(), rules, mailRules6()), true)
		Expect(rep.Results).To(HaveLen(4 * 5 * 6))
		for _, cell := range rep.Results {
			var in []scenarios.ClassResult
			for _, c := range rep.Classes {
				if classHolds(c.Class, cell.Port.Proto, cell.User.UID, cell.User.GID, cell.Address, cell.Port.Number) {
					in = append(in, c)
				}
			}
			Expect(in).To(HaveLen(1), "%s lies in %d classes", cell.Probe, len(in))
			Expect(cell.Observed).To(Equal(in[0].Observed), "%s: %s, but its class %s (probed as %s) %s",
				cell.Probe, cell.Observed, in[0].Name(), in[0].User.Name, in[0].Observed)
		}
	})
})

func countFamily(rep *scenarios.Report, f classes.Family) int {
	n := 0
	for _, c := range rep.Classes {
		if c.Class.Family == f {
			n++
		}
	}
	return n
}
