package classes_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/scenarios/classes"
)

// tailsUsers are the eight identities Tails 1.5's rules name.
var tailsUsers = []classes.User{
	{Name: "root", UID: 0}, {Name: "debian-tor", UID: 107, GID: 116}, {Name: "amnesia", UID: 1000, GID: 1000},
	{Name: "vidalia", UID: 113, GID: 121}, {Name: "i2psvc", UID: 105, GID: 110}, {Name: "tails-persistence-setup", UID: 114, GID: 122},
	{Name: "proxy", UID: 13, GID: 13}, {Name: "nobody", UID: 65534, GID: 65534},
}

var _ = Describe("Tails 1.5's published ruleset", func() {
	It("splits into classes at every uid, loopback address and port its rules name, in milliseconds", func() {
		start := time.Now()
		cs, rs := split(nftListings("tails"), classes.Hints{Users: tailsUsers})
		Expect(time.Since(start)).To(BeNumerically("<", time.Second))
		Expect(rs.Unsplit).To(BeEmpty()) // state, tcp flags and owner are all read
		b := briefs(cs)
		Expect(b).To(ContainElement("ipv4 tcp uid [0] gid " + allIDs + " to [127.0.0.1/32] port [9050]"))
		Expect(b).To(ContainElement("ipv4 tcp uid [114] gid " + allIDs + " to [10.0.0.0/8] port [53]"))
		for _, c := range cs {
			if c.Family == classes.IPv6 {
				Expect(c.Ports).To(Equal([]classes.PortRange{{First: 1, Last: 65535}})) // no ip6tables rules in the dump
			}
		}
		GinkgoWriter.Printf("Tails 1.5: %d classes in %v\n", len(cs), time.Since(start))
	})
})

var _ = Describe("a ruleset of 20,000 rules per family", func() {
	It("splits with a policy user in seconds: the user's groups are checked against the rules once, not once per class", func() {
		rs, err := classes.Read(classes.Listings{IPTablesLegacy: bigRuleset(20000, false), IP6TablesLegacy: bigRuleset(20000, true)})
		Expect(err).NotTo(HaveOccurred())
		start := time.Now()
		cs, err := classes.Split(rs, classes.Hints{Users: []classes.User{{Name: "app", UID: 1001}}})
		Expect(err).NotTo(HaveOccurred())
		Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second)) // 1 s idle; 20 s when it was once per class
		Expect(cs).To(HaveLen(64004))
		Expect(cs).To(ContainElement(HaveField("Representative.User", "app")))
	})
})

func BenchmarkTails(b *testing.B) {
	l := classes.Listings{NFT: mustRead(b, "testdata/tails.nft.json"), IPTablesNFT: mustRead(b, "testdata/tails.nftsave.v4")}
	for b.Loop() {
		rs, err := classes.Read(l)
		if err != nil {
			b.Fatal(err)
		}
		cs, err := classes.Split(rs, classes.Hints{Users: tailsUsers})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(cs)), "classes")
	}
}

// bigRuleset is an iptables-save text of n rules: a blocklist of /24s (one
// dimension) and per-host service rules for one uid each (three), the shape
// of a large host firewall.
func bigRuleset(n int, v6 bool) []byte {
	var s strings.Builder
	s.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n")
	for i := 0; i < n; i++ {
		a, c := i/256%256, i%256
		switch {
		case i%2 == 0 && v6:
			fmt.Fprintf(&s, "-A OUTPUT -d 2001:db8:%x:%x::/64 -j DROP\n", a, c)
		case i%2 == 0:
			fmt.Fprintf(&s, "-A OUTPUT -d 10.%d.%d.0/24 -j DROP\n", a, c)
		case v6:
			fmt.Fprintf(&s, "-A OUTPUT -d 2001:db8:ffff::%x:%x/128 -p tcp -m tcp --dport %d -m owner --uid-owner %d -j ACCEPT\n", a, c, 1+i%2000, 1000+i%500)
		default:
			fmt.Fprintf(&s, "-A OUTPUT -d 172.16.%d.%d/32 -p tcp -m tcp --dport %d -m owner --uid-owner %d -j ACCEPT\n", a, c, 1+i%2000, 1000+i%500)
		}
	}
	s.WriteString("COMMIT\n")
	return []byte(s.String())
}

func Benchmark20000RulesPerFamily(b *testing.B) {
	l := classes.Listings{IPTablesLegacy: bigRuleset(20000, false), IP6TablesLegacy: bigRuleset(20000, true)}
	for b.Loop() {
		rs, err := classes.Read(l)
		if err != nil {
			b.Fatal(err)
		}
		// one policy user, as testdata/bench/big20k.sh's policy has: a
		// hint user once cost a pass over every rule for every class
		cs, err := classes.Split(rs, classes.Hints{Users: []classes.User{{Name: "app", UID: 1001}}})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(cs)), "classes")
	}
}

func mustRead(b *testing.B, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}
