package scenarios_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"testing/fstest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
)

// dockerHost is a host with one user, two networks and three clients, one of
// them without IPv6, and expectations that select by client and address.
const dockerHost = `version: 1
name: docker-host
users:
  postfix: {uid: 107}
hosts:
  mx.example.test:
    addresses: [192.0.2.25, "2001:db8::25"]
    ports: [25/tcp, 443/tcp]
networks:
  docker0:
    addresses: [172.17.0.1/16, "fd00:db8:17::1/64"]
    clients:
      web: {addresses: [172.17.0.2, "fd00:db8:17::2"]}
      php: {addresses: [172.17.0.3]}
  br-0123456789ab:
    addresses: ["172.18.0.1/16"]
    clients:
      db: {addresses: [172.18.0.2]}
expect:
  - allow: {user: postfix, port: 25/tcp}
  - deny: {port: 25/tcp}
  - deny: {client: "*", address: "2000::/3"}
  - drop: {client: [php, db], address: 192.0.2.25}
  - allow: {}
`

var _ = Describe("networks and clients", func() {
	It("reads networks, their addresses and clients in file order", func() {
		p := load(dockerHost)
		Expect(p.Networks).To(Equal([]scenarios.Network{
			{
				Name:      "docker0",
				Addresses: []netip.Prefix{netip.MustParsePrefix("172.17.0.1/16"), netip.MustParsePrefix("fd00:db8:17::1/64")},
				Clients: []scenarios.Client{
					{Name: "web", Network: "docker0", Addresses: []netip.Addr{netip.MustParseAddr("172.17.0.2"), netip.MustParseAddr("fd00:db8:17::2")}},
					{Name: "php", Network: "docker0", Addresses: []netip.Addr{netip.MustParseAddr("172.17.0.3")}},
				},
			},
			{
				Name:      "br-0123456789ab",
				Addresses: []netip.Prefix{netip.MustParsePrefix("172.18.0.1/16")},
				Clients:   []scenarios.Client{{Name: "db", Network: "br-0123456789ab", Addresses: []netip.Addr{netip.MustParseAddr("172.18.0.2")}}},
			},
		}))
		gw, ok := p.Networks[0].Gateway("ipv6")
		Expect(ok).To(BeTrue())
		Expect(gw).To(Equal(netip.MustParsePrefix("fd00:db8:17::1/64")))
		_, ok = p.Networks[1].Gateway("ipv6")
		Expect(ok).To(BeFalse())
		Expect(p.Expect[2]).To(Equal(scenarios.Expectation{
			Verb: scenarios.Deny, Sources: scenarios.ClientSource, Addresses: []netip.Prefix{netip.MustParsePrefix("2000::/3")}, Line: 22,
		}))
		Expect(p.Expect[3].Clients).To(Equal([]string{"php", "db"}))
		Expect(p.Expect[3].Addresses).To(Equal([]netip.Prefix{netip.MustParsePrefix("192.0.2.25/32")}))
		Expect(p.Expect[1].Sources).To(Equal(scenarios.AnySource))
	})

	It("lets a policy of clients only leave users out", func() {
		p := load(`version: 1
hosts: {mx.example.test: {addresses: [192.0.2.25], ports: [25]}}
networks: {virbr0: {addresses: [192.168.122.1/24], clients: {vm: {addresses: [192.168.122.50]}}}}
expect: [deny: {}]
`)
		Expect(p.Users).To(BeEmpty())
		Expect(p.Matrix()).To(HaveLen(1))
		Expect(p.Matrix()[0].String()).To(Equal("vm@virbr0 -> mx.example.test [192.0.2.25]:25/tcp (ipv4)"))
	})

	It("expands every source × host × address × port, users first, each client in its network's order", func() {
		p := load(dockerHost)
		Expect(p.Size()).To(Equal(4 * 4))
		var got []string
		for _, pr := range p.Matrix() {
			got = append(got, pr.String()+" "+string(pr.Expect))
		}
		Expect(got).To(Equal([]string{
			"postfix -> mx.example.test [192.0.2.25]:25/tcp (ipv4) allow",
			"postfix -> mx.example.test [192.0.2.25]:443/tcp (ipv4) allow",
			"postfix -> mx.example.test [2001:db8::25]:25/tcp (ipv6) allow",
			"postfix -> mx.example.test [2001:db8::25]:443/tcp (ipv6) allow",
			"web@docker0 -> mx.example.test [192.0.2.25]:25/tcp (ipv4) deny",
			"web@docker0 -> mx.example.test [192.0.2.25]:443/tcp (ipv4) allow",
			"web@docker0 -> mx.example.test [2001:db8::25]:25/tcp (ipv6) deny",
			"web@docker0 -> mx.example.test [2001:db8::25]:443/tcp (ipv6) deny",
			"php@docker0 -> mx.example.test [192.0.2.25]:25/tcp (ipv4) deny",
			"php@docker0 -> mx.example.test [192.0.2.25]:443/tcp (ipv4) drop",
			"php@docker0 -> mx.example.test [2001:db8::25]:25/tcp (ipv6) deny",
			"php@docker0 -> mx.example.test [2001:db8::25]:443/tcp (ipv6) deny",
			"db@br-0123456789ab -> mx.example.test [192.0.2.25]:25/tcp (ipv4) deny",
			"db@br-0123456789ab -> mx.example.test [192.0.2.25]:443/tcp (ipv4) drop",
			"db@br-0123456789ab -> mx.example.test [2001:db8::25]:25/tcp (ipv6) deny",
			"db@br-0123456789ab -> mx.example.test [2001:db8::25]:443/tcp (ipv6) deny",
		}))
		for _, pr := range p.Matrix()[4:] {
			Expect(pr.Client).NotTo(BeNil())
			Expect(pr.User).To(Equal(scenarios.User{}), "a client's probe carries no user")
		}
		Expect(p.Matrix()[0].Client).To(BeNil())
	})

	DescribeTable("matches user entries to users only, client entries to clients only, and address by prefix",
		func(expect string, client bool, source, addr string, want int) {
			p := load(`version: 1
users: {postfix: {uid: 107}}
hosts: {mx.example.test: {addresses: [192.0.2.25, "2001:db8::25"], ports: [25]}}
networks: {docker0: {addresses: [172.17.0.1/16], clients: {web: {addresses: [172.17.0.2]}}}}
expect:
  - ` + expect + `
  - allow: {}
`)
			match := p.Match
			if client {
				match = p.MatchClient
			}
			got, ok := match(source, "mx.example.test", netip.MustParseAddr(addr), scenarios.Port{Number: 25, Proto: "tcp"})
			Expect(ok).To(BeTrue())
			Expect(got).To(Equal(want))
		},
		Entry("user \"*\" leaves clients out", `deny: {user: "*"}`, true, "web", "192.0.2.25", 1),
		Entry("user \"*\" takes users", `deny: {user: "*"}`, false, "postfix", "192.0.2.25", 0),
		Entry("client \"*\" leaves users out", `deny: {client: "*"}`, false, "postfix", "192.0.2.25", 1),
		Entry("client by name", `deny: {client: web}`, true, "web", "192.0.2.25", 0),
		Entry("neither: both kinds", `deny: {port: 25}`, true, "web", "192.0.2.25", 0),
		Entry("a prefix holds the address", `deny: {address: "2000::/3"}`, true, "web", "2001:db8::25", 0),
		Entry("a prefix of the other family does not", `deny: {address: "2000::/3"}`, true, "web", "192.0.2.25", 1),
		Entry("an address is itself", `deny: {address: [198.51.100.1, 192.0.2.25]}`, false, "postfix", "192.0.2.25", 0),
		Entry("another address is not", `deny: {address: 192.0.2.26}`, false, "postfix", "192.0.2.25", 1),
	)

	It("reports every error of the networks in one pass, in file order", func() {
		_, err := scenarios.LoadFS(fsOf(`version: 1
users: {postfix: {uid: 107}}
hosts: {mx.example.test: {addresses: [192.0.2.25], ports: [25]}}
networks:
  docker0:
    addresses: [172.17.0.1/16]
    clients:
      postfix: {addresses: [172.17.0.9]}
      web: {uid: 33, addresses: [10.0.0.2]}
  virbr0:
    clients:
      vm: {addresses: [192.168.122.2]}
expect: [deny: {}]
`), "p.yaml")
		var all scenarios.Errors
		Expect(errors.As(err, &all)).To(BeTrue(), "%v", err)
		var got []string
		for _, e := range all {
			got = append(got, e.Error())
		}
		Expect(got).To(Equal([]string{
			`p.yaml:8:7: client "postfix" of network "docker0" has the name of a user: users and clients share one namespace; rename the client`,
			`p.yaml:9:13: client "web" of network "docker0": uid does not apply to a client: it probes as the root of its own machine; to probe as a host identity, make it a user`,
			`p.yaml:9:34: client "web" of network "docker0": address 10.0.0.2 is outside the network's prefixes (172.17.0.0/16): a client's address lies inside one of them`,
			`p.yaml:10:3: network "virbr0" has no addresses: want the host's own address on it with its prefix, such as addresses: [172.17.0.1/16]`,
		}))
	})

	It("warns on a client entry in a policy without clients", func() {
		p := load(`version: 1
users: {postfix: {uid: 107}}
hosts: {mx.example.test: {addresses: [192.0.2.25, "2001:db8::25"], ports: [25]}}
expect:
  - deny: {address: "2000::/3", family: ipv4}
  - allow: {}
`)
		Expect(p.Warnings).To(HaveLen(1))
		Expect(p.Warnings[0].Line).To(Equal(5))
	})

	Describe("a client's result", func() {
		result := func() scenarios.Result {
			p := load(dockerHost)
			pr := p.Matrix()[6] // web@docker0 -> [2001:db8::25]:25/tcp, deny
			return scenarios.Result{Probe: pr, Observed: probe.Connected, Evidence: probe.Evidence{Kind: probe.Handshake},
				Detail: "220 mx.example.test ESMTP", Source: netip.MustParseAddr("2001:db8:1::10")}
		}

		It("has client, network and source in JSON in place of user and uid", func() {
			rep := &scenarios.Report{Policy: "docker-host", Results: []scenarios.Result{result()}}
			var out bytes.Buffer
			Expect(rep.WriteJSON(&out)).To(Succeed())
			var doc struct {
				Probes []map[string]any `json:"probes"`
			}
			Expect(json.Unmarshal(out.Bytes(), &doc)).To(Succeed())
			Expect(doc.Probes).To(HaveLen(1))
			Expect(doc.Probes[0]).To(HaveKeyWithValue("client", "web"))
			Expect(doc.Probes[0]).To(HaveKeyWithValue("network", "docker0"))
			Expect(doc.Probes[0]).To(HaveKeyWithValue("source", "2001:db8:1::10"))
			Expect(doc.Probes[0]).To(HaveKeyWithValue("address", "2001:db8::25"))
			Expect(doc.Probes[0]).NotTo(HaveKey("user"))
			Expect(doc.Probes[0]).NotTo(HaveKey("uid"))
			Expect(out.String()).To(ContainSubstring(`"client": "web",` + "\n      " + `"network": "docker0",` + "\n      " + `"host": "mx.example.test",`))
		})

		It("leaves source out until the lab has observed it", func() {
			r := result()
			r.Source = netip.Addr{}
			var out bytes.Buffer
			Expect((&scenarios.Report{Policy: "docker-host", Results: []scenarios.Result{r}}).WriteJSON(&out)).To(Succeed())
			Expect(out.String()).NotTo(ContainSubstring(`"source"`))
		})

		It("keeps a root user's uid 0 in JSON", func() {
			p := load(`version: 1
users: {root: {uid: 0}}
hosts: {mx.example.test: {addresses: [192.0.2.25], ports: [25]}}
expect: [deny: {}]
`)
			var out bytes.Buffer
			rep := &scenarios.Report{Policy: "p", Results: []scenarios.Result{{Probe: p.Matrix()[0], Observed: probe.Dropped}}}
			Expect(rep.WriteJSON(&out)).To(Succeed())
			Expect(out.String()).To(ContainSubstring(`"user": "root",` + "\n      " + `"uid": 0,`))
		})

		It("is a row web@docker0 in the table and a case of its own in JUnit", func() {
			rep := &scenarios.Report{Policy: "docker-host", Results: []scenarios.Result{result()}}
			var table, junit bytes.Buffer
			Expect(rep.WriteTable(&table, false)).To(Succeed())
			Expect(table.String()).To(MatchRegexp(`(?m)^web@docker0 `))
			Expect(rep.WriteJUnit(&junit)).To(Succeed())
			Expect(junit.String()).To(ContainSubstring(`classname="docker-host.web@docker0.ipv6" name="web@docker0 -&gt; mx.example.test [2001:db8::25]:25/tcp (ipv6)"`))
			Expect(junit.String()).To(ContainSubstring("egresslab exec -f egresslab.yaml --client web -- nc"))
		})
	})

})

func fsOf(policy string) fstest.MapFS {
	return fstest.MapFS{"p.yaml": {Data: []byte(policy)}}
}
