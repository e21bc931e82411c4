package examples_test

import (
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/egresslab/egresslab/suites/matchers"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// A worked example: the mail policy of testdata/mail.yaml, one lab for the
// whole container, one assertion per cell or per whole table.
var _ = Describe("the mail egress ruleset", Ordered, ContinueOnFailure, func() {
	var lab *scenarios.Session

	BeforeAll(func(ctx SpecContext) {
		p, err := scenarios.Load("testdata/mail.yaml")
		Expect(err).NotTo(HaveOccurred())
		lab, err = scenarios.Open(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
	})

	It("lets postfix reach the MX on IPv4 and IPv6", func(ctx SpecContext) {
		Expect(lab.Probe(ctx, "postfix", "mx.example.test", "25/tcp")).To(OnEveryFamily(Connect()))
	})

	It("drops www-data's SMTP on both families", func(ctx SpecContext) {
		Expect(lab.Probe(ctx, "www-data", "mx.example.test", "25/tcp")).To(OnEveryFamily(BeDropped()))
	})

	It("turns www-data's submission away with an answer, not a timeout", func(ctx SpecContext) {
		// iptables' plain -j REJECT answers with ICMP port unreachable:
		// refused, which BeRejected (the policy's reject verb) accepts.
		results, err := lab.Probe(ctx, "www-data", "mx.example.test", "587/tcp")
		Expect(results, err).To(OnEveryFamily(BeRejected()))
		Expect(results).To(OnEveryFamily(BeRefused()))
	})

	It("lets everyone hand mail to the local relay", func(ctx SpecContext) {
		for _, user := range []string{"postfix", "www-data"} {
			Expect(lab.Probe(ctx, user, "relay.localhost", "25/tcp")).To(OnEveryFamily(Connect()), "as %s", user)
		}
	})

	It("does everything the policy says, cell by cell", func(ctx SpecContext) {
		Expect(lab.ProbeAll(ctx)).To(MatchTruthTable())
	})
})
