package examples_test

import (
	"testing/fstest"

	"github.com/egresslab/egresslab/scenarios"
	. "github.com/egresslab/egresslab/suites/matchers"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// A policy and its ruleset written in the test itself: LoadFS reads them
// from any fs.FS (here an in-memory one) and validates them as the command
// line does, so a typo is a positioned error, not a silent pass.
var webPolicy = fstest.MapFS{
	"web.yaml": {Data: []byte(`version: 1
name: web-egress
users:
  www-data: {uid: 33}
  deploy:   {uid: 1000}
hosts:
  api.example.test:
    addresses: [198.51.100.80, "2001:db8:80::80"]
    ports: [443/tcp, 25/tcp]
ruleset:
  nft: web.nft
expect:
  - allow:  {port: 443/tcp}
  - allow:  {user: deploy, port: 25/tcp}
  - reject: {port: 25/tcp}
`)},
	// One inet table covers both families; "deploy" resolves against the
	// lab's own /etc/passwd, built from the policy's users.
	"web.nft": {Data: []byte(`table inet egress {
	chain output {
		type filter hook output priority filter; policy accept;
		oifname "eth0" tcp dport 25 meta skuid "deploy" accept
		oifname "eth0" tcp dport 25 reject with icmpx admin-prohibited
	}
}
`)},
}

var _ = Describe("a policy written in code, with an nft ruleset", Ordered, ContinueOnFailure, func() {
	var lab *scenarios.Session

	BeforeAll(func(ctx SpecContext) {
		p, err := scenarios.LoadFS(webPolicy, "web.yaml")
		Expect(err).NotTo(HaveOccurred())
		lab, err = scenarios.Open(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
	})

	It("answers www-data's SMTP with admin-prohibited: rejected, not refused", func(ctx SpecContext) {
		results, err := lab.Probe(ctx, "www-data", "api.example.test", "25/tcp")
		Expect(results, err).To(OnEveryFamily(BeRejected()))
		Expect(results).NotTo(OnEveryFamily(BeRefused()), "admin-prohibited is not a port unreachable")
	})

	It("lets deploy send mail and everyone reach 443", func(ctx SpecContext) {
		Expect(lab.Probe(ctx, "deploy", "api.example.test", "25/tcp")).To(OnEveryFamily(Connect()))
		Expect(lab.Probe(ctx, "www-data", "api.example.test", "443/tcp")).To(OnEveryFamily(Connect()))
	})

	It("matches a truth table written in the test, outcome by outcome", func(ctx SpecContext) {
		Expect(lab.ProbeAll(ctx)).To(MatchTruthTable(
			Cell{User: "www-data", Port: "25/tcp", Outcome: rejected},
			Cell{Outcome: connected},
		))
	})
})
