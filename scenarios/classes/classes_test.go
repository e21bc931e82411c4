package classes_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/scenarios/classes"
)

// fixture reads testdata/NAME, or nothing if it does not exist (a family
// the fixture left empty).
func fixture(name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if os.IsNotExist(err) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	return b
}

// nftListings are NAME's listings as iptables-nft left them.
func nftListings(name string) classes.Listings {
	return classes.Listings{NFT: fixture(name + ".nft.json"), IPTablesNFT: fixture(name + ".nftsave.v4"), IP6TablesNFT: fixture(name + ".nftsave.v6")}
}

// legacyListings are NAME's listings as iptables-legacy left them.
func legacyListings(name string) classes.Listings {
	return classes.Listings{IPTablesLegacy: fixture(name + ".legacy.v4"), IP6TablesLegacy: fixture(name + ".legacy.v6"), IPSet: fixture(name + ".save")}
}

func split(l classes.Listings, hints classes.Hints) ([]classes.Class, *classes.Ruleset) {
	rs, err := classes.Read(l)
	Expect(err).NotTo(HaveOccurred())
	cs, err := classes.Split(rs, hints)
	Expect(err).NotTo(HaveOccurred())
	return cs, rs
}

// brief is a class in one line: family proto uid gid addresses ports.
func brief(c classes.Class) string {
	return fmt.Sprintf("%v %v uid %v gid %v to %v port %v", c.Family, c.Proto, c.Source.UIDs, c.Source.GIDs, c.Addresses, c.Ports)
}

func briefs(cs []classes.Class) []string {
	var out []string
	for _, c := range cs {
		out = append(out, brief(c))
	}
	return out
}

const allIDs = "[0-4294967294]"

var _ = Describe("the seed's rules (IPv4 only)", func() {
	seed := []string{
		"ipv4 tcp uid " + allIDs + " gid " + allIDs + " to [0.0.0.0/0] port [1-24 26-65535]",
		"ipv4 tcp uid [0-106 108-4294967294] gid " + allIDs + " to [0.0.0.0/0] port [25]",
		"ipv4 tcp uid [107] gid " + allIDs + " to [0.0.0.0/0] port [25]",
		"ipv4 udp uid " + allIDs + " gid " + allIDs + " to [0.0.0.0/0] port [1-65535]",
		"ipv6 tcp uid " + allIDs + " gid " + allIDs + " to [::/0] port [1-65535]",
		"ipv6 udp uid " + allIDs + " gid " + allIDs + " to [::/0] port [1-65535]",
	}
	DescribeTable("split into the same six classes whoever loaded them, IPv6's own",
		func(l classes.Listings) {
			cs, _ := split(l, classes.Hints{})
			Expect(briefs(cs)).To(Equal(seed))
			for _, c := range cs {
				Expect(c.Sampled).To(BeFalse(), brief(c))
			}
		},
		Entry("iptables-nft (nft's JSON and iptables-nft-save)", nftListings("seed")),
		Entry("iptables-legacy", legacyListings("seed")),
	)

	It("probes each class at a policy value where it holds one, else at a synthetic cell", func() {
		hints := classes.Hints{
			Users: []classes.User{{Name: "postfix", UID: 107, GID: 113}, {Name: "www-data", UID: 33, GID: 33}},
			Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::25"), netip.MustParseAddr("192.0.2.25")},
			Ports: []uint16{25},
		}
		cs, _ := split(nftListings("seed"), hints)
		reps := map[string]classes.Representative{}
		for _, c := range cs {
			reps[brief(c)] = c.Representative
		}
		Expect(reps[seed[2]]).To(Equal(classes.Representative{User: "postfix", UID: 107, GID: 113, Groups: nil,
			Addr: netip.MustParseAddr("192.0.2.25"), Port: 25, PolicyUser: true, PolicyAddr: true, PolicyPort: true}))
		Expect(reps[seed[1]].User).To(Equal("www-data"))
		Expect(reps[seed[0]]).To(Equal(classes.Representative{User: "postfix", UID: 107, GID: 113, Groups: nil,
			Addr: netip.MustParseAddr("192.0.2.25"), Port: 1, PolicyUser: true, PolicyAddr: true}))
		Expect(reps[seed[4]].Addr).To(Equal(netip.MustParseAddr("2001:db8::25")))
	})

	It("reads iptables-nft's owner match as unsplit when no iptables-nft-save text comes with nft's JSON", func() {
		cs, rs := split(classes.Listings{NFT: fixture("seed.nft.json")}, classes.Hints{})
		Expect(rs.Unsplit).To(HaveLen(1))
		Expect(rs.Unsplit[0].Match).To(HavePrefix("xt match owner"))
		Expect(rs.Unsplit[0].Rule.String()).To(Equal("nft ip filter OUTPUT handle 4"))
		Expect(briefs(cs)).To(ContainElement("ipv4 tcp uid " + allIDs + " gid " + allIDs + " to [0.0.0.0/0] port [25]"))
		for _, c := range cs {
			Expect(c.Sampled).To(Equal(c.Family == classes.IPv4 && c.Proto == classes.TCP && c.Ports[0].First == 25), brief(c))
		}
	})
})

