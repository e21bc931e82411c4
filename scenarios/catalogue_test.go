package scenarios_test

import (
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("the catalogue", func() {
	It("embeds telnet-surprise in three acts: the bypass, the fix that breaks IPv6, and the fix that holds", func() {
		s, err := scenarios.FindScenario("telnet-surprise")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Variants).To(HaveLen(3))
		Expect(s.Variants[0].Bypass).To(HaveLen(3))
		Expect(s.Variants[1].Bypass).To(BeEmpty())
		Expect(s.Variants[1].Broken).To(HaveLen(1))
		Expect(s.Variants[2].Bypass).To(BeEmpty())
		Expect(s.Variants[2].Broken).To(BeEmpty())
		_, err = scenarios.FindScenario("no-such-story")
		Expect(err).To(MatchError(ContainSubstring("want one of telnet-surprise")))
	})

	Describe("checking a run against its story", func() {
		var v scenarios.Variant
		// observe gives every probe the outcome its expectation wants,
		// then lets the spec change some.
		observe := func(change func(scenarios.Probe) (probe.Outcome, bool)) *scenarios.Report {
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
		bypass := func(p scenarios.Probe) (probe.Outcome, bool) {
			inBypass := p.Family() == "ipv6" && (p.User.Name == "www-data" || p.Host == "relay.localhost")
			return probe.Connected, inBypass
		}
		BeforeEach(func() {
			s, err := scenarios.FindScenario("telnet-surprise")
			Expect(err).NotTo(HaveOccurred())
			v = s.Variants[0]
		})

		It("holds when exactly the bypass cells connect", func() {
			Expect(v.Check(observe(bypass))).To(BeEmpty())
		})
		It("names a bypass cell that did not connect", func() {
			rep := observe(func(p scenarios.Probe) (probe.Outcome, bool) {
				if p.User.Name == "www-data" && p.Host == "mx.example.test" && p.Family() == "ipv6" {
					return probe.Dropped, true
				}
				return bypass(p)
			})
			Expect(v.Check(rep)).To(ConsistOf(ContainSubstring("the story says it fails its expectation (deny connects (a bypass)), observed dropped")))
		})
		It("names a failure outside the bypass", func() {
			rep := observe(func(p scenarios.Probe) (probe.Outcome, bool) {
				if p.User.Name == "postfix" && p.Host == "mx.example.test" && p.Family() == "ipv4" {
					return probe.Dropped, true
				}
				return bypass(p)
			})
			Expect(v.Check(rep)).To(ConsistOf(ContainSubstring("expected allow, observed dropped")))
		})
		It("never reads a probe error as part of the story", func() {
			rep := observe(func(p scenarios.Probe) (probe.Outcome, bool) {
				if p.User.Name == "www-data" && p.Family() == "ipv4" && p.Host == "mx.example.test" {
					return probe.Error, true
				}
				return bypass(p)
			})
			Expect(v.Check(rep)).To(ConsistOf(ContainSubstring("probe error")))
		})
	})
})
