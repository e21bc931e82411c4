package scenarios

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/egresslab/egresslab/scenarios/classes"
	"github.com/egresslab/egresslab/scenarios/report"
)

// diff --complete compares the two rulesets class by class on the same
// representatives: each side's lab reads its own ruleset back, hands it to
// the other, and splits the union of both rulesets' rules, so that every
// class is one neither ruleset tells apart and a boundary only one side
// draws splits both. With the same hints (the new policy's values, then the
// old's) both sides pick the same representative of each class, and each
// probes it under its own ruleset and judges it by its own policy.

// crossing is what the two runs of a diff --complete share.
type crossing struct {
	rulesets [2]chan *classes.Ruleset // each side's, for the other
	hints    classes.Hints
}

// crossSide is one side's view of the crossing.
type crossSide struct {
	*crossing
	side int // 0 old, 1 new
}

func newCrossing(oldPolicy, newPolicy *Policy) *crossing {
	h := hints(newPolicy)
	o := hints(oldPolicy)
	h.Users = append(h.Users, o.Users...)
	h.Addrs = append(h.Addrs, o.Addrs...)
	h.Ports = append(h.Ports, o.Ports...)
	return &crossing{rulesets: [2]chan *classes.Ruleset{make(chan *classes.Ruleset, 1), make(chan *classes.Ruleset, 1)}, hints: h}
}

// union hands own to the other side and returns the union of both
// rulesets' rules; the matches not split stay own's (the completeness line
// speaks of own ruleset).
func (c *crossSide) union(ctx context.Context, own *classes.Ruleset) (*classes.Ruleset, error) {
	c.rulesets[1-c.side] <- own
	var other *classes.Ruleset
	select {
	case other = <-c.rulesets[c.side]:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	u := *own
	u.Rules = append(append([]classes.Rule(nil), own.Rules...), other.Rules...)
	u.Forward = append(append([]classes.Rule(nil), own.Forward...), other.Forward...)
	return &u, nil
}

// runDiffComplete runs both policies with --complete, crossing their
// rulesets; a side that fails stops the other.
func runDiffComplete(ctx context.Context, oldPolicy, newPolicy *Policy, opts RunOptions) (*Diff, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c := newCrossing(oldPolicy, newPolicy)
	var reps [2]*Report
	var errs [2]error
	var wg sync.WaitGroup
	for i, p := range []*Policy{oldPolicy, newPolicy} {
		side := opts
		side.cross = &crossSide{c, i}
		wg.Go(func() {
			reps[i], errs[i] = Run(ctx, p, side)
			if errs[i] != nil {
				cancel(errs[i])
			}
		})
	}
	wg.Wait()
	// the side that failed first, not the one it stopped
	for i, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("%s: %w", []string{"old", "new"}[i], err)
		}
	}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", []string{"old", "new"}[i], err)
		}
	}
	return report.CompareRuns(reps[0], reps[1]), nil
}
