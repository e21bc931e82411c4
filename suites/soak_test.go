package suites_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/egresslab/egresslab/internal/catalogue"
	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// `make soak` runs the specs labelled soak (make test filters them out).
// Every line the Makefile keeps starts with FLIP (a difference or a failure,
// with what it saw), with the soaked thing's name (examples/, catalogue/,
// repro/) or with total:. There are no retries anywhere, so a FLIP is a real
// nondeterminism.

// soakVerdict is one cell's verdict in one run: the outcome and evidence kind
// it is compared on, and the evidence's words and the probe's duration, which
// a FLIP line shows for both sides.
type soakVerdict struct {
	cell     string
	verdict  verdict
	duration time.Duration
}

func soakVerdictOf(r scenarios.Result) soakVerdict {
	return soakVerdict{r.Probe.String(), verdict{r.Observed, r.Evidence.Kind, answeredBy(r.Evidence), r.Detail}, r.Duration}
}

func (v soakVerdict) same(w soakVerdict) bool { return v.cell == w.cell && v.verdict.same(w.verdict) }

func (v soakVerdict) String() string {
	return fmt.Sprintf("%s in %s", v.verdict, v.duration.Round(time.Millisecond))
}

// defaultSoakRuns is how often the soak runs each policy and each repro;
// SOAK_RUNS overrides it.
const defaultSoakRuns = 50

func soakRuns() int {
	GinkgoHelper()
	s := os.Getenv("SOAK_RUNS")
	if s == "" {
		return defaultSoakRuns
	}
	n, err := strconv.Atoi(s)
	Expect(err).NotTo(HaveOccurred(), "SOAK_RUNS")
	Expect(n).To(BeNumerically(">", 0), "SOAK_RUNS")
	return n
}

// soakedEntries is the whole catalogue, forwarded entries included.
func soakedEntries() []*catalogue.Scenario {
	GinkgoHelper()
	entries, err := catalogue.All()
	Expect(err).NotTo(HaveOccurred())
	Expect(entries).NotTo(BeEmpty())
	return entries
}

