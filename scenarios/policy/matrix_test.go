package policy_test

import (
	"net/netip"
	"testing/fstest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/scenarios/policy"
)

// load parses a policy written inline.
func load(text string) *policy.Policy {
	GinkgoHelper()
	p, err := policy.LoadFS(fstest.MapFS{"p.yaml": {Data: []byte(text)}}, "p.yaml")
	Expect(err).NotTo(HaveOccurred())
	return p
}

// cells names each probe of the matrix with its verb and deciding rule.
func cells(p *policy.Policy) []string {
	var out []string
	for _, pr := range p.Matrix() {
		out = append(out, pr.String()+" "+string(pr.Expect)+" #"+string(rune('0'+pr.Rule)))
	}
	return out
}

const twoByTwo = `version: 1
users:
  postfix: {uid: 107}
  www-data: {uid: 33}
hosts:
  mx.example.test:
    addresses: [192.0.2.25, "2001:db8::25"]
    ports: [25/tcp, 53/udp]
  relay.localhost:
    addresses: ["::1"]
    ports: [25]
expect:
`

var _ = Describe("Matrix", func() {
	It("is every user × host × address × port, in file order, user outermost", func() {
		p := load(twoByTwo + "  - allow: {}\n")
		Expect(cells(p)).To(Equal([]string{
			"postfix -> mx.example.test [192.0.2.25]:25/tcp (ipv4) allow #0",
			"postfix -> mx.example.test [192.0.2.25]:53/udp (ipv4) allow #0",
			"postfix -> mx.example.test [2001:db8::25]:25/tcp (ipv6) allow #0",
			"postfix -> mx.example.test [2001:db8::25]:53/udp (ipv6) allow #0",
			"postfix -> relay.localhost [::1]:25/tcp (ipv6) allow #0",
			"www-data -> mx.example.test [192.0.2.25]:25/tcp (ipv4) allow #0",
			"www-data -> mx.example.test [192.0.2.25]:53/udp (ipv4) allow #0",
			"www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6) allow #0",
			"www-data -> mx.example.test [2001:db8::25]:53/udp (ipv6) allow #0",
			"www-data -> relay.localhost [::1]:25/tcp (ipv6) allow #0",
		}))
		pr := p.Matrix()[0]
		Expect(pr.User).To(Equal(policy.User{Name: "postfix", UID: 107, GID: 107}))
		Expect(pr.Family()).To(Equal("ipv4"))
		Expect(pr.Line).To(Equal(13))
	})

	It("lets the first matching entry decide", func() {
		p := load(twoByTwo + `  - allow: {user: postfix, port: 25/tcp}
  - deny: {port: [25/tcp, 465/tcp]}
  - allow: {}
`)
		Expect(cells(p)).To(Equal([]string{
			"postfix -> mx.example.test [192.0.2.25]:25/tcp (ipv4) allow #0",
			"postfix -> mx.example.test [192.0.2.25]:53/udp (ipv4) allow #2",
			"postfix -> mx.example.test [2001:db8::25]:25/tcp (ipv6) allow #0",
			"postfix -> mx.example.test [2001:db8::25]:53/udp (ipv6) allow #2",
			"postfix -> relay.localhost [::1]:25/tcp (ipv6) allow #0",
			"www-data -> mx.example.test [192.0.2.25]:25/tcp (ipv4) deny #1",
			"www-data -> mx.example.test [192.0.2.25]:53/udp (ipv4) allow #2",
			"www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6) deny #1",
			"www-data -> mx.example.test [2001:db8::25]:53/udp (ipv6) allow #2",
			"www-data -> relay.localhost [::1]:25/tcp (ipv6) deny #1",
		}))
		Expect(p.Expect[1].Line).To(Equal(14))
	})

	It("holds an expectation to one family only when it names one", func() {
		p := load(twoByTwo + `  - drop: {family: ipv6, host: mx.example.test}
  - reject: {family: ipv4}
  - allow: {}
`)
		Expect(cells(p)).To(Equal([]string{
			"postfix -> mx.example.test [192.0.2.25]:25/tcp (ipv4) reject #1",
			"postfix -> mx.example.test [192.0.2.25]:53/udp (ipv4) reject #1",
			"postfix -> mx.example.test [2001:db8::25]:25/tcp (ipv6) drop #0",
			"postfix -> mx.example.test [2001:db8::25]:53/udp (ipv6) drop #0",
			"postfix -> relay.localhost [::1]:25/tcp (ipv6) allow #2",
			"www-data -> mx.example.test [192.0.2.25]:25/tcp (ipv4) reject #1",
			"www-data -> mx.example.test [192.0.2.25]:53/udp (ipv4) reject #1",
			"www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6) drop #0",
			"www-data -> mx.example.test [2001:db8::25]:53/udp (ipv6) drop #0",
			"www-data -> relay.localhost [::1]:25/tcp (ipv6) allow #2",
		}))
	})

	It("reads \"*\" and an absent key alike, and lists as any of their items", func() {
		p := load(twoByTwo + `  - deny: {user: "*", host: [relay.localhost], port: "*"}
  - allow: {user: [www-data, postfix], host: mx.example.test, port: [53/udp, 25]}
`)
		Expect(p.Expect[0].Users).To(BeNil())
		Expect(p.Expect[0].Ports).To(BeNil())
		Expect(p.Expect[0].Hosts).To(Equal([]string{"relay.localhost"}))
		Expect(p.Expect[1].Users).To(Equal([]string{"www-data", "postfix"}))
		Expect(p.Expect[1].Ports).To(Equal([]policy.PortRange{{First: 53, Last: 53, Proto: "udp"}, {First: 25, Last: 25, Proto: "tcp"}}))
		for _, pr := range p.Matrix() {
			if pr.Host == "relay.localhost" {
				Expect(pr.Expect).To(Equal(policy.Deny))
			} else {
				Expect(pr.Expect).To(Equal(policy.Allow))
			}
		}
	})

	Describe("Match", func() {
		p := load(twoByTwo + `  - allow: {user: postfix, host: mx.example.test, port: 25/tcp}
  - reject: {port: 25/udp, family: ipv4}
  - drop: {user: www-data, family: ipv6}
  - deny: {host: mx.example.test}
  - allow: {host: relay.localhost}
`)
		mx, relay := "mx.example.test", "relay.localhost"
		v4, v6 := netip.MustParseAddr("192.0.2.25"), netip.MustParseAddr("2001:db8::25")
		tcp25, udp25 := policy.Port{Number: 25, Proto: "tcp"}, policy.Port{Number: 25, Proto: "udp"}
		DescribeTable("finds the first entry that covers a probe",
			func(user, host string, addr netip.Addr, port policy.Port, rule int) {
				got, ok := p.Match(user, host, addr, port)
				Expect(ok).To(Equal(rule >= 0))
				Expect(got).To(Equal(rule))
			},
			Entry("all keys match", "postfix", mx, v4, tcp25, 0),
			Entry("same on IPv6", "postfix", mx, v6, tcp25, 0),
			Entry("the protocol is part of the port", "postfix", mx, v4, udp25, 1),
			Entry("family filter: IPv4 only", "postfix", mx, v6, udp25, 3),
			Entry("family filter: IPv6 only", "www-data", mx, v6, tcp25, 2),
			Entry("user filter", "www-data", mx, v4, tcp25, 3),
			Entry("host filter", "www-data", relay, v4, tcp25, 4),
			Entry("a port no host serves still matches", "postfix", "other.test", v4, udp25, 1),
			Entry("nothing matches", "postfix", "other.test", v6, tcp25, -1),
		)
	})

	It("leaves a probe no entry covers without a verb", func() {
		p := &policy.Policy{
			Users: []policy.User{{Name: "a"}},
			Hosts: []policy.Host{{Name: "h.test", Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Ports: []policy.PortRange{{First: 1, Last: 1, Proto: "tcp"}}}},
		}
		Expect(p.Matrix()).To(ConsistOf(HaveField("Rule", -1)))
		Expect(p.Matrix()[0].Expect).To(BeEmpty())
	})
})

