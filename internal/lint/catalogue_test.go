package lint_test

import (
	"github.com/egresslab/egresslab/internal/catalogue"
	"github.com/egresslab/egresslab/internal/lint"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Every variant of the catalogue whose story is a bug names here what lint
// finds in it, or why lint cannot: a new entry that is neither fails the
// spec until someone decides. Variants whose ruleset is right must lint clean.
var (
	staticGaps = map[string][]lint.Check{
		"telnet-surprise/ipv4-only":              {lint.OwnerOneFamily, lint.DropOneFamily},
		"telnet-surprise/both-families":          {lint.NDBlocked},
		"csf-smtp-block/ipv6-0":                  {lint.OneFamily, lint.OwnerOneFamily},
		"firewalld-rich-rule-ipv4/family-ipv4":   {lint.InetFamilyMatch},
		"nat64-metadata/ipv4-deny":               {lint.OneFamily},
		"ndp-blackhole/drop-all-icmpv6":          {lint.NDBlocked},
		"nft-ip-protocol-in-inet/ip-protocol":    {lint.InetFamilyMatch},
		"sandbox-allowlist-v4-only/netfilter":    {lint.OneFamily, lint.DropOneFamily},
		"sidecar-redirect-v4-only/ipv4-redirect": {lint.OneFamily, lint.OwnerOneFamily},
		"docker-user-ipv4-only/ip6tables-off":    {lint.OneFamily, lint.DropOneFamily},
		"inet-forward-ip-saddr/ip-saddr":         {lint.InetFamilyMatch},
		"php-container-mail/docker-user-ipv4":    {lint.OneFamily},
		"vpn-gateway-ipv6-leak/ipv4-only":        {lint.OneFamily, lint.DropOneFamily},
	}
	notStatic = map[string]string{
		"agent-firewall-no-ip6tables/warn-and-continue": "the IPv6 side is simply absent: there is no IPv6 file to compare",
		"devcontainer-allowlist/ipv4-only":              "the script builds only IPv4 rules; lint reads files, not what a script does",
		"devcontainer-allowlist/no-icmpv6":              "a script: lint reads files, not what a script does",
		"gid-owner-supplementary/gid-owner":             "the gap is which groups a user has, not a difference between families",
		"mixed-backends-hidden/split":                   "a script split across both iptables flavours: only a lab sees both",
		"nat64-metadata/whole-prefix":                   "the gap is an address the translator embeds, not a family difference",
		"quic-udp-443/tcp-only":                         "the gap is a protocol (UDP), identical in both families",
		"vpn-killswitch-after-accept/appended":          "the gap is rule order within one family",
		"sidecar-redirect-v4-only/both-redirect":        "right in both families: its cells document where the redirect lands, and lint finds nothing",
		"php-container-mail/output-only":                "both families hold the same OUTPUT rules: the gap is forwarded traffic no FORWARD rule filters, in either family",
		"podman-orphaned-docker-user/docker-user":       "both families hold the same DOCKER-USER rules: the gap is that nothing jumps to them under netavark",
	}
)

var _ = Describe("lint over the catalogue", func() {
	It("flags every static gap and passes every right ruleset", func(ctx SpecContext) {
		all, err := catalogue.All()
		Expect(err).NotTo(HaveOccurred())
		checked := 0
		for _, s := range all {
			for _, v := range s.Variants {
				name := s.Name + "/" + v.Name
				src, opts, _ := lint.FromPolicy(v.Policy)
				findings, err := lint.Lint(ctx, src, opts)
				Expect(err).NotTo(HaveOccurred(), name)
				checks := map[lint.Check]bool{}
				for _, f := range findings {
					checks[f.Check] = true
				}
				switch want, static := staticGaps[name]; {
				case len(v.Bypass) == 0 && len(v.Broken) == 0 && len(v.Answered) == 0:
					Expect(findings).To(BeEmpty(), "%s is right: lint must pass it", name)
				case static:
					for _, c := range want {
						Expect(checks).To(HaveKey(c), "%s: lint must find %s", name, c)
					}
				default:
					Expect(notStatic).To(HaveKey(name), "%s is a bug story: say in staticGaps what lint finds, or in notStatic why it cannot", name)
				}
				checked++
			}
		}
		Expect(checked).To(BeNumerically(">=", 2), "the catalogue has variants to lint")
	})
})
