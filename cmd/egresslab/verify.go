package main

import (
	"fmt"
	"os"
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
			if format != "table" && format != "json" {
				return &exitError{code: exitBadInput, err: fmt.Errorf("--format %q: want table or json", format)}
			}
			p, err := scenarios.Load(file)
			if err != nil {
				return err
			}
			opts := scenarios.RunOptions{Backstop: backstop}
			if isTerminal(os.Stderr) {
				opts.Progress = progress(p.Name)
			}
			rep, err := scenarios.Run(cmd.Context(), p, opts)
			if opts.Progress != nil {
				fmt.Fprint(os.Stderr, "\r\033[K")
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			rep.Width = terminalWidth(os.Stdout)
			if format == "json" {
				err = rep.WriteJSON(out)
			} else {
				err = rep.WriteTable(out, useColor(os.Stdout))
			}
			if err != nil {
				return err
			}
			if junit != "" {
				if err := writeJUnit(junit, rep); err != nil {
					return &exitError{code: exitNoLab, err: err}
				}
			}
			return verdict(rep)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "egresslab.yaml", "the policy file")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	cmd.Flags().StringVar(&junit, "junit", "", "also write a JUnit XML report to `FILE`")
	cmd.Flags().DurationVar(&backstop, "timeout", probe.DefaultBackstop,
		"how long to wait for an answer to a packet that left the lab (drops at the lab's egress never wait)")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
	return cmd
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

func writeJUnit(path string, rep *scenarios.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write JUnit report: %w", err)
	}
	if err := rep.WriteJUnit(f); err != nil {
		f.Close()
		return fmt.Errorf("write JUnit report %s: %w", path, err)
	}
	return f.Close()
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
