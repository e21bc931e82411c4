package suites_test

import (
	"strings"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// labProcesses lists the processes of the lab's PID namespace, as its own
// /proc shows them, other than the listing itself: "PID COMMAND LINE" of the
// holder (PID 1) and of whatever else still runs there.
func labProcesses(ctx SpecContext, lab *scenarios.LabBench) []string {
	GinkgoHelper()
	// The glob is expanded once, by the listing's shell, before it starts
	// anything of its own.
	out, err := lab.Command(ctx, "sh", "-c", `cd /proc && for p in [0-9]*; do [ "$p" = $$ ] || echo "$p" $(tr '\0' ' ' <$p/cmdline); done`).Output()
	Expect(err).NotTo(HaveOccurred())
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// A verdict is a function of the ruleset: what the candidate's script left
// running must not change the rules while the lab installs its sentinel and
// probes. truth/leftover.sh leaves a daemon that waits for the sentinel
// (which goes in after the load) and then drops port 80.
var _ = Describe("a candidate that leaves a process behind to change its rules later", Label("truth"), func() {
	It("gives the verdicts of the ruleset as loaded in 10 of 10 runs, and its process is gone when the load ends", func(ctx SpecContext) {
		p, err := scenarios.Load("../testdata/truth/leftover.yaml")
		Expect(err).NotTo(HaveOccurred())
		for run := 1; run <= 10; run++ {
			// NoRule: no listing of the rules for the trace runs beside
			// the probes, so that the holder is the lab's only process.
			opts := scenarios.RunOptions{NoRule: true}
			lab, err := scenarios.StartLabWith(ctx, p, opts)
			Expect(err).NotTo(HaveOccurred())
			Expect(labProcesses(ctx, lab)).To(ConsistOf(HavePrefix("1 egresslab-lab-holder-of-")), "run %d: the lab's processes after the load: the holder alone", run)
			rep, err := scenarios.ProbeAll(ctx, lab, p, opts)
			Expect(lab.Close()).To(Succeed())
			Expect(err).NotTo(HaveOccurred())
			Expect(rep.Results).To(HaveLen(2))
			for _, r := range rep.Results {
				Expect(r.Observed).To(Equal(probe.Connected), "run %d: %s: %s", run, r.Probe, r.Detail)
			}
		}
	})
})
