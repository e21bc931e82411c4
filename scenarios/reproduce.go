package scenarios

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/egresslab/egresslab/probe"
)

// VariantRun is what one variant of a scenario produced in a lab of its own.
type VariantRun struct {
	Variant    Variant
	ClientUser User
	Client     *probe.ClientView // nil when the scenario names no client
	Report     *Report
	// Problems lists where the run differs from the story; none: it holds.
	Problems []string
}

// Reproduce runs every variant of s in parallel, each in its own lab: the
// story's client first (what telnet would show), then the whole matrix, and
// compares the outcome with the story.
func (s *Scenario) Reproduce(ctx context.Context, backstop time.Duration) ([]VariantRun, error) {
	runs := make([]VariantRun, len(s.Variants))
	errs := make([]error, len(s.Variants))
	var wg sync.WaitGroup
	for i, v := range s.Variants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i], errs[i] = s.reproduce(ctx, v, backstop)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return runs, nil
}

func (s *Scenario) reproduce(ctx context.Context, v Variant, backstop time.Duration) (VariantRun, error) {
	run := VariantRun{Variant: v}
	lab, err := StartLab(ctx, v.Policy)
	if err != nil {
		return run, err
	}
	defer lab.Close()
	if c := s.Client; c.Name != "" {
		u, ok := v.Policy.User(c.User)
		if !ok {
			return run, fmt.Errorf("scenario %s: client user %q is not in %s", s.Name, c.User, v.Policy.File)
		}
		view, err := probe.Client(ctx, lab, Identity(u), c.Name, c.Port, backstop)
		if err != nil {
			return run, err
		}
		run.ClientUser, run.Client = u, &view
	}
	if run.Report, err = ProbeAll(ctx, lab, v.Policy, RunOptions{Backstop: backstop}); err != nil {
		return run, err
	}
	run.Problems = v.Check(run.Report)
	return run, nil
}
