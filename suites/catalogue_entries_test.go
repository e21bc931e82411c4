package suites_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/egresslab/egresslab/internal/catalogue"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The whole catalogue, every variant in a lab of its own, all at once (as
// `egresslab repro --all` runs it); then one spec per entry asserts that each
// variant gets exactly its documented cells wrong, in the documented way,
// and nothing else. The backstop is generous: these labs share two cores
// with each other (and whatever else runs), and an answer that is late under
// that load must not read as a return-path drop.
const catalogueBackstop = 3 * time.Second

var _ = Describe("the whole catalogue", Ordered, Label("catalogue"), func() {
	entries, loadErr := catalogue.All()
	runs := map[string][]catalogue.Run{}

	BeforeAll(func(ctx SpecContext) {
		Expect(loadErr).NotTo(HaveOccurred())
		all, err := catalogue.Reproduce(ctx, entries, catalogue.Options{NoTranscript: true, Backstop: catalogueBackstop})
		Expect(err).NotTo(HaveOccurred())
		for _, r := range all {
			runs[r.Scenario.Name] = append(runs[r.Scenario.Name], r)
		}
	}, NodeTimeout(2*time.Minute))

	It("loads", func() { Expect(loadErr).NotTo(HaveOccurred()) })

	for _, s := range entries {
		It(s.Name+": every variant gets exactly its documented cells wrong", func() {
			Expect(runs[s.Name]).To(HaveLen(len(s.Variants)))
			documented := 0
			for _, r := range runs[s.Name] {
				Expect(r.Problems).To(BeEmpty(), "%s/%s is not as documented:\n%s", s.Name, r.Variant.Name, tableOf(r.Report))
				failing := 0
				for _, res := range r.Report.Results {
					if !res.Pass() {
						failing++
						Expect(res.Observed).NotTo(Equal(probe.Error), "%s", res.Probe)
					}
				}
				// A documented cell stands for at least one failing probe;
				// a variant with none documented fails nothing.
				cells := len(r.Variant.Bypass) + len(r.Variant.Broken)
				Expect(failing >= cells).To(BeTrue(), "%s/%s: %d failing probes for %d documented cells", s.Name, r.Variant.Name, failing, cells)
				if cells == 0 {
					Expect(failing).To(BeZero(), "%s/%s", s.Name, r.Variant.Name)
				}
				documented += cells + len(r.Variant.Answered)
			}
			Expect(documented).To(BeNumerically(">", 0), "%s documents no cell: it shows no bug", s.Name)
		})
	}

	It("exports every entry as policies that verify with the same verdicts", func(ctx SpecContext) {
		type exported struct {
			run    catalogue.Run
			policy string
		}
		var all []exported
		for _, s := range entries {
			policies, err := s.Export(filepath.Join(GinkgoT().TempDir(), s.Name))
			Expect(err).NotTo(HaveOccurred())
			for i, p := range policies {
				all = append(all, exported{runs[s.Name][i], p})
			}
		}
		reports := make([]*scenarios.Report, len(all))
		errs := make([]error, len(all))
		var wg sync.WaitGroup
		for i, e := range all {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := scenarios.Load(e.policy)
				if err == nil {
					reports[i], err = scenarios.Run(ctx, p, scenarios.RunOptions{Backstop: catalogueBackstop})
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for i, e := range all {
			Expect(errs[i]).NotTo(HaveOccurred(), e.policy)
			Expect(verdicts(reports[i])).To(Equal(verdicts(e.run.Report)), "%s (exported):\n%s\nagainst the embedded %s/%s:\n%s",
				e.policy, tableOf(reports[i]), e.run.Scenario.Name, e.run.Variant.Name, tableOf(e.run.Report))
			Expect(e.run.Variant.Check(reports[i])).To(BeEmpty(), e.policy)
		}
	}, SpecTimeout(2*time.Minute))
})

// verdicts is a report as one line per probe: probe, observed, pass.
func verdicts(r *scenarios.Report) []string {
	var out []string
	for _, res := range r.Results {
		out = append(out, fmt.Sprintf("%s %s %t", res.Probe, res.Observed, res.Pass()))
	}
	return out
}

func tableOf(r *scenarios.Report) string {
	var b bytes.Buffer
	_ = r.WriteTable(&b, false)
	return strings.TrimSpace(b.String())
}