var whole = map[string]string{"ipv4": "[0.0.0.0/0]", "ipv6": "[::/0]"}

var _ = Describe("a uid range, a negated range and gid matches (both families)", func() {
	DescribeTable("split the uids where the rules draw them, probed at each range's low end",
		func(l classes.Listings) {
			cs, _ := split(l, classes.Hints{})
			byBrief := map[string]classes.Class{}
			for _, c := range cs {
				byBrief[brief(c)] = c
			}
			for _, fam := range []string{"ipv4", "ipv6"} {
				w := whole[fam]
				Expect(byBrief).To(HaveKey(fam + " tcp uid [60001-4294967294] gid " + allIDs + " to " + w + " port [25]"))
				Expect(byBrief[fam+" tcp uid [60001-4294967294] gid "+allIDs+" to "+w+" port [25]"].Representative.UID).To(Equal(uint32(60001)))
				Expect(byBrief).To(HaveKey(fam + " tcp uid [1000-4294967294] gid " + allIDs + " to " + w + " port [443]"))
				Expect(byBrief[fam+" tcp uid [1000-4294967294] gid "+allIDs+" to "+w+" port [443]"].Representative.UID).To(Equal(uint32(1000)))
				Expect(byBrief).To(HaveKey(fam + " tcp uid " + allIDs + " gid [200-299] to " + w + " port [8080]"))
				suppl := byBrief[fam+" tcp uid "+allIDs+" gid [100] to "+w+" port [80]"]
				Expect(suppl.Source.SupplGroups).To(BeTrue())
				Expect(suppl.Representative.GID).To(Equal(uint32(100)))
			}
		},
		Entry("iptables-nft", nftListings("uidrange")),
		Entry("iptables-legacy", legacyListings("uidrange")),
	)

	It("passes over a policy user whose supplementary groups a --suppl-groups rule sees", func() {
		hints := classes.Hints{Users: []classes.User{{Name: "staff", UID: 1000, GID: 1000, Groups: []uint32{100}}, {Name: "alice", UID: 1001, GID: 1001}}}
		cs, _ := split(nftListings("uidrange"), hints)
		for _, c := range cs {
			Expect(c.Representative.User).NotTo(Equal("staff"), brief(c))
		}
	})
})

var _ = Describe("ports: multiport, ranges, a negated range, UDP only", func() {
	It("splits ports per protocol, only where a rule for that protocol draws them", func() {
		cs, rs := split(nftListings("ports"), classes.Hints{})
		// 1024-2000 is in the multiport rule and, towards 192.0.2.0/24, in
		// the negated range's rule too: four classes, not one
		const any = " uid " + allIDs + " gid " + allIDs
		Expect(briefs(cs)).To(Equal([]string{
			"ipv4 tcp" + any + " to [0.0.0.0/0] port [1-24 26-464 466-586 588-999]",
			"ipv4 tcp" + any + " to [0.0.0.0/0] port [25 465 587 1000-1023]",
			"ipv4 tcp" + any + " to [0.0.0.0-192.0.1.255 192.0.3.0-255.255.255.255] port [1024-2000]",
			"ipv4 tcp" + any + " to [192.0.2.0/24] port [1024-2000]",
			"ipv4 tcp" + any + " to [0.0.0.0-192.0.1.255 192.0.3.0-255.255.255.255] port [2001-65535]",
			"ipv4 tcp" + any + " to [192.0.2.0/24] port [2001-65535]",
			"ipv4 udp" + any + " to [0.0.0.0/0] port [1-4999 5101-65535]",
			"ipv4 udp" + any + " to [0.0.0.0/0] port [5000-5100]",
			"ipv6 tcp" + any + " to [::/0] port [1-65535]",
			"ipv6 udp" + any + " to [::/0] port [1-65535]",
		}))
		Expect(fmt.Sprint(rs.Notes)).To(ContainSubstring("protocol icmp (not probed)"))
	})
})

