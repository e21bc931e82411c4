package catalogue_test

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/egresslab/egresslab/internal/catalogue"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("the catalogue", func() {
	It("holds every entry with its story, source, client and at least two variants", func() {
		all, err := catalogue.All()
		Expect(err).NotTo(HaveOccurred())
		Expect(len(all)).To(BeNumerically(">=", 14))
		for _, s := range all {
			Expect(s.Summary).NotTo(BeEmpty(), s.Name)
			Expect(s.Summary).NotTo(ContainSubstring("\n"), s.Name)
			Expect(s.Story).NotTo(BeEmpty(), s.Name)
			Expect(s.Source).NotTo(BeEmpty(), s.Name)
			Expect(len(s.Variants)).To(BeNumerically(">=", 2), s.Name)
			if s.Forwarded() {
				// Its clients are the forwarded-traffic lab's to show; until
				// it lands, no telnet view.
				Expect(s.Client).To(BeZero(), s.Name)
				continue
			}
			for _, v := range s.Variants {
				_, ok := v.Policy.User(s.Client.User)
				Expect(ok).To(BeTrue(), "%s/%s: client user %s", s.Name, v.Name, s.Client.User)
			}
		}
	})

	It("knows its forwarded entries: every variant of one has a network with clients", func() {
		all, err := catalogue.All()
		Expect(err).NotTo(HaveOccurred())
		var forwarded []string
		for _, s := range all {
			if s.Forwarded() {
				forwarded = append(forwarded, s.Name)
				for _, v := range s.Variants {
					Expect(v.Policy.Clients()).NotTo(BeEmpty(), "%s/%s", s.Name, v.Name)
				}
			}
		}
		Expect(forwarded).To(ContainElements("docker-user-ipv4-only", "podman-orphaned-docker-user",
			"inet-forward-ip-saddr", "vpn-gateway-ipv6-leak", "php-container-mail"))
	})

	It("names the entries it has when asked for one it has not", func() {
		_, err := catalogue.Find("no-such-story")
		var nf *catalogue.NotFoundError
		Expect(errors.As(err, &nf)).To(BeTrue())
		Expect(nf.Known).To(ContainElements("telnet-surprise", "ndp-blackhole"))
	})

	Describe("checking a run against what an entry documents", func() {
		// observe gives every probe of v the outcome its expectation wants,
		// then lets the spec change some.
		observe := func(v catalogue.Variant, change func(scenarios.Probe) (probe.Outcome, bool)) *scenarios.Report {
			rep := &scenarios.Report{Policy: v.Policy.Name}
			for _, p := range v.Policy.Matrix() {
				o := probe.Dropped
				if p.Expect == scenarios.Allow {
					o = probe.Connected
				}
				if c, ok := change(p); ok {
					o = c
				}
				rep.Results = append(rep.Results, scenarios.Result{Probe: p, Observed: o})
			}
			return rep
		}
		variant := func(entry, name string) catalogue.Variant {
			s, err := catalogue.Find(entry)
			Expect(err).NotTo(HaveOccurred())
			for _, v := range s.Variants {
				if v.Name == name {
					return v
				}
			}
			Fail("no variant " + name + " in " + entry)
			return catalogue.Variant{}
		}
		cell := func(user, host, family string) func(scenarios.Probe) bool {
			return func(p scenarios.Probe) bool { return p.User.Name == user && p.Host == host && p.Family() == family }
		}
		when := func(is func(scenarios.Probe) bool, o probe.Outcome, else_ func(scenarios.Probe) (probe.Outcome, bool)) func(scenarios.Probe) (probe.Outcome, bool) {
			return func(p scenarios.Probe) (probe.Outcome, bool) {
				if is(p) {
					return o, true
				}
				return else_(p)
			}
		}
		nothing := func(scenarios.Probe) (probe.Outcome, bool) { return 0, false }

		Context("a bypass (telnet-surprise, iptables only)", func() {
			var v catalogue.Variant
			var bypass func(scenarios.Probe) (probe.Outcome, bool)
			BeforeEach(func() {
				v = variant("telnet-surprise", "ipv4-only")
				bypass = func(p scenarios.Probe) (probe.Outcome, bool) {
					return probe.Connected, p.Family() == "ipv6" && (p.User.Name == "www-data" || p.Host == "relay.localhost")
				}
			})
			It("holds when exactly the bypass cells connect", func() {
				Expect(v.Check(observe(v, bypass))).To(BeEmpty())
			})
			It("names a bypass cell that did not connect", func() {
				rep := observe(v, when(cell("www-data", "mx.example.test", "ipv6"), probe.Dropped, bypass))
				Expect(v.Check(rep)).To(ConsistOf(ContainSubstring("documented as failing its expectation (deny connects (a bypass)), observed dropped")))
			})
			It("names a failure outside the documented cells", func() {
				rep := observe(v, when(cell("postfix", "mx.example.test", "ipv4"), probe.Dropped, bypass))
				Expect(v.Check(rep)).To(ConsistOf(ContainSubstring("expected allow, observed dropped (not documented)")))
			})
			It("never reads a probe error as part of the story", func() {
				rep := observe(v, when(cell("www-data", "mx.example.test", "ipv4"), probe.Error, bypass))
				Expect(v.Check(rep)).To(ConsistOf(ContainSubstring("probe error")))
			})
		})

		Context("a broken cell that names how it is blocked (ndp-blackhole)", func() {
			var v catalogue.Variant
			BeforeEach(func() { v = variant("ndp-blackhole", "drop-all-icmpv6") })
			It("holds when the cell is dropped", func() {
				Expect(v.Check(observe(v, when(cell("alice", "www.example.test", "ipv6"), probe.Dropped, nothing)))).To(BeEmpty())
			})
			It("names the cell when it is blocked another way", func() {
				rep := observe(v, when(cell("alice", "www.example.test", "ipv6"), probe.Rejected, nothing))
				Expect(v.Check(rep)).To(ConsistOf(ContainSubstring("(allow is dropped (broken)), observed rejected")))
			})
			It("names the cell when it works after all", func() {
				Expect(v.Check(observe(v, nothing))).To(ConsistOf(ContainSubstring("observed connected")))
			})
		})

		Context("answered cells (sidecar-redirect-v4-only)", func() {
			var v catalogue.Variant
			answer := func(rep *scenarios.Report, by func(scenarios.Probe) string) *scenarios.Report {
				for i, r := range rep.Results {
					if host := by(r.Probe); host != "" {
						rep.Results[i].Evidence = probe.Evidence{Kind: probe.Handshake, AnsweredBy: &probe.Service{Host: host, Addr: netip.MustParseAddr("127.0.0.1"), Port: 15001, Proto: "tcp"}}
					}
				}
				return rep
			}
			BeforeEach(func() { v = variant("sidecar-redirect-v4-only", "ipv4-redirect") })
			It("holds when the documented services answered", func() {
				rep := answer(observe(v, nothing), func(p scenarios.Probe) string {
					if p.User.Name == "app" && p.Host == "api.example.test" && p.Family() == "ipv4" {
						return "sidecar.localhost"
					}
					return p.Host
				})
				Expect(v.Check(rep)).To(BeEmpty())
			})
			It("names a connection that another service answered", func() {
				rep := answer(observe(v, nothing), func(p scenarios.Probe) string { return p.Host })
				Expect(v.Check(rep)).To(ConsistOf(ContainSubstring("documented as answered by sidecar.localhost, answered by api.example.test")))
			})
		})
	})

	Describe("exporting an entry", func() {
		It("writes its policies and rulesets, scripts runnable, and never overwrites", func() {
			s, err := catalogue.Find("devcontainer-allowlist")
			Expect(err).NotTo(HaveOccurred())
			dir := filepath.Join(GinkgoT().TempDir(), "out")
			policies, err := s.Export(dir)
			Expect(err).NotTo(HaveOccurred())
			Expect(policies).To(HaveLen(len(s.Variants)))
			for _, p := range policies {
				loaded, err := scenarios.Load(p)
				Expect(err).NotTo(HaveOccurred())
				Expect(loaded.Matrix()).NotTo(BeEmpty())
			}
			fi, err := os.Stat(filepath.Join(dir, "init-firewall.sh"))
			Expect(err).NotTo(HaveOccurred())
			Expect(fi.Mode().Perm()).To(Equal(os.FileMode(0o755)))
			fi, err = os.Stat(filepath.Join(dir, "ipv4-only.yaml"))
			Expect(err).NotTo(HaveOccurred())
			Expect(fi.Mode().Perm()).To(Equal(os.FileMode(0o644)))

			_, err = s.Export(dir)
			var exists *catalogue.ExistsError
			Expect(errors.As(err, &exists)).To(BeTrue())
		})
	})
})