var _ = Describe("determinism under load", Label("soak"), Serial, func() {
	It("gives every example and catalogue variant the same verdicts on every run while a CPU hog runs", func(ctx SpecContext) {
		runs := soakRuns()
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
		entries := soakedEntries()
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
			var first []soakVerdict
			flips, errs, failed := 0, 0, 0
			began := time.Now()
			for i := range runs {
				rep, err := scenarios.Run(ctx, s.policy, scenarios.RunOptions{})
				if err != nil { // a run that could not happen is a flip of every probe
					failed++
					fmt.Fprintf(GinkgoWriter, "FLIP %s run %d could not run: %v\n", s.name, i+1, err)
					continue
				}
				var verdicts []soakVerdict
				for _, r := range rep.Results {
					verdicts = append(verdicts, soakVerdictOf(r))
					if r.Observed == probe.Error {
						errs++
					}
				}
				if first == nil {
					first = verdicts
					continue
				}
				for j := range verdicts {
					if !verdicts[j].same(first[j]) {
						flips++
						fmt.Fprintf(GinkgoWriter, "FLIP %s run %d: %s: %s (first run: %s)\n",
							s.name, i+1, verdicts[j].cell, verdicts[j], first[j])
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
		Expect(totalFlips).To(BeZero(), "verdict flips: the FLIP lines above name them")
	})
})

// Issue 16 found `repro nft-ip-protocol-in-inet` failing 4 runs in 5 only
// when its real telnet ran, which `repro --all` and the catalogue spec never
// do: the soak runs the real binary's `repro NAME` for every entry, telnet
// act included, while a CPU hog keeps both cores busy.
var _ = Describe("repro of every catalogue entry under load", Label("soak"), Serial, func() {
	It("exits 0 from `egresslab repro NAME`, real telnet included, on every run of every entry while a CPU hog runs", func(ctx SpecContext) {
		runs := soakRuns()
		bin := egresslabBinary()
		entries := soakedEntries()
		stop := cpuHog()
		defer stop()

		var summary strings.Builder
		totalFailed := 0
		start := time.Now()
		for _, s := range entries {
			failed := 0
			began := time.Now()
			for i := range runs {
				var out bytes.Buffer
				cmd := exec.CommandContext(ctx, bin, "repro", s.Name)
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				if err == nil {
					continue
				}
				var exit *exec.ExitError
				Expect(errors.As(err, &exit)).To(BeTrue(), "egresslab repro %s did not run: %v", s.Name, err)
				failed++
				// Every line of the failing run's output, so that the
				// Makefile's filter keeps it.
				fmt.Fprintf(GinkgoWriter, "FLIP repro/%s run %d exited %d:\n", s.Name, i+1, exit.ExitCode())
				for line := range strings.Lines(out.String()) {
					fmt.Fprintf(GinkgoWriter, "FLIP repro/%s run %d| %s", s.Name, i+1, strings.TrimRight(line, "\n")+"\n")
				}
			}
			totalFailed += failed
			fmt.Fprintf(&summary, "repro/%-42s %4d runs  %3d failed  %6.2f s/run\n",
				s.Name, runs, failed, time.Since(began).Seconds()/float64(runs))
		}
		fmt.Fprintf(&summary, "total: %d repro runs of %d entries in %s, %d failed\n",
			runs*len(entries), len(entries), time.Since(start).Round(time.Second), totalFailed)
		AddReportEntry("repro soak", summary.String())
		Expect(totalFailed).To(BeZero(), "repro runs that did not exit 0: the FLIP lines above show their output")
	})
})

// notSoaked are the testdata policies the regimes do not run, and why.
// Everything else under testdata/ that loads is soaked; a file that does not
// load and is not listed here fails the soak.
var notSoaked = map[string]string{
	"bench/sweep.yaml":            "131,070 cells: a fresh lab for each is days",
	"sweep/sweep.yaml":            "8,492 cells: a fresh lab for each is half an hour per round",
	"harness/escape.yaml":         "attacks the host from its lab; the harness and safety specs judge it",
	"harness/hostile.yaml":        "attacks the host from its lab; the harness spec judges it",
	"truth/tamper.yaml":           "refused on purpose (exit 3): no verdicts to compare; refusedEveryRun soaks it",
	"truth/tamper-forward.yaml":   "refused on purpose (exit 3): no verdicts to compare; refusedEveryRun soaks it",
	"warnings/three-typos.yaml":   "bad input on purpose",
	"warnings/unknown-owner.yaml": "bad input on purpose",
}

// refusedEveryRun are the testdata policies whose candidate changes the
// lab's own machinery: every run must refuse them, naming the same change.
var refusedEveryRun = []string{"truth/tamper.yaml", "truth/tamper-forward.yaml"}

var _ = Describe("refusals that depend on nothing but the ruleset", Label("soak"), func() {
	It("refuses each tamper policy in every run, naming the same change", func(ctx SpecContext) {
		runs := soakRuns()
		for _, name := range refusedEveryRun {
			p, err := scenarios.Load(filepath.Join("../testdata", name))
			Expect(err).NotTo(HaveOccurred())
			var first string
			for i := range runs {
				_, err := scenarios.Run(ctx, p, scenarios.RunOptions{})
				var tamper *netns.TamperError
				Expect(errors.As(err, &tamper)).To(BeTrue(), "%s run %d: %v", name, i+1, err)
				if i == 0 {
					first = tamper.What
				}
				Expect(tamper.What).To(Equal(first), "%s run %d", name, i+1)
			}
		}
	})
})

// The regimes of determinism_test.go on every catalogue variant and every
// testdata policy, max(1, SOAK_RUNS/10) rounds each.
var _ = Describe("verdicts that depend on nothing but the ruleset, everywhere", Label("soak"), Serial, func() {
	It("gives every cell of every catalogue variant and testdata policy the same verdict in every regime", func(ctx SpecContext) {
		rounds := max(1, soakRuns()/10)
		type named struct {
			name string
			p    *scenarios.Policy
		}
		var all []named
		files, err := filepath.Glob("../testdata/*/*.yaml")
		Expect(err).NotTo(HaveOccurred())
		for _, f := range files {
			name := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
			if _, skip := notSoaked[name]; skip || strings.HasPrefix(name, "bad/") {
				continue
			}
			p, err := scenarios.Load(f)
			Expect(err).NotTo(HaveOccurred(), "%s loads, or notSoaked says why not", name)
			all = append(all, named{name, p})
		}
		entries := soakedEntries()
		for _, s := range entries {
			for _, v := range s.Variants {
				all = append(all, named{"catalogue/" + s.Name + "/" + v.Name, v.Policy})
			}
		}
		var diffs []string
		cellsTotal := 0
		start := time.Now()
		for round := range rounds {
			began := time.Now()
			for _, n := range all {
				d, c := differences(ctx, n.p, n.name)
				for _, x := range d {
					fmt.Fprintf(GinkgoWriter, "FLIP round %d: %s\n", round+1, x)
				}
				diffs, cellsTotal = append(diffs, d...), cellsTotal+c
			}
			fmt.Fprintf(GinkgoWriter, "total: round %d of %d: %d policies in %s, %d differences so far\n",
				round+1, rounds, len(all), time.Since(began).Round(time.Second), len(diffs))
		}
		summary := fmt.Sprintf("total: %d regimes x %d cells (%d policies) x %d rounds in %s, %d differences\n",
			len(regimes), cellsTotal/rounds, len(all), rounds, time.Since(start).Round(time.Second), len(diffs))
		AddReportEntry("determinism soak", summary)
		Expect(diffs).To(BeEmpty(), "cells whose verdict differs between regimes")
	})
})
