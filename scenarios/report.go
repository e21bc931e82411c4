package scenarios

import (
	"context"
	"fmt"
	"sync"

	"github.com/egresslab/egresslab/scenarios/report"
)

// The report's names, as a suite writes them (docs/go-api.md): package report
// owns them; these keep scenarios.Result and scenarios.Report working.
type (
	Result     = report.Result
	Report     = report.Report
	Summary    = report.Summary
	RunError   = report.RunError
	RuleSource = report.RuleSource
	ParityCell = report.ParityCell
	Diff       = report.Diff
	Flip       = report.Flip
	// verify --complete
	ClassResult  = report.ClassResult
	Completeness = report.Completeness
	ClassFlip    = report.ClassFlip
)

// RunDiff verifies both policies, each in a lab of its own and in parallel,
// and compares them cell by cell (report.CompareRuns).
func RunDiff(ctx context.Context, oldPolicy, newPolicy *Policy, opts RunOptions) (*Diff, error) {
	if opts.Complete {
		return runDiffComplete(ctx, oldPolicy, newPolicy, opts)
	}
	var reps [2]*Report
	var errs [2]error
	var wg sync.WaitGroup
	for i, p := range []*Policy{oldPolicy, newPolicy} {
		wg.Go(func() { reps[i], errs[i] = Run(ctx, p, opts) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", []string{"old", "new"}[i], err)
		}
	}
	return report.CompareRuns(reps[0], reps[1]), nil
}
