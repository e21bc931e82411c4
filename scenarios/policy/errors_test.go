package policy_test

import (
	"errors"
	"testing/fstest"

	"github.com/egresslab/egresslab/scenarios/policy"
	"github.com/egresslab/egresslab/scenarios/policy/rulesetfile"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("every policy error in one pass, and warnings", func() {
	loadFS := func(files map[string]string) (*policy.Policy, error) {
		fsys := fstest.MapFS{}
		for name, text := range files {
			fsys[name] = &fstest.MapFile{Data: []byte(text)}
		}
		return policy.LoadFS(fsys, "p.yaml")
	}
	const head = "version: 1\nusers:\n  postfix: {uid: 107}\n"

	It("reports three typos as three errors in file order, each placed; errors.As finds the first", func() {
		_, err := loadFS(map[string]string{"p.yaml": `version: 1
users:
  postfix: {uid: 107, gdi: 114}
hosts:
  mx.example.test: {addresses: [192.0.2.25], ports: [25/tcpp]}
expect:
  - allow: {user: postfx}
  - deny: {}
`})
		var all policy.Errors
		Expect(errors.As(err, &all)).To(BeTrue(), "%v", err)
		Expect(all).To(HaveLen(3))
		Expect([]int{all[0].Line, all[1].Line, all[2].Line}).To(Equal([]int{3, 5, 7}))
		Expect(all[2].Msg).To(Equal(`unknown user "postfx": want one of postfix`))
		var first *policy.Error
		Expect(errors.As(err, &first)).To(BeTrue())
		Expect(first).To(Equal(all[0]))
	})

	It("keeps a single error a plain *Error", func() {
		_, err := loadFS(map[string]string{"p.yaml": head + "hosts:\n  h.test: {addresses: [192.0.2.1], ports: [1/tcp]}\nexpect:\n  - deny: {user: nobody}\n"})
		Expect(err).To(BeAssignableToTypeOf(&policy.Error{}))
		Expect(err.Error()).To(Equal(`p.yaml:7:18: unknown user "nobody": want one of postfix`))
	})

	It("warns on an entry that selects no probe and on a host of one family, and on nothing else", func() {
		p, err := loadFS(map[string]string{"p.yaml": head + `hosts:
  v4.test: {addresses: [192.0.2.1], ports: [25/tcp]}
  both.test: {addresses: [192.0.2.2, "2001:db8::2"], ports: [25/tcp]}
expect:
  - allow: {port: 587/tcp}
  - drop: {host: v4.test, family: ipv6}
  - allow: {host: both.test, family: ipv6}
  - deny: {}
`})
		Expect(err).NotTo(HaveOccurred())
		var got []string
		for _, w := range p.Warnings {
			got = append(got, w.String())
		}
		Expect(got).To(Equal([]string{
			`p.yaml:5:3: warning: host "v4.test" has no IPv6 address: it gets no IPv6 cells, so nothing about IPv6 to it is proved; add its IPv6 address if it has one`,
			"p.yaml:8:5: warning: this allow entry selects no probe (no user x host x address x port of the policy matches all of it): it decides nothing",
			"p.yaml:9:5: warning: this drop entry selects no probe (no user x host x address x port of the policy matches all of it): it decides nothing",
		}))
		Expect(p.Warnings[0].MissingFamily).To(Equal("ipv6"))
	})

	It("names an nft owner match on a user the policy lacks, at its place in the nft file", func() {
		_, err := loadFS(map[string]string{
			"p.yaml":    head + "hosts:\n  h.test: {addresses: [192.0.2.1], ports: [25/tcp]}\nruleset:\n  nft: rules.nft\nexpect:\n  - deny: {}\n",
			"rules.nft": "table inet f {\n  chain o {\n    type filter hook output priority 0;\n    meta skuid \"postfix\" accept\n    meta skuid mailer drop\n  }\n}\n",
		})
		Expect(err).To(MatchError(`rules.nft:5:16: skuid mailer: no user "mailer" in the policy: the lab's /etc/passwd holds only root and the policy's users (root, postfix); add mailer to users`))
	})

	DescribeTable("OwnerNames finds the names an owner match resolves through passwd, and only those",
		func(text string, want []string) {
			var got []string
			for _, o := range rulesetfile.OwnerNames([]byte(text)) {
				got = append(got, o.Option+" "+o.Name)
			}
			Expect(got).To(Equal(want))
		},
		Entry(nil, "-A OUTPUT -m owner --uid-owner postfix -j ACCEPT", []string{"--uid-owner postfix"}),
		Entry(nil, "-A OUTPUT -m owner ! --gid-owner mail -j DROP", []string{"--gid-owner mail"}),
		Entry(nil, "-A OUTPUT -m owner --uid-owner 107 -j ACCEPT\n-A OUTPUT -m owner --uid-owner 1000-2000 -j ACCEPT", nil),
		Entry(nil, "# -A OUTPUT -m owner --uid-owner postfix", nil),
		Entry(nil, `meta skuid "www-data" tcp dport 25 drop`, []string{"skuid www-data"}),
		Entry(nil, "meta skgid != { mail, 100, adm } drop", []string{"skgid mail", "skgid adm"}),
		Entry(nil, "meta skuid $mailers accept; meta skuid @users accept", nil),
	)
})
