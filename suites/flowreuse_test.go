package suites_test

import (
	"fmt"
	"path/filepath"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// A TCP flow that a reset (or an ICMP error) ended is free in the kernel
// while its probe's socket is still open (tcp_done unhashes it), and the
// kernel may give the same flow to the next probe to that destination. The
// evidence of the first must then neither decide the second's verdict nor be
// removed on top of the second's (issue 16).
var _ = Describe("a flow the kernel gave again", Label("determinism"), func() {
	It("decides each probe from its own evidence, however the kernel reuses source ports", func(ctx SpecContext) {
		p, err := scenarios.Load(filepath.Join(determinismDir, "port-reuse.yaml"))
		Expect(err).NotTo(HaveOccurred())
		lab := startLab(ctx, p)
		DeferCleanup(lab.Close)
		want := map[string]verdict{
			"refused/tcp":  {outcome: probe.Refused, kind: probe.Reset},
			"rejected/tcp": {outcome: probe.Rejected, kind: probe.ICMPError},
			"dropped/tcp":  {outcome: probe.Dropped, kind: probe.Egress},
			"refused/udp":  {outcome: probe.Refused, kind: probe.ICMPError},
			"rejected/udp": {outcome: probe.Rejected, kind: probe.ICMPError},
			"dropped/udp":  {outcome: probe.Dropped, kind: probe.Egress},
		}
		byName := map[string]scenarios.Probe{}
		for pr := range p.Probes() {
			byName[pr.User.Name+"/"+pr.Port.Proto+"/"+family(pr)] = pr
		}
		Expect(byName).To(HaveLen(12))
		// Back to back to one destination, so that a flow a reset or an
		// ICMP error freed is the next probe's flow about half the time.
		var order []string
		for _, fam := range []string{"ipv4", "ipv6"} {
			for _, u := range []string{"refused", "dropped", "rejected", "dropped", "rejected", "rejected", "refused", "refused"} {
				order = append(order, u+"/tcp/"+fam)
			}
			for _, u := range []string{"refused", "rejected", "dropped", "rejected"} {
				order = append(order, u+"/udp/"+fam)
			}
		}
		var wrong []string
		for round := range 25 {
			for _, name := range order {
				pr := byName[name]
				got := dialCell(ctx, lab, pr)
				w := want[pr.User.Name+"/"+pr.Port.Proto]
				if !got.same(w) {
					wrong = append(wrong, fmt.Sprintf("round %d: %s: %s, want %s (%s)", round, pr, got, w.outcome, w.kind))
				}
			}
		}
		Expect(wrong).To(BeEmpty())
		Expect(lab.ForgetErr()).To(Succeed())
	})
})

func family(pr scenarios.Probe) string {
	if pr.Address.Is4() {
		return "ipv4"
	}
	return "ipv6"
}
