package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/report"
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
		Long: `verify loads the policy file (version 1, docs/policy.md), starts a lab, loads
the candidate ruleset with the real tools, probes every user x host x address x
port and prints expected next to observed: a table, a JSON document, or GitHub
Actions annotations at the ruleset line that decided each failure. --junit FILE
is written on every exit, signals included.

Exit status: 0 every expectation held; 1 at least one failed; 2 bad input
(usage, policy file, or a ruleset the tool rejects); 3 the lab could not run or
a probe errored; 128+signal when SIGHUP, SIGINT, SIGQUIT or SIGTERM ended it.`,
		Example: `  sudo egresslab verify                       # reads ./egresslab.yaml
  sudo egresslab verify -f mail.yaml --format json
  sudo egresslab verify -f mail.yaml --format github --junit egresslab-junit.xml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The JUnit file is checked first: a path that cannot be
			// written is bad input, found before any lab starts. From then
			// on it is written whatever ends the run, signals included.
			name := policyName(file)
			var jf *junitFile
			if junit != "" {
				var err error
				if jf, err = createJUnit(junit, &name); err != nil {
					return &exitError{code: exitBadInput, err: err}
				}
			}
			start := time.Now()
			rep, err := verify(cmd, file, format, backstop, how, &name)
			if jf != nil {
				if rep != nil {
					rep.Duration = time.Since(start)
				}
				if jerr := jf.finish(rep, name, err); jerr != nil {
					code := reportError(err) // printed here, so that both are said
					return &exitError{code: max(code, exitNoLab), err: jerr}
				}
			}
			if rep == nil && err != nil {
				writeRunError(cmd.OutOrStdout(), format, name, file, err)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "egresslab.yaml", "the policy file")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table, json or github (annotations, and a summary in $GITHUB_STEP_SUMMARY)")
	cmd.Flags().StringVar(&junit, "junit", "", "also write a JUnit XML report to `FILE`")
	cmd.Flags().BoolVar(&how.noRule, "no-rule", false, "do not trace the rule that decided each probe (a little faster)")
	cmd.Flags().BoolVar(&how.fromHost, "from-host", false, "verify the running host's loaded ruleset, users and interface names (read only; the policy leaves ruleset: out)")
	cmd.Flags().StringVar(&how.shard, "shard", "", "probe only the `K/N`-th part of the cells (1 <= K <= N), for a CI matrix; join the parts' JSON with egresslab merge")
	cmd.Flags().BoolVar(&how.parity, "parity", false, "also fail any user x host x port whose outcome differs between IPv4 and IPv6 (unless an expectation names a family)")
	cmd.Flags().BoolVar(&how.complete, "complete", false, "also probe one cell of every class of traffic the loaded ruleset can tell apart, and say how complete that is")
	cmd.Flags().DurationVar(&backstop, "timeout", probe.DefaultBackstop,
		"how long to wait for an answer to a packet that left the lab (drops at the lab's egress never wait)")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
	return cmd
}

// verifyOptions are verify's switches beyond format and timeout.
type verifyOptions struct {
	parity, fromHost, noRule, complete bool
	shard                              string // --shard K/N, "" for the whole run
}

// verify runs the policy and prints the report; rep is nil when no run
// happened. name is updated to the policy's own name once it is loaded.
func verify(cmd *cobra.Command, file, format string, backstop time.Duration, how verifyOptions, name *string) (*scenarios.Report, error) {
	if !contains(formats, format) {
		return nil, &exitError{code: exitBadInput, err: fmt.Errorf("--format %q: want %s", format, strings.Join(formats, ", "))}
	}
	if err := checkMachine(cmd.Context()); err != nil {
		return nil, &exitError{code: exitNoLab, err: err}
	}
	p, err := scenarios.Load(file)
	if err == nil && how.fromHost {
		p, err = verifyHost(cmd.Context(), p)
	}
	if err != nil {
		return nil, err
	}
	printWarnings(os.Stderr, p, how.parity)
	if format == "github" {
		githubWarnings(cmd.OutOrStdout(), p)
	}
	*name = p.Name
	opts := scenarios.RunOptions{Backstop: backstop, NoRule: how.noRule, Complete: how.complete}
	if how.complete && how.shard != "" {
		return nil, &exitError{code: exitBadInput, err: errors.New("--complete and --shard: the classes are not split into shards; run --complete without --shard")}
	}
	plan, err := shardPlan(p, how, &opts)
	if err != nil {
		return nil, err
	}
	if isTerminal(os.Stderr) {
		opts.Progress = progress(p.Name)
	}
	rep, err := scenarios.Run(cmd.Context(), p, opts)
	if opts.Progress != nil {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if err != nil {
		return nil, labAdvice(cmd.Context(), err)
	}
	rep.Shard = plan
	if how.parity {
		rep.Parity = report.CheckParity(p, rep)
	}
	out := cmd.OutOrStdout()
	rep.Width = terminalWidth(os.Stdout)
	if err := writeReport(out, format, rep); err != nil {
		return rep, err
	}
	return rep, verdict(rep)
}

// verdict turns a report into the exit status SPEC.md gives it.
func verdict(rep *scenarios.Report) error {
	s := rep.Summary()
	switch {
	case s.Errors > 0 || rep.ClassErrors() > 0:
		return &exitError{code: exitNoLab}
	case !rep.Pass():
		return &exitError{code: exitFail}
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
