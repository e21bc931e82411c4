package policy_test

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing/fstest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/scenarios/policy"
)

const badDir = "../../testdata/bad"

// wantLine is a bad file's first line: "# want: LINE:COL: substring".
var wantLine = regexp.MustCompile(`^# want: (\d+):(\d+): (.+)$`)

// badEntries is one table entry per bad policy file, read when the tree is
// built; a file without a want line fails its entry.
func badEntries() []TableEntry {
	files, err := filepath.Glob(filepath.Join(badDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return []TableEntry{Entry("the corpus", func() { Fail("no bad policies in " + badDir) })}
	}
	var entries []TableEntry
	for _, f := range files {
		entries = append(entries, Entry(filepath.Base(f), f))
	}
	return entries
}

func mustLoad(file string) *policy.Policy {
	GinkgoHelper()
	p, err := policy.Load(file)
	Expect(err).NotTo(HaveOccurred())
	return p
}

var _ = Describe("Load", func() {
	It("reads a whole policy", func() {
		p := mustLoad("../../testdata/golden/mail.yaml")
		Expect(p.Name).To(Equal("mail-egress"))
		Expect(p.File).To(Equal("../../testdata/golden/mail.yaml"))
		Expect(p.Users).To(Equal([]policy.User{
			{Name: "postfix", UID: 107, GID: 114},
			{Name: "www-data", UID: 33, GID: 33, Groups: []uint32{1001}},
		}))
		Expect(p.Groups).To(Equal([]policy.Group{{Name: "mailers", GID: 1001}}))
		Expect(p.Hosts).To(Equal([]policy.Host{
			{
				Name:      "mx.example.test",
				Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.25"), netip.MustParseAddr("2001:db8::25")},
				Ports:     []policy.PortRange{{First: 25, Last: 25, Proto: "tcp"}, {First: 587, Last: 587, Proto: "tcp"}},
			},
			{
				Name:      "relay.localhost",
				Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
				Ports:     []policy.PortRange{{First: 25, Last: 25, Proto: "tcp"}},
			},
		}))
		Expect(p.MX).To(Equal([]policy.MX{{Domain: "example.test", Host: "mx.example.test"}}))
		Expect(p.Lab).To(Equal(policy.Lab{
			Uplink:    "eth0",
			Addresses: []netip.Prefix{netip.MustParsePrefix("203.0.113.10/24"), netip.MustParsePrefix("2001:db8:1::10/64")},
			Backend:   "nft",
		}))
		Expect(p.Expect).To(Equal([]policy.Expectation{
			{Verb: policy.Allow, Sources: policy.UserSource, Users: []string{"postfix"}, Ports: []policy.PortRange{{First: 25, Last: 25, Proto: "tcp"}, {First: 587, Last: 587, Proto: "tcp"}}, Line: 31},
			{Verb: policy.Deny, Ports: []policy.PortRange{{First: 25, Last: 25, Proto: "tcp"}, {First: 465, Last: 465, Proto: "tcp"}, {First: 587, Last: 587, Proto: "tcp"}}, Line: 32},
			{Verb: policy.Allow, Line: 33},
		}))
	})

	It("reads the ruleset files the policy names, relative to it", func() {
		p := mustLoad("../../testdata/golden/mail.yaml")
		v4, err := os.ReadFile("../../testdata/golden/rules.v4")
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Ruleset.IPTables).To(Equal(&policy.RulesetFile{Path: "rules.v4", Data: v4}))
		Expect(p.Ruleset.IP6Tables.Path).To(Equal("rules.v6"))
		Expect(string(p.Ruleset.IP6Tables.Data)).To(ContainSubstring("--dport 587"))
		Expect(p.Ruleset.NFT).To(BeNil())
		Expect(p.Ruleset.Script).To(BeNil())
	})

	It("reads every feature of the format at once", func() {
		p := mustLoad("../../testdata/golden/full.yaml")
		Expect(p.Name).To(Equal("full.policy-1"))
		Expect(p.Users).To(HaveLen(4))
		Expect(p.Users[0]).To(Equal(policy.User{Name: "root"}))
		Expect(p.Users[2]).To(Equal(policy.User{Name: "www-data", UID: 33, GID: 33, Groups: []uint32{1001, 1002}}))
		Expect(p.Groups).To(HaveLen(3))
		Expect(p.Hosts[1].Ports).To(Equal([]policy.PortRange{{First: 53, Last: 53, Proto: "udp"}, {First: 53, Last: 53, Proto: "tcp"}}))
		Expect(p.Hosts[2].Ports).To(Equal(p.Hosts[0].Ports))
		Expect(p.MX).To(HaveLen(2))
		Expect(p.Lab).To(Equal(policy.Lab{
			Uplink:    "ens3",
			Addresses: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::10/64"), netip.MustParsePrefix("203.0.113.10/24")},
			Backend:   "legacy",
		}))
		for _, f := range []*policy.RulesetFile{p.Ruleset.IPTables, p.Ruleset.IP6Tables, p.Ruleset.NFT, p.Ruleset.Script} {
			Expect(f).NotTo(BeNil())
			Expect(f.Data).NotTo(BeEmpty())
		}
		Expect(p.Expect).To(HaveLen(6))
		Expect(p.Expect[3]).To(Equal(policy.Expectation{
			Verb: policy.Allow, Sources: policy.UserSource, Hosts: []string{"ns.example.test"},
			Ports: []policy.PortRange{{First: 53, Last: 53, Proto: "udp"}, {First: 53, Last: 53, Proto: "tcp"}}, Line: 46,
		}))
		Expect(p.Expect[5]).To(Equal(policy.Expectation{Verb: policy.Deny, Line: 51}))
		Expect(p.Matrix()).To(HaveLen(4 * 12))
	})

	It("fills in the defaults", func() {
		p := load(`version: 1
users: {nobody: {uid: 65534}}
hosts: {mx.example.test: {addresses: [192.0.2.25], ports: [25]}}
expect: [allow: {}]
`)
		Expect(p.Name).To(Equal("p"))
		Expect(p.Users[0].GID).To(Equal(uint32(65534)))
		Expect(p.Lab).To(Equal(policy.Lab{
			Uplink:    "eth0",
			Addresses: []netip.Prefix{netip.MustParsePrefix("203.0.113.10/24"), netip.MustParsePrefix("2001:db8:1::10/64")},
			Backend:   "nft",
		}))
		Expect(p.Groups).To(BeEmpty())
		Expect(p.Ruleset).To(Equal(policy.Ruleset{}))
	})

	It("picks default lab addresses whose prefixes hold no host", func() {
		p := load(`version: 1
users: {nobody: {uid: 65534}}
hosts:
  a.test: {addresses: [203.0.113.1, "2001:db8:1::1"], ports: [25]}
  b.test: {addresses: [198.51.100.7, "2001:db8:2::1"], ports: [25]}
expect: [allow: {}]
`)
		Expect(p.Lab.Addresses).To(Equal([]netip.Prefix{
			netip.MustParsePrefix("192.0.2.10/24"), netip.MustParsePrefix("2001:db8:ffff::10/64"),
		}))
	})

	It("defaults only the family lab.addresses leaves out", func() {
		p := load(`version: 1
users: {nobody: {uid: 65534}}
hosts: {a.test: {addresses: [192.0.2.1], ports: [25]}}
lab: {addresses: ["2001:db8:77::2/48"], uplink: ens3, backend: legacy}
expect: [allow: {}]
`)
		Expect(p.Lab).To(Equal(policy.Lab{
			Uplink:    "ens3",
			Addresses: []netip.Prefix{netip.MustParsePrefix("2001:db8:77::2/48"), netip.MustParsePrefix("203.0.113.10/24")},
			Backend:   "legacy",
		}))
	})

	It("takes null for the optional sections and an expectation's body", func() {
		p := load(`version: 1
users: {postfix: {uid: 107}}
hosts: {mx.example.test: {addresses: [192.0.2.25], ports: ["25", 53/udp]}}
groups:
mx:
lab:
ruleset:
expect:
  - deny:
`)
		Expect(p.Expect).To(Equal([]policy.Expectation{{Verb: policy.Deny, Line: 9}}))
		Expect(p.Hosts[0].Ports).To(Equal([]policy.PortRange{{First: 25, Last: 25, Proto: "tcp"}, {First: 53, Last: 53, Proto: "udp"}}))
	})

	It("follows anchors and aliases", func() {
		p := load(`version: 1
users: {postfix: {uid: 107}, www-data: {uid: 33}}
hosts:
  mx.example.test: {addresses: [192.0.2.25], ports: &mail [25/tcp, 587/tcp]}
  smtp.example.test: {addresses: [192.0.2.26], ports: *mail}
expect:
  - allow: {user: postfix, port: *mail}
  - deny: {}
`)
		Expect(p.Hosts[1].Ports).To(Equal(p.Hosts[0].Ports))
		Expect(p.Expect[0].Ports).To(Equal(p.Hosts[0].Ports))
	})

	It("lets a host serve port 53 on loopback addresses the lab's DNS does not use", func() {
		p := load(`version: 1
users: {postfix: {uid: 107}}
hosts: {dns.localhost: {addresses: [127.0.0.54, 127.0.0.53], ports: [5353/udp]}}
expect: [allow: {}]
`)
		Expect(p.Hosts[0].Addresses).To(HaveLen(2))
	})

	It("finds ruleset files inside an fs.FS, and no further", func() {
		fsys := fstest.MapFS{
			"cat/p.yaml":    {Data: []byte("version: 1\nusers: {a: {uid: 1}}\nhosts: {h.test: {addresses: [192.0.2.1], ports: [1]}}\nruleset: {nft: rules.nft}\nexpect: [deny: {}]\n")},
			"cat/rules.nft": {Data: []byte("flush ruleset\n")},
			"cat/up.yaml":   {Data: []byte("version: 1\nusers: {a: {uid: 1}}\nhosts: {h.test: {addresses: [192.0.2.1], ports: [1]}}\nruleset: {nft: ../../rules.nft}\nexpect: [deny: {}]\n")},
		}
		p, err := policy.LoadFS(fsys, "cat/p.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Ruleset.NFT).To(Equal(&policy.RulesetFile{Path: "rules.nft", Data: []byte("flush ruleset\n")}))

		_, err = policy.LoadFS(fsys, "cat/up.yaml")
		Expect(err).To(MatchError(`cat/up.yaml:4:16: ruleset nft: "../../rules.nft" leads out of the policy's directory (by .., an absolute path or a symbolic link): want a file inside it`))
	})

	It("refuses a file far too large to be a policy, before parsing it", func() {
		huge := []byte("# " + strings.Repeat("x", 1<<20) + "\n")
		_, err := policy.LoadFS(fstest.MapFS{"huge.yaml": {Data: huge}}, "huge.yaml")
		Expect(err).To(MatchError(HavePrefix("huge.yaml:1:1: policy is more than 1048576 bytes: a policy may have at most 1048576 (1 MiB)")))
	})

	It("reports a policy it cannot read as a plain fs error", func() {
		_, err := policy.Load(filepath.Join(badDir, "no-such-policy.yaml"))
		Expect(err).To(MatchError(fs.ErrNotExist))
		var perr *policy.Error
		Expect(errors.As(err, &perr)).To(BeFalse())
	})

	DescribeTable("Error names file, line and column when it knows them",
		func(e policy.Error, want string) { Expect(e.Error()).To(Equal(want)) },
		Entry(nil, policy.Error{File: "p.yaml", Line: 7, Column: 5, Msg: "boom"}, "p.yaml:7:5: boom"),
		Entry(nil, policy.Error{File: "p.yaml", Line: 7, Msg: "boom"}, "p.yaml:7: boom"),
		Entry(nil, policy.Error{File: "p.yaml", Msg: "boom"}, "p.yaml: boom"),
	)

	It("has a corpus of bad policies", func() {
		files, err := filepath.Glob(filepath.Join(badDir, "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(len(files)).To(BeNumerically(">=", 45))
	})

	DescribeTable("refuses each bad policy at the exact place, saying what is wrong",
		func(file string) {
			data, err := os.ReadFile(file)
			Expect(err).NotTo(HaveOccurred())
			first, _, _ := strings.Cut(string(data), "\n")
			m := wantLine.FindStringSubmatch(first)
			Expect(m).NotTo(BeNil(), "%s: the first line must be # want: LINE:COL: substring of the error", file)
			line, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])

			_, err = policy.Load(file)
			var perr *policy.Error
			Expect(errors.As(err, &perr)).To(BeTrue(), "%s: want a *policy.Error, got %v", file, err)
			Expect([]int{perr.Line, perr.Column}).To(Equal([]int{line, col}), "%s: %v", file, err)
			Expect(perr.File).To(Equal(file))
			Expect(err.Error()).To(HavePrefix("%s:%d:%d: ", file, line, col))
			Expect(perr.Msg).To(ContainSubstring(m[3]))
		},
		badEntries(),
	)

	It("never panics on a truncated policy, and fails only with a *Error", func() {
		for _, name := range []string{"mail.yaml", "full.yaml"} {
			data, err := os.ReadFile(filepath.Join("../../testdata/golden", name))
			Expect(err).NotTo(HaveOccurred())
			rules := fstest.MapFS{}
			for _, f := range []string{"rules.v4", "rules.v6", "rules.nft", "firewall.sh"} {
				if b, err := os.ReadFile(filepath.Join("../../testdata/golden", f)); err == nil {
					rules[f] = &fstest.MapFile{Data: b}
				}
			}
			for i := range len(data) + 1 {
				for _, text := range []string{string(data[:i]), string(data[:i]) + "\n", string(data[i:])} {
					rules["p.yaml"] = &fstest.MapFile{Data: []byte(text)}
					var err error
					Expect(func() { _, err = policy.LoadFS(rules, "p.yaml") }).NotTo(Panic(), "%q", text)
					if err != nil {
						var perr *policy.Error
						Expect(errors.As(err, &perr)).To(BeTrue(), "%q: %v", text, err)
						Expect(perr.Line).To(BeNumerically(">", 0), "%q: %v", text, err)
					}
				}
			}
		}
	})
})
