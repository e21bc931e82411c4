package scenarios

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/egresslab/egresslab/netns"

	"github.com/egresslab/egresslab/probe"
)

// VariantRun is what one variant of a scenario produced in a lab of its own.
type VariantRun struct {
	Variant    Variant
	ClientUser User
	Client     *probe.ClientView // nil when the scenario names no client
	// Transcript is what a real telnet, run as the client user inside the
	// lab, printed ("" when telnet is not installed: then only Client shows).
	Transcript string
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
		if run.Transcript, err = realTelnet(ctx, lab, Identity(u), c, backstop, len(view.Attempts)); err != nil {
			return run, err
		}
	}
	if run.Report, err = ProbeAll(ctx, lab, v.Policy, RunOptions{Backstop: backstop}); err != nil {
		return run, err
	}
	run.Problems = v.Check(run.Report)
	return run, nil
}

// realTelnet runs telnet as id inside the lab, through the candidate's rules
// and the lab's resolvers, and returns what it printed. A telnet still trying
// (a dropped SYN retries for minutes) is stopped after a backstop for each
// address it may try, and the transcript says so. "" when telnet is not
// installed.
func realTelnet(ctx context.Context, lab *netns.Lab, id netns.Identity, c ClientSpec, backstop time.Duration, addrs int) (string, error) {
	if _, err := exec.LookPath("telnet"); err != nil {
		return "", nil
	}
	limit := time.Duration(max(addrs, 1)+1) * backstop
	tctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := lab.CommandAs(tctx, id, "telnet", c.Name, strconv.Itoa(int(c.Port)))
	cmd.Stdin = strings.NewReader("QUIT\r\n")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case tctx.Err() != nil && ctx.Err() == nil:
		return fmt.Sprintf("%s[still trying after %s: stopped by egresslab]\n", out, limit), nil
	case err != nil && !errors.As(err, &exit):
		return "", fmt.Errorf("run telnet in lab %s: %w", lab.Name(), err)
	}
	return string(out), nil
}
