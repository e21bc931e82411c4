package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("the exit status of a run's error", func() {
	DescribeTable("bad input only for a path that is not there",
		func(err error, status int) { Expect(statusOf(err)).To(Equal(status)) },
		Entry("a policy file that is not there", &fs.PathError{Op: "open", Path: "egresslab.yaml", Err: syscall.ENOENT}, exitBadInput),
		Entry("a netlink ENOENT (a table that is gone)", fmt.Errorf("remove probes' evidence from the drop sentinel: netlink receive: %w", syscall.ENOENT), exitNoLab),
	)

	// The error a real run returns when the lab's sentinel goes while its
	// probes run (the lab's root deletes it here; a candidate's processes
	// are gone by then): its evidence removal fails with the kernel's
	// ENOENT, and the run says what changed. Exit 3, never bad input.
	It("is exit 3 naming the drop sentinel when the sentinel goes while probes run", func(ctx SpecContext) {
		Expect(os.Geteuid()).To(BeZero(), "a lab needs root: run as root")
		file := filepath.Join(GinkgoT().TempDir(), "midrun.yaml")
		Expect(os.WriteFile(file, []byte(`version: 1
users:
  www-data: {uid: 33}
hosts:
  web.example.test:
    addresses: [192.0.2.80]
    ports: [1-100/tcp]
expect:
  - allow: {}
`), 0o644)).To(Succeed())
		p, err := scenarios.Load(file)
		Expect(err).NotTo(HaveOccurred())
		lab, err := scenarios.StartLab(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		// More cells than workers: the probes after the first round start
		// once the sentinel is gone (each worker waits in its progress call
		// until the deletion is done).
		var deleted sync.Once
		var out []byte
		var delErr error
		_, err = scenarios.ProbeAll(ctx, lab, p, scenarios.RunOptions{Progress: func(int, int) {
			deleted.Do(func() {
				out, delErr = lab.Command(ctx, "nft", "delete", "table", "inet", "egresslab_sentinel").CombinedOutput()
			})
		}})
		Expect(delErr).NotTo(HaveOccurred(), "%s", out)
		// The removal of the later probes' evidence failed (ENOENT for the
		// table, or ENOBUFS for a batch of such answers): the run's error is
		// what the harness check then names, not that failure.
		Expect(lab.ForgetErr()).To(HaveOccurred(), "the evidence removal met the table that is gone")
		var tamper *netns.TamperError
		Expect(errors.As(err, &tamper)).To(BeTrue(), "%v", err)
		Expect(tamper.What).To(HavePrefix("the drop sentinel (table inet egresslab_sentinel"))
		status, msg := describe(err)
		Expect(status).To(Equal(exitNoLab), msg)
		Expect(msg).To(ContainSubstring("the candidate ruleset changed the lab's own machinery in lab midrun: the drop sentinel (table inet egresslab_sentinel"))
	})
})
