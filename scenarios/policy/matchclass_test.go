package policy_test

import (
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/scenarios/policy"
)

// verify --complete checks each class's representative against expect: a
// synthetic identity ("") and an address outside every host are covered
// only by entries that leave user, or host, open, or by a matching address.
var _ = DescribeTable("which expectation covers a class of verify --complete",
	func(expect, user, addr string, want int) {
		p := load(`version: 1
users: {postfix: {uid: 107}}
hosts: {mx.example.test: {addresses: [192.0.2.25, "2001:db8::25"], ports: [25]}}
networks: {docker0: {addresses: [172.17.0.1/16], clients: {web: {addresses: [172.17.0.2]}}}}
expect:
  - ` + expect + `
  - allow: {}
`)
		got, ok := p.MatchClass(user, netip.MustParseAddr(addr), policy.Port{Number: 443, Proto: "tcp"})
		Expect(ok).To(BeTrue())
		Expect(got).To(Equal(want))
	},
	Entry("an address prefix holds an address outside every host", `deny: {address: "198.51.100.0/24"}`, "", "198.51.100.7", 0),
	Entry("an address prefix that does not hold it", `deny: {address: "198.51.100.0/24"}`, "", "203.0.113.7", 1),
	Entry("a prefix of the other family", `deny: {address: "2000::/3"}`, "", "198.51.100.7", 1),
	Entry("an address inside a host, by prefix", `deny: {address: "2000::/3"}`, "postfix", "2001:db8::25", 0),
	Entry("a named host leaves outside addresses out", `deny: {host: mx.example.test}`, "", "198.51.100.7", 1),
	Entry("user \"*\" covers a synthetic identity", `deny: {user: "*", address: "198.51.100.7"}`, "", "198.51.100.7", 0),
	Entry("a named user does not", `deny: {user: postfix}`, "", "198.51.100.7", 1),
	Entry("a client entry never covers the host's own traffic", `deny: {client: "*"}`, "postfix", "192.0.2.25", 1),
)

// A class of clients' forwarded traffic is represented by a policy client
// or by a synthetic one (""), which only entries naming no client cover.
var _ = DescribeTable("which expectation covers a class of clients' forwarded traffic",
	func(expect, client string, want int) {
		p := load(`version: 1
users: {postfix: {uid: 107}}
hosts: {mx.example.test: {addresses: [192.0.2.25, "2001:db8::25"], ports: [25]}}
networks: {docker0: {addresses: [172.17.0.1/16], clients: {web: {addresses: [172.17.0.2]}}}}
expect:
  - ` + expect + `
  - allow: {}
`)
		got, ok := p.MatchClientClass(client, netip.MustParseAddr("192.0.2.25"), policy.Port{Number: 25, Proto: "tcp"})
		Expect(ok).To(BeTrue())
		Expect(got).To(Equal(want))
	},
	Entry("a named client covers its own class", `deny: {client: web}`, "web", 0),
	Entry("a named client does not cover a synthetic one", `deny: {client: web}`, "", 1),
	Entry("client \"*\" covers a synthetic one", `deny: {client: "*"}`, "", 0),
	Entry("an entry naming no source covers a synthetic one", `deny: {host: mx.example.test}`, "", 0),
	Entry("a user entry never covers a client's class", `deny: {user: "*"}`, "web", 1),
)
