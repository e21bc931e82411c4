package examples_test

import (
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/egresslab/egresslab/suites/matchers"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The same policy with its ruleset broken on purpose: the IPv6 half is left
// out, as in the telnet surprise. The matchers must fail, and say so in a
// message a person can act on: the truth table, the bypasses first, and a
// command per wrong cell that replays it with a real client.
var _ = Describe("the mail egress ruleset, broken on purpose", Ordered, func() {
	var lab *scenarios.Session

	BeforeAll(func(ctx SpecContext) {
		p, err := scenarios.Load("testdata/mail.yaml")
		Expect(err).NotTo(HaveOccurred())
		ipv4Only := p.WithRuleset(scenarios.Ruleset{IPTables: p.Ruleset.IPTables})
		lab, err = scenarios.Open(ctx, ipv4Only)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
	})

	It("fails MatchTruthTable with the truth table and how to reproduce each wrong cell", func(ctx SpecContext) {
		rep, err := lab.ProbeAll(ctx)
		Expect(err).NotTo(HaveOccurred())
		failure := InterceptGomegaFailure(func() { Expect(rep).To(MatchTruthTable()) })
		Expect(failure).To(HaveOccurred(), "the broken ruleset passed: the matcher cannot fail")
		msg := failure.Error()
		Expect(msg).To(HavePrefix("policy mail-egress: 2 of 12 probes are not as the policy says\n\npolicy mail-egress\n"))
		Expect(msg).To(ContainSubstring("\nwww-data  "), "the truth table itself, a row per user")
		Expect(msg).To(ContainSubstring("! not what the policy expects"), "the table's key")
		Expect(msg).To(ContainSubstring(
			"BYPASSES: 2 probes connected although the policy forbids them\n" +
				"  www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6): expected drop, observed connected"))
		Expect(msg).To(ContainSubstring("  www-data -> mx.example.test [2001:db8::25]:587/tcp (ipv6): expected reject, observed connected"))
		Expect(msg).To(ContainSubstring("ipv4: 6 probes, 6 passed\nipv6: 6 probes, 4 passed, 2 failed (2 bypasses)\n"))
		Expect(msg).To(HaveSuffix("reproduce each wrong cell with a real client, as its user, in a lab of the policy:\n" +
			"  www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6): expected drop, observed connected\n" +
			"    egresslab exec -f testdata/mail.yaml --user www-data -- nc -vz -n -w 3 2001:db8::25 25\n" +
			"  www-data -> mx.example.test [2001:db8::25]:587/tcp (ipv6): expected reject, observed connected\n" +
			"    egresslab exec -f testdata/mail.yaml --user www-data -- nc -vz -n -w 3 2001:db8::25 587\n"))
		GinkgoWriter.Println(msg) // what a user sees, in the verbose log
	})

	It("fails OnEveryFamily on the family that leaks, naming it", func(ctx SpecContext) {
		results, err := lab.Probe(ctx, "www-data", "mx.example.test", "25/tcp")
		Expect(err).NotTo(HaveOccurred())
		failure := InterceptGomegaFailure(func() { Expect(results).To(OnEveryFamily(BeDropped())) })
		Expect(failure).To(MatchError(HavePrefix(
			"ipv4: holds\n" +
				"ipv6: expected every probe to be dropped, but:\n" +
				" ! www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6): observed connected")))
		Expect(failure.Error()).To(ContainSubstring("reproduce: egresslab exec -f testdata/mail.yaml --user www-data -- nc -vz -n -w 3 2001:db8::25 25"))
	})

	It("returns ErrClosed, not a panic, once closed", func(ctx SpecContext) {
		Expect(lab.Close()).To(Succeed())
		_, err := lab.Probe(ctx, "www-data", "mx.example.test", "25/tcp")
		Expect(err).To(MatchError(scenarios.ErrClosed))
		_, err = lab.ProbeAll(ctx)
		Expect(err).To(MatchError(scenarios.ErrClosed))
		_, err = lab.Command(ctx, "www-data", "true")
		Expect(err).To(MatchError(scenarios.ErrClosed))
		Expect(lab.Close()).To(Succeed(), "closing twice is harmless")
	})
})
