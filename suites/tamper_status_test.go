package suites_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// A script that deletes the lab's sentinel as soon as it appears makes the
// lab's evidence removal fail with the kernel's "no such file or directory"
// as often as it makes the harness check fail: either way it is the
// candidate tampering with the lab (exit 3, naming the sentinel), never a
// missing file (exit 2). Three runs, since which one happens first is a race.
var _ = Describe("a candidate that deletes the lab's sentinel", Label("truth"), func() {
	It("is exit 3 naming the sentinel, with or without --complete, whichever check notices first", func(ctx SpecContext) {
		for _, args := range [][]string{
			{"verify", "-f", "tamper.yaml"},
			{"verify", "--complete", "-f", "tamper.yaml"},
			{"verify", "--complete", "-f", "tamper.yaml"},
		} {
			r := egresslab(ctx, "../testdata/truth", args...)
			Expect(r.status).To(Equal(3), "%v: %s", args, r.stderr)
			Expect(r.stderr).To(ContainSubstring("the candidate ruleset changed the lab's own machinery in lab tamper: the drop sentinel"), "%v", args)
		}
	})
})
