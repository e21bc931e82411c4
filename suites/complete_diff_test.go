package suites_test

import (
	"bytes"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/classes"
)

func holdsUID(c classes.Class, uid uint32) bool {
	return slices.ContainsFunc(c.Source.UIDs, func(r classes.IDRange) bool { return r.First <= uid && uid <= r.Last })
}

func holdsPort(c classes.Class, port uint16) bool {
	return slices.ContainsFunc(c.Ports, func(r classes.PortRange) bool { return r.First <= port && port <= r.Last })
}

var _ = Describe("diff --complete", Label("complete"), func() {
	It("probes each side's classes under both rulesets: a port range OLD lets out and NEW closes, a uid range NEW lets out that OLD never split", func(ctx SpecContext) {
		oldP := loadComplete(completePolicy, mailRules("-A OUTPUT -p tcp -m tcp --dport 8000:8100 -j ACCEPT"), mailRules6())
		newP := loadComplete(completePolicy, mailRules("-A OUTPUT -p tcp -m owner --uid-owner 2000-2999 -j ACCEPT"), mailRules6())
		d, err := scenarios.RunDiff(ctx, oldP, newP, scenarios.RunOptions{Complete: true})
		Expect(err).NotTo(HaveOccurred())
		Expect(d.ClassFlips).NotTo(BeEmpty())
		for _, f := range d.ClassFlips {
			// both rulesets' boundaries split both sides: no class is one side's only
			Expect(f.Old).NotTo(BeNil())
			Expect(f.New).NotTo(BeNil())
			Expect(f.Old.Probed).To(Equal(f.New.Probed), "the same representative on both sides")
			Expect(f.New.Class.Family).To(Equal(classes.IPv4), "IPv6 did not change")
		}
		closed := slices.IndexFunc(d.ClassFlips, func(f scenarios.ClassFlip) bool {
			c := f.New.Class
			return c.Proto == classes.TCP && holdsPort(c, 8000) && !holdsPort(c, 8101) && holdsUID(c, 1000)
		})
		Expect(closed).NotTo(BeNumerically("<", 0), "the port range NEW closes")
		f := d.ClassFlips[closed]
		Expect(f.Old.Observed).To(Equal(probe.Connected))
		Expect(f.New.Observed).To(Equal(probe.Dropped))
		Expect(f.Regression()).To(BeFalse())

		opened := slices.IndexFunc(d.ClassFlips, func(f scenarios.ClassFlip) bool {
			c := f.New.Class
			return c.Proto == classes.TCP && holdsUID(c, 2000) && holdsUID(c, 2999) && !holdsUID(c, 3000) && !holdsUID(c, 1999) && !holdsPort(c, 8000)
		})
		Expect(opened).NotTo(BeNumerically("<", 0), "the uid range NEW opens")
		f = d.ClassFlips[opened]
		Expect(f.Old.Observed).To(Equal(probe.Dropped))
		Expect(f.New.Observed).To(Equal(probe.Connected))
		Expect(f.Regression()).To(BeTrue())
		Expect(f.New.Probed).To(HavePrefix("uid 2000 -> "))

		var text bytes.Buffer
		Expect(d.WriteText(&text)).To(Succeed())
		Expect(text.String()).To(ContainSubstring("! class ipv4 tcp uid 2000-2999 to "))
		Expect(text.String()).To(ContainSubstring(", probed as " + f.New.Probed + "/tcp: dropped (expected deny: pass) -> connected (expected deny: FAIL)"))
		Expect(d.ClassRegressions()).To(BeNumerically(">=", 1))
	})
})
