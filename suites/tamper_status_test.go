package suites_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// midRunPolicy has more cells than ProbeAll has workers, so that some probes
// start after the first one has finished.
const midRunPolicy = `version: 1
users:
  www-data: {uid: 33}
hosts:
  web.example.test:
    addresses: [192.0.2.80]
    ports: [1-100/tcp]
expect:
  - allow: {}
`

// A candidate that changes the lab's sentinel is exit 3 naming it, never
// verdicts, and never bad input (exit 2): the lab's evidence removal that
// meets the kernel's "no such file or directory" for a sentinel table that
// is gone was once read as a missing policy file. Nothing of the candidate's
// runs once its load has ended (leftover_test.go), so the spec deletes the
// sentinel itself, as the lab's root, in the middle of the probes.
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

	It("is a tamper error naming the sentinel when the sentinel goes while probes run and their evidence removal fails", func(ctx SpecContext) {
		file := filepath.Join(GinkgoT().TempDir(), "midrun.yaml")
		Expect(os.WriteFile(file, []byte(midRunPolicy), 0o644)).To(Succeed())
		p, err := scenarios.Load(file)
		Expect(err).NotTo(HaveOccurred())
		lab, err := scenarios.StartLab(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		// The first probe's progress deletes the sentinel; every worker
		// that finishes meanwhile waits in its own progress call, so at
		// least the probes beyond the first round start after it is gone.
		var deleted sync.Once
		var out []byte
		var delErr error
		opts := scenarios.RunOptions{Progress: func(done, total int) {
			deleted.Do(func() {
				out, delErr = lab.Command(ctx, "nft", "delete", "table", "inet", "egresslab_sentinel").CombinedOutput()
			})
		}}
		_, err = scenarios.ProbeAll(ctx, lab, p, opts)
		Expect(delErr).NotTo(HaveOccurred(), "%s", out)
		// The removal of the later probes' evidence failed (ENOENT for the
		// table, or ENOBUFS for a batch of such answers): the run's error
		// is what the harness check then names, not that failure.
		Expect(lab.ForgetErr()).To(HaveOccurred(), "the evidence removal met the table that is gone")
		var tamper *netns.TamperError
		Expect(errors.As(err, &tamper)).To(BeTrue(), "%v", err)
		Expect(tamper.What).To(HavePrefix("the drop sentinel (table inet egresslab_sentinel"))
		Expect(err).To(MatchError(ContainSubstring("after probing: the candidate ruleset changed the lab's own machinery in lab midrun: the drop sentinel")))
	})
})