var _ = Describe("Port ranges", func() {
	const sweep = `version: 1
users:
  www-data: {uid: 33}
hosts:
  sweep.example.test:
    addresses: [198.51.100.7, "2001:db8:5::7"]
    ports: [1-65535/tcp, 53/udp]
expect:
  - allow: {port: [25, 80-81/tcp], family: ipv4}
  - reject: {port: 1-1024}
  - drop: {}
`
	It("reads N-M in hosts and in expect, and keeps it as one range", func() {
		p := load(sweep)
		Expect(p.Hosts[0].Ports).To(Equal([]policy.PortRange{{First: 1, Last: 65535, Proto: "tcp"}, {First: 53, Last: 53, Proto: "udp"}}))
		Expect(p.Expect[0].Ports).To(Equal([]policy.PortRange{{First: 25, Last: 25, Proto: "tcp"}, {First: 80, Last: 81, Proto: "tcp"}}))
		Expect(p.Expect[1].Ports).To(Equal([]policy.PortRange{{First: 1, Last: 1024, Proto: "tcp"}}))
		Expect(p.Hosts[0].Ports[0].String()).To(Equal("1-65535/tcp"))
		Expect(p.Hosts[0].Ports[1].String()).To(Equal("53/udp"))
	})

	It("expands a range into one probe per port, and matches each by range", func() {
		p := load(sweep)
		Expect(p.Size()).To(Equal(2 * 65536))
		verbs := map[string]int{}
		n := 0
		for pr := range p.Probes() {
			if n == 0 {
				Expect(pr.String()).To(Equal("www-data -> sweep.example.test [198.51.100.7]:1/tcp (ipv4)"))
			}
			n++
			verbs[pr.Family()+" "+string(pr.Expect)]++
		}
		Expect(n).To(Equal(p.Size()))
		Expect(verbs).To(Equal(map[string]int{
			"ipv4 allow": 3, "ipv4 reject": 1021, "ipv4 drop": 65535 - 1024 + 1,
			"ipv6 reject": 1024, "ipv6 drop": 65535 - 1024 + 1,
		}))
		m := p.Matrix()
		Expect(m).To(HaveLen(p.Size()))
		Expect(m[24].String()).To(Equal("www-data -> sweep.example.test [198.51.100.7]:25/tcp (ipv4)"))
		Expect(m[24].Expect).To(Equal(policy.Allow))
		Expect(m[65535].String()).To(Equal("www-data -> sweep.example.test [198.51.100.7]:53/udp (ipv4)"))
		Expect(m[65535].Expect).To(Equal(policy.Drop)) // 1-1024 means tcp
	})

	DescribeTable("a range covers exactly its ports",
		func(r policy.PortRange, port policy.Port, in bool) {
			Expect(r.Contains(port)).To(Equal(in))
		},
		Entry("first", policy.PortRange{First: 10, Last: 20, Proto: "tcp"}, policy.Port{Number: 10, Proto: "tcp"}, true),
		Entry("last", policy.PortRange{First: 10, Last: 20, Proto: "tcp"}, policy.Port{Number: 20, Proto: "tcp"}, true),
		Entry("below", policy.PortRange{First: 10, Last: 20, Proto: "tcp"}, policy.Port{Number: 9, Proto: "tcp"}, false),
		Entry("above", policy.PortRange{First: 10, Last: 20, Proto: "tcp"}, policy.Port{Number: 21, Proto: "tcp"}, false),
		Entry("other protocol", policy.PortRange{First: 10, Last: 20, Proto: "tcp"}, policy.Port{Number: 15, Proto: "udp"}, false),
		Entry("65535", policy.PortRange{First: 1, Last: 65535, Proto: "udp"}, policy.Port{Number: 65535, Proto: "udp"}, true),
	)
})
