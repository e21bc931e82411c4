package suites_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// A candidate that made the lab's sentinel table first is exit 3 naming it,
// never verdicts and never bad input (exit 2). The sentinel going away in
// the middle of the probes (the lab's evidence removal then meets ENOENT,
// once read as a missing policy file) is cmd/egresslab's status_test.go.
var _ = Describe("a candidate that changes the lab's sentinel", Label("truth"), func() {
	It("is exit 3 naming the sentinel, with or without --complete", func(ctx SpecContext) {
		for _, args := range [][]string{
			{"verify", "-f", "tamper.yaml"},
			{"verify", "--complete", "-f", "tamper.yaml"},
		} {
			r := egresslab(ctx, "../testdata/truth", args...)
			Expect(r.status).To(Equal(3), "%v: %s", args, r.stderr)
			Expect(r.stderr).To(ContainSubstring("the candidate ruleset changed the lab's own machinery in lab tamper: the drop sentinel (the candidate made a table inet egresslab_sentinel before the lab did)"), "%v", args)
		}
	})
})
