package scenarios_test

import (
	"bytes"
	"github.com/egresslab/egresslab/internal/catalogue"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/report"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("diff", func() {
	variant := func(name string) *scenarios.Policy {
		GinkgoHelper()
		s, err := catalogue.Find("telnet-surprise")
		Expect(err).NotTo(HaveOccurred())
		for _, v := range s.Variants {
			if v.Name == name {
				return v.Policy
			}
		}
		Fail("no variant " + name)
		return nil
	}
	flipped := func(d *scenarios.Diff) []string {
		out := []string{}
		for _, f := range d.Flips {
			out = append(out, f.New.Probe.String()+": "+f.Old.Observed.String()+" -> "+f.New.Observed.String())
		}
		return out
	}

	It("lists only the cells whose outcome changed, and counts the ones only one side probes", func() {
		p := variant("ipv4-only")
		oldRep, newRep := &scenarios.Report{Policy: "old"}, &scenarios.Report{Policy: "new"}
		for i, pr := range p.Matrix() {
			oldRep.Results = append(oldRep.Results, scenarios.Result{Probe: pr, Observed: probe.Dropped})
			o := probe.Dropped
			if i == 1 {
				o = probe.Connected
			}
			if i < 7 {
				newRep.Results = append(newRep.Results, scenarios.Result{Probe: pr, Observed: o})
			}
		}
		d := report.CompareRuns(oldRep, newRep)
		Expect(d.Flips).To(HaveLen(1))
		Expect(d.OnlyOld).To(Equal(1))
		// postfix to the MX over IPv6 must connect: dropped failed, connected passes.
		Expect(d.Flips[0].New.Probe.String()).To(Equal("postfix -> mx.example.test [2001:db8::25]:25/tcp (ipv6)"))
		Expect(d.Flips[0].Old.Pass()).To(BeFalse())
		Expect(d.Flips[0].New.Pass()).To(BeTrue())
		Expect(d.Regressions()).To(BeZero())
	})

	Describe("a ruleset and its IPv6-fixed twin, in labs", Label("lab"), func() {
		fixed := []string{
			"www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6): connected -> dropped",
			"www-data -> relay.localhost [::1]:25/tcp (ipv6): connected -> dropped",
			"postfix -> relay.localhost [::1]:25/tcp (ipv6): connected -> dropped",
		}
		It("lists exactly the flipped cells, none of them a regression", func(ctx SpecContext) {
			d, err := scenarios.RunDiff(ctx, variant("ipv4-only"), variant("with-nd"), scenarios.RunOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(flipped(d)).To(ConsistOf(fixed))
			Expect(d.Regressions()).To(BeZero())
			var b bytes.Buffer
			Expect(d.WriteText(&b)).To(Succeed())
			Expect(b.String()).To(ContainSubstring("3 cells flipped, 0 now failing that passed"))
		})
		It("marks every flipped cell a regression the other way round", func(ctx SpecContext) {
			d, err := scenarios.RunDiff(ctx, variant("with-nd"), variant("ipv4-only"), scenarios.RunOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(d.Flips).To(HaveLen(3))
			Expect(d.Regressions()).To(Equal(3))
			var b bytes.Buffer
			Expect(d.WriteText(&b)).To(Succeed())
			Expect(b.String()).To(ContainSubstring("! www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6): dropped -> connected   (expected deny: pass -> FAIL)"))
		})
	})
})
