package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/spf13/cobra"
)

func newVerifyCommand() *cobra.Command {
	var (
		file     string
		format   string
		junit    string
		how      verifyOptions
		backstop time.Duration
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify a policy file against its candidate ruleset in a throwaway lab",
		Long: `verify loads the policy file (SPEC.md, version 1), starts a lab, loads the
candidate ruleset with the real tools, probes every user x host x address x port
and prints expected next to observed.

Exit status: 0 every expectation held; 1 at least one failed; 2 bad input
(usage, policy file, or a ruleset the tool rejects); 3 the lab could not run or
a probe errored.`,
		Example: `  sudo egresslab verify                       # reads ./egresslab.yaml
  sudo egresslab verify -f mail.yaml --format json
  sudo egresslab verify -f mail.yaml --junit egresslab-junit.xml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The JUnit file is opened first: a path that cannot be written
			// is bad input, found before any lab starts. Once open, it is
			// written whatever the exit status, so CI always has a report.
			var junitFile *os.File
			if junit != "" {
				f, err := os.Create(junit)
				if err != nil {
					return &exitError{code: exitBadInput, err: fmt.Errorf("--junit: %w", err)}
				}
				junitFile = f
			}
			name := policyName(file)
			start := time.Now()
			rep, err := verify(cmd, file, format, backstop, how, &name)
			if junitFile != nil {
				if rep != nil {
					rep.Duration = time.Since(start)
				}
				if jerr := writeJUnit(junitFile, rep, name, err); jerr != nil {
					code := reportError(err) // printed here, so that both are said
					return &exitError{code: max(code, exitNoLab), err: jerr}
				}
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "egresslab.yaml", "the policy file")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	cmd.Flags().StringVar(&junit, "junit", "", "also write a JUnit XML report to `FILE`")
	cmd.Flags().BoolVar(&how.noRule, "no-rule", false, "do not trace the rule that decided each probe (a little faster)")
	cmd.Flags().BoolVar(&how.fromHost, "from-host", false, "verify the running host's loaded ruleset, users and interface names (read only; the policy leaves ruleset: out)")
	cmd.Flags().BoolVar(&how.parity, "parity", false, "also fail any user x host x port whose outcome differs between IPv4 and IPv6 (unless an expectation names a family)")
	cmd.Flags().DurationVar(&backstop, "timeout", probe.DefaultBackstop,
		"how long to wait for an answer to a packet that left the lab (drops at the lab's egress never wait)")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
	return cmd
}

// verifyOptions are verify's switches beyond format and timeout.
type verifyOptions struct{ parity, fromHost, noRule bool }

// verify runs the policy and prints the report; rep is nil when no run
// happened. name is updated to the policy's own name once it is loaded.
func verify(cmd *cobra.Command, file, format string, backstop time.Duration, how verifyOptions, name *string) (*scenarios.Report, error) {
	if format != "table" && format != "json" {
		return nil, &exitError{code: exitBadInput, err: fmt.Errorf("--format %q: want table or json", format)}
	}
	p, err := scenarios.Load(file)
	if err == nil && how.fromHost {
		p, err = verifyHost(cmd.Context(), p)
	}
	if err != nil {
		return nil, err
	}
	printWarnings(os.Stderr, p, how.parity)
	*name = p.Name
	opts := scenarios.RunOptions{Backstop: backstop, NoRule: how.noRule}
	if isTerminal(os.Stderr) {
		opts.Progress = progress(p.Name)
	}
	rep, err := scenarios.Run(cmd.Context(), p, opts)
	if opts.Progress != nil {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if err != nil {
		return nil, err
	}
	if how.parity {
		rep.Parity = scenarios.CheckParity(p, rep)
	}
	out := cmd.OutOrStdout()
	rep.Width = terminalWidth(os.Stdout)
	if format == "json" {
		err = rep.WriteJSON(out)
	} else {
		err = rep.WriteTable(out, useColor(os.Stdout))
	}
	if err != nil {
		return rep, err
	}
	return rep, verdict(rep)
}

// verdict turns a report into the exit status SPEC.md gives it.
func verdict(rep *scenarios.Report) error {
	s := rep.Summary()
	switch {
	case s.Errors > 0:
		return &exitError{code: exitNoLab}
	case !rep.Pass():
		return &exitError{code: exitFail}
	}
	return nil
}

// writeJUnit writes rep, or, when no run happened, one failing test case
// saying why, and closes f.
func writeJUnit(f *os.File, rep *scenarios.Report, name string, runErr error) error {
	var err error
	if rep != nil {
		err = rep.WriteJUnit(f)
	} else {
		kind := "the lab could not run"
		switch {
		case runErr == nil:
			kind, runErr = "no run", errors.New("no run happened")
		case errors.Is(runErr, context.Canceled):
			kind = "interrupted"
		case isBadInput(runErr):
			kind = "bad input"
		}
		err = scenarios.WriteJUnitNotRun(f, name, kind, runErr.Error())
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write JUnit report %s: %w", f.Name(), err)
	}
	return nil
}

// isBadInput reports whether err ends the run with exit status 2.
func isBadInput(err error) bool {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code == exitBadInput
	}
	return statusOf(err) == exitBadInput
}

// policyName is the name a policy file gets before it is read: its base
// name without extension, as SPEC.md's default name.
func policyName(file string) string {
	base := filepath.Base(file)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

func progress(name string) func(done, total int) {
	var mu sync.Mutex
	start := time.Now()
	var shown time.Time
	return func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		// A few updates a second: a sweep calls this 131,070 times.
		if now := time.Now(); now.Sub(shown) >= 100*time.Millisecond || done == total {
			shown = now
			rate := float64(done) / max(now.Sub(start).Seconds(), 1e-3)
			fmt.Fprintf(os.Stderr, "\r\033[K%s: %d/%d probes, %.0f/s", name, done, total, rate)
		}
	}
}
