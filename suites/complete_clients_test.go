package suites_test

import (
	"net/netip"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/classes"
)

// clientsPolicy is completePolicy with a container network: one client,
// php, which may send nothing.
const clientsPolicy = `version: 1
users:
  postfix: {uid: 107}
hosts:
  mx.example.test:
    addresses: [192.0.2.25, "2001:db8::25"]
    ports: [25/tcp]
networks:
  docker0:
    addresses: [172.17.0.1/16, "fd00:db8:17::1/64"]
    clients:
      php: {addresses: [172.17.0.3, "fd00:db8:17::3"]}
ruleset:
  iptables: rules.v4
  ip6tables: rules.v6
expect:
  - allow: {user: postfix, host: mx.example.test, port: 25/tcp}
  - deny: {}
`

// dockerUser is Docker's FORWARD with the admin's mail block in
// DOCKER-USER, and postfix's mail to mx (its address of the family);
// extra lines go before the block.
func dockerUser(mx string, extra ...string) string {
	lines := []string{"*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT DROP [0:0]", ":DOCKER-USER - [0:0]",
		"-A OUTPUT -o lo -j ACCEPT"}
	if strings.Contains(mx, ":") {
		lines = append(lines, "-A OUTPUT -p ipv6-icmp -j ACCEPT")
	}
	lines = append(lines, "-A OUTPUT -d "+mx+" -p tcp -m tcp --dport 25 -m owner --uid-owner 107 -j ACCEPT",
		"-A FORWARD -j DOCKER-USER",
		"-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		"-A FORWARD -i docker0 ! -o docker0 -j ACCEPT")
	lines = append(lines, extra...)
	return strings.Join(append(lines, "-A DOCKER-USER -i docker0 -j DROP", "COMMIT", ""), "\n")
}

// forwardClasses are the report's classes of network's forwarded traffic.
func forwardClasses(rep *scenarios.Report, network string) []scenarios.ClassResult {
	var out []scenarios.ClassResult
	for _, c := range rep.Classes {
		if c.Class.Network == network {
			out = append(out, c)
		}
	}
	return out
}

func holdsSource(c classes.Class, a netip.Addr) bool {
	return slices.ContainsFunc(c.Sources, func(r classes.AddrRange) bool { return r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0 })
}

var _ = Describe("verify --complete on forwarded traffic: clients are sources of classes", Label("complete", "forward"), func() {
	It("finds a bypass for a source range no policy client is in, probed by a synthetic client of the network", func(ctx SpecContext) {
		p := loadComplete(clientsPolicy,
			dockerUser("192.0.2.25", "-A DOCKER-USER -s 172.17.128.0/17 -i docker0 -p tcp -m tcp --dport 25 -j RETURN"),
			dockerUser("2001:db8::25"))
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{Complete: true})
		Expect(err).NotTo(HaveOccurred())
		// the policy's own cells hold: php is dropped in both families
		Expect(rep.Pass()).To(BeFalse())
		Expect(rep.Summary().Failed).To(BeZero())
		fwd := forwardClasses(rep, "docker0")
		Expect(fwd).NotTo(BeEmpty())
		var failing []string
		for _, c := range fwd {
			if !c.Pass() {
				failing = append(failing, c.Name()+" as "+c.SourceName()+": "+c.Observed.String())
			}
		}
		Expect(failing).To(ConsistOf("ipv4 tcp docker0 saddr 172.17.128.0/17 to 0.0.0.0/0 port 25 as 172.17.128.1@docker0: connected"))
		bypass := slices.IndexFunc(fwd, func(c scenarios.ClassResult) bool { return !c.Pass() })
		Expect(fwd[bypass].Synthetic()).To(BeTrue())
		Expect(fwd[bypass].Expect).To(Equal(scenarios.Deny))
		// php's own class, and every other, is dropped on the forward path
		for _, c := range fwd {
			if c.Pass() {
				Expect(c.Observed).To(Equal(probe.Dropped), c.Name())
			}
			if holdsSource(c.Class, netip.MustParseAddr("172.17.0.3")) {
				Expect(c.Synthetic()).To(BeFalse(), "php stands in its own class: %s", c.Name())
			}
		}
		Expect(rep.CompletenessLine()).To(ContainSubstring("classes of forwarded traffic over network, saddr, daddr, dport, proto, family"))
	})

	It("shows a network's IPv6 leak with a policy that lists only one client and no user", func(ctx SpecContext) {
		policy := strings.Replace(clientsPolicy, "users:\n  postfix: {uid: 107}\n", "", 1)
		policy = strings.Replace(policy, "  - allow: {user: postfix, host: mx.example.test, port: 25/tcp}\n", "", 1)
		open6 := "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
		p := loadComplete(policy, dockerUser("192.0.2.25"), open6)
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{Complete: true})
		Expect(err).NotTo(HaveOccurred())
		var leaks []string
		for _, c := range forwardClasses(rep, "docker0") {
			if !c.Pass() {
				leaks = append(leaks, c.Class.Family.String()+" "+c.Class.Proto.String()+" "+c.SourceName()+" "+c.Observed.String())
			}
		}
		Expect(leaks).To(ContainElement("ipv6 tcp php@docker0 connected"))
		Expect(leaks).NotTo(ContainElement(HavePrefix("ipv4")))
	})

	It("probes an IPv6 source range as a synthetic client bound to an address of it", func(ctx SpecContext) {
		policy := strings.Replace(clientsPolicy, "users:\n  postfix: {uid: 107}\n", "", 1)
		policy = strings.Replace(policy, "  - allow: {user: postfix, host: mx.example.test, port: 25/tcp}\n", "", 1)
		forward := func(extra ...string) string {
			return strings.Join(append(append([]string{"*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
				"-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"}, extra...), "COMMIT", ""), "\n")
		}
		p := loadComplete(policy, forward(), forward("-A FORWARD -s fd00:db8:17::8000/113 -i docker0 -p tcp --dport 25 -j ACCEPT"))
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{Complete: true})
		Expect(err).NotTo(HaveOccurred())
		var failing []string
		for _, c := range forwardClasses(rep, "docker0") {
			if !c.Pass() {
				failing = append(failing, c.Name()+" as "+c.SourceName()+": "+c.Observed.String())
			}
		}
		Expect(failing).To(ConsistOf("ipv6 tcp docker0 saddr fd00:db8:17::8000/113 to ::/0 port 25 as fd00:db8:17::8001@docker0: connected"))
	})
})