var _ = Describe("an inet table with sets of prefixes, named interval sets, skuid/skgid and stateful matches", func() {
	It("splits addresses by set, both families from one table, and marks every class the unsplit rules touch", func() {
		cs, rs := split(classes.Listings{NFT: fixture("sets.nft.json")}, classes.Hints{})
		b := briefs(cs)
		const any = " uid " + allIDs + " gid " + allIDs
		Expect(b).To(ContainElements(
			"ipv4 tcp uid [107] gid "+allIDs+" to [10.0.0.0/8 192.0.2.1-192.0.2.2] port [25]",
			"ipv4 tcp"+any+" to [198.51.100.0/24 203.0.113.10-203.0.113.20] port [80 443 8000-8999]",
			"ipv6 tcp uid [33] gid "+allIDs+" to [2001:db8::/32] port [8080]",
			"ipv4 udp uid [1000-60000] gid "+allIDs+" to [0.0.0.0/0] port [53]",
			"ipv6 udp uid [1000-60000] gid "+allIDs+" to [::/0] port [53]",
			"ipv6 udp uid "+allIDs+" gid [100] to [::/0] port [123]",
			"ipv6 udp"+any+" to [::/0] port [5353]",
		))
		var unsplit []string
		for _, u := range rs.Unsplit {
			unsplit = append(unsplit, u.Match+" @ "+u.Rule.String())
		}
		Expect(unsplit).To(ConsistOf("ct helper @ nft inet egress out handle 13", "meta mark @ nft inet egress out handle 14"))
		for _, c := range cs {
			Expect(c.Sampled).To(BeTrue(), brief(c)) // ct helper and meta mark apply to every cell
		}
		Expect(fmt.Sprint(rs.Notes)).To(ContainSubstring("meta oifname == lo"))
	})
})

var _ = Describe("matches that cannot be split", func() {
	DescribeTable("are named with their rule, and only the classes they touch are sampled",
		func(l classes.Listings) {
			cs, rs := split(l, classes.Hints{})
			var names []string
			for _, u := range rs.Unsplit {
				names = append(names, u.Match)
			}
			Expect(names).To(ConsistOf("-m mark", "-m limit", "-m recent", "-m string", "-m cgroup", "-m statistic", "--sport (the kernel's choice of source port)"))
			Expect(rs.Unsplit[0].Rule.Text).To(Equal("-A OUTPUT -m mark --mark 0x1 -j ACCEPT"))
			for _, c := range cs {
				Expect(c.Sampled).To(Equal(c.Family == classes.IPv4), brief(c))
			}
			for _, c := range cs {
				if c.Family == classes.IPv4 && c.Proto == classes.TCP && c.Ports[0].First == 8080 {
					var touching []string
					for _, u := range c.Unsplit {
						touching = append(touching, u.Match)
					}
					Expect(touching).To(ConsistOf("-m mark", "-m limit", "-m recent", "-m cgroup", "--sport (the kernel's choice of source port)"))
					return
				}
			}
			Fail("no class for port 8080")
		},
		Entry("iptables-nft", nftListings("unsplit")),
		Entry("iptables-legacy", legacyListings("unsplit")),
	)
})

var _ = Describe("legacy rules on ipsets", func() {
	It("reads the sets' addresses and ports from ipset save", func() {
		cs, rs := split(legacyListings("ipset"), classes.Hints{})
		Expect(rs.Unsplit).To(BeEmpty())
		Expect(briefs(cs)).To(ContainElements(
			"ipv4 tcp uid [107] gid "+allIDs+" to [198.51.100.0/24 203.0.113.7/32] port [25 587]",
			"ipv6 udp uid "+allIDs+" gid "+allIDs+" to [2001:db8:bad::/48] port [1-65535]",
		))
	})

	It("names a rule on a set that ipset save does not hold", func() {
		_, rs := split(classes.Listings{IPTablesLegacy: fixture("ipset.legacy.v4")}, classes.Hints{})
		Expect(rs.Unsplit).NotTo(BeEmpty())
		Expect(rs.Unsplit[0].Match).To(Equal("-m set --match-set blocked dst (no ipset save names it)"))
	})
})
