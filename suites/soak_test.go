package suites_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/egresslab/egresslab/internal/catalogue"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// soakRuns is how often `make soak` runs each policy; SOAK_RUNS overrides it.
const soakRuns = 200

// The soak is not part of make test (its label is filtered out there): it
// runs every example and every catalogue variant soakRuns times in a row
// while a CPU hog keeps the other core busy, and counts verdict flips: a
// probe whose outcome differs from the first run's. There are no retries
// anywhere, so a flip is a real nondeterminism.
var _ = Describe("determinism under load", Label("soak"), Serial, func() {
	It("gives every example and catalogue variant the same verdicts on every run while a CPU hog runs", func(ctx SpecContext) {
		runs := soakRuns
		if s := os.Getenv("SOAK_RUNS"); s != "" {
			n, err := strconv.Atoi(s)
			Expect(err).NotTo(HaveOccurred(), "SOAK_RUNS")
			runs = n
		}
		hog := exec.Command("sh", "-c", "while :; do :; done")
		Expect(hog.Start()).To(Succeed())
		DeferCleanup(func() { _ = hog.Process.Kill(); _ = hog.Wait() })

		type soaked struct {
			name   string
			policy *scenarios.Policy
		}
		var all []soaked
		files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		for _, f := range files {
			p, err := scenarios.Load(f)
			Expect(err).NotTo(HaveOccurred())
			all = append(all, soaked{"examples/" + filepath.Base(f), p})
		}
		entries, err := catalogue.All()
		Expect(err).NotTo(HaveOccurred())
		for _, s := range entries {
			for _, v := range s.Variants {
				all = append(all, soaked{"catalogue/" + s.Name + "/" + v.Name, v.Policy})
			}
		}
		Expect(all).NotTo(BeEmpty())

		var summary strings.Builder
		totalFlips, totalRuns := 0, 0
		start := time.Now()
		for _, s := range all {
			var first []string
			flips, errs, failed := 0, 0, 0
			began := time.Now()
			for i := range runs {
				rep, err := scenarios.Run(ctx, s.policy, scenarios.RunOptions{})
				if err != nil { // a run that could not happen is a flip of every probe
					failed++
					fmt.Fprintf(GinkgoWriter, "FLIP %s run %d could not run: %v\n", s.name, i+1, err)
					continue
				}
				var outcomes []string
				for _, r := range rep.Results {
					outcomes = append(outcomes, r.Probe.String()+" "+r.Observed.String())
					if r.Observed.String() == "error" {
						errs++
					}
				}
				if first == nil {
					first = outcomes
					continue
				}
				for j := range outcomes {
					if outcomes[j] != first[j] {
						flips++
						fmt.Fprintf(GinkgoWriter, "FLIP %s run %d: %s (first run: %s)\n", s.name, i+1, outcomes[j], first[j])
					}
				}
			}
			totalFlips += flips + failed
			totalRuns += runs
			fmt.Fprintf(&summary, "%-48s %4d runs x %3d probes  %3d flips  %3d probe errors  %3d runs failed  %6.1f ms/run\n",
				s.name, runs, len(first), flips, errs, failed, float64(time.Since(began).Milliseconds())/float64(runs))
		}
		fmt.Fprintf(&summary, "total: %d runs of %d policies in %s, %d flips\n", totalRuns, len(all), time.Since(start).Round(time.Second), totalFlips)
		AddReportEntry("soak", summary.String())
		fmt.Fprint(GinkgoWriter, summary.String())
		Expect(totalFlips).To(BeZero(), summary.String())
	})
})
