package classes_test

import (
	"fmt"
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/scenarios/classes"
)

func fwdBrief(c classes.Class) string {
	r := c.Representative
	return fmt.Sprintf("%s %v %v from %v to %v port %v as %s %s", c.Network, c.Family, c.Proto, c.Sources, c.Addresses, c.Ports, r.Client, r.Src)
}

var _ = Describe("forwarded traffic", func() {
	// Docker's DOCKER-USER with an admin's mail block, and an exception for
	// the upper half of the bridge's prefix that no policy client is in.
	save := []byte(`*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A DOCKER-USER -s 172.17.128.0/17 -i docker0 -p tcp --dport 25 -j RETURN
-A DOCKER-USER -i docker0 -p tcp -m tcp --dport 25 -j DROP
-A DOCKER-USER -i br-other -p tcp --dport 80 -j DROP
-A OUTPUT -m owner --uid-owner 107 -j ACCEPT
COMMIT
`)
	nets := []classes.Network{{Name: "docker0", Prefixes: []netip.Prefix{netip.MustParsePrefix("172.17.0.1/16")},
		Clients: []classes.Client{{Name: "php", Addrs: []netip.Addr{netip.MustParseAddr("172.17.0.3")}}}}}

	It("splits each network's clients on source address, destination and port, never on the host's users", func() {
		rs, err := classes.Read(classes.Listings{IPTablesLegacy: save})
		Expect(err).NotTo(HaveOccurred())
		cs, err := classes.SplitForward(rs, nets, "eth0", classes.Hints{Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.25")}, Ports: []uint16{25}})
		Expect(err).NotTo(HaveOccurred())
		var briefs []string
		for _, c := range cs {
			briefs = append(briefs, fwdBrief(c))
			Expect(c.Source.UIDs).To(BeNil())
		}
		// the RETURN's source range is a class of its own, probed by a
		// synthetic client; br-other's rule splits nothing here
		Expect(briefs).To(ConsistOf(
			"docker0 ipv4 tcp from [172.17.0.0/17] to [0.0.0.0/0] port [25] as php 172.17.0.3",
			"docker0 ipv4 tcp from [172.17.128.0/17] to [0.0.0.0/0] port [25] as  172.17.128.1",
			"docker0 ipv4 tcp from [172.17.0.0/16] to [0.0.0.0/0] port [1-24 26-65535] as php 172.17.0.3",
			"docker0 ipv4 udp from [172.17.0.0/16] to [0.0.0.0/0] port [1-65535] as php 172.17.0.3",
		))
	})

	It("leaves the host's own classes as they were", func() {
		rs, err := classes.Read(classes.Listings{IPTablesLegacy: save})
		Expect(err).NotTo(HaveOccurred())
		for _, r := range rs.Rules {
			Expect(r.Ref.Chain).NotTo(Or(Equal("FORWARD"), Equal("DOCKER-USER")))
		}
	})
})
