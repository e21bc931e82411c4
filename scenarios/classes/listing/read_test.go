package listing_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/scenarios/classes/listing"
)

var _ = Describe("bad listings", func() {
	DescribeTable("name the line of a save text they cannot read",
		func(l listing.Listings, want string) {
			_, err := listing.Read(l)
			Expect(err).To(MatchError(want))
		},
		Entry("an unknown command", listing.Listings{IPTablesLegacy: []byte("*filter\n:OUTPUT ACCEPT [0:0]\n-X bogus\nCOMMIT\n")},
			`iptables-legacy-save line 3: unexpected "-X bogus" (want *table, :chain, -A or COMMIT)`),
		Entry("a table without COMMIT", listing.Listings{IPTablesNFT: []byte("*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j DROP\n")},
			`iptables-nft-save: table filter has no COMMIT`),
		Entry("an ipset add to a set never created", listing.Listings{IPSet: []byte("create a hash:ip family inet\nadd b 192.0.2.1\n")},
			`ipset save line 2: add to b, which was not created`),
	)

	It("says nft's listing is not JSON", func() {
		_, err := listing.Read(listing.Listings{NFT: []byte("table ip filter {")})
		Expect(err).To(MatchError(HavePrefix("read nft -j list ruleset: ")))
	})
})

var _ = Describe("a forwarded packet's rules", func() {
	// The client's packet comes in on its network's bridge and leaves by
	// the uplink; its answer comes in by the uplink and leaves by the bridge.
	save := []byte(`*filter
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -i docker0 -o eth0 -p tcp --dport 25 -j DROP
-A FORWARD -i br+ -j ACCEPT
-A FORWARD -m owner --uid-owner 107 -j ACCEPT
-A FORWARD -m owner ! --uid-owner 107 -j ACCEPT
COMMIT
`)

	It("meet a network's clients only where their interface matches name its bridge and the uplink", func() {
		rs, err := listing.Read(listing.Listings{IPTablesLegacy: save})
		Expect(err).NotTo(HaveOccurred())
		meets := map[int][]string{}
		for _, r := range rs.Forward {
			for _, network := range []string{"docker0", "br-x"} {
				if r.MeetsNetwork(network, "eth0") {
					meets[r.Ref.Line] = append(meets[r.Ref.Line], network)
				}
			}
		}
		// each rule is read twice, as the client's packet and as its answer
		// (whose interfaces are the other way round): line 4 meets
		// docker0's packets, line 5 br-x's but not their answers (which
		// come in by the uplink); an owner match never meets a packet
		// without a socket, xt_owner's negated one always does
		Expect(meets).To(Equal(map[int][]string{
			4: {"docker0"},
			5: {"br-x"},
			7: {"docker0", "br-x", "docker0", "br-x"},
		}))
		Expect(rs.Rules).To(BeEmpty())
	})
})
