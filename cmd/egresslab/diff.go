package main

import (
	"fmt"
	"time"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/spf13/cobra"
)

func newDiffCommand() *cobra.Command {
	var (
		format   string
		backstop time.Duration
		complete bool
	)
	cmd := &cobra.Command{
		Use:   "diff OLD.yaml NEW.yaml",
		Short: "Show which cells a ruleset change flips (the rollout gate)",
		Long: `diff verifies two policy files, each in a lab of its own and in parallel, and
prints only the probes (user x host x address x port) whose outcome changed,
old -> new, with whether each side meets its own policy. Typically the two
files are one policy pointing at the running ruleset and at the candidate.

Exit status: 0 no cell that passed now fails; 1 at least one does (marked !);
2 bad input; 3 a lab could not run or a probe errored.`,
		Example: `  sudo egresslab diff current.yaml candidate.yaml
  sudo egresslab diff current.yaml candidate.yaml --format json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return &exitError{code: exitBadInput, err: fmt.Errorf("--format %q: want table or json", format)}
			}
			oldPolicy, err := scenarios.Load(args[0])
			if err != nil {
				return err
			}
			newPolicy, err := scenarios.Load(args[1])
			if err != nil {
				return err
			}
			d, err := scenarios.RunDiff(cmd.Context(), oldPolicy, newPolicy, scenarios.RunOptions{Backstop: backstop, Complete: complete})
			if err != nil {
				return err
			}
			if format == "json" {
				err = d.WriteJSON(cmd.OutOrStdout())
			} else {
				err = d.WriteText(cmd.OutOrStdout())
			}
			switch {
			case err != nil:
				return err
			case d.Errors() > 0:
				return &exitError{code: exitNoLab}
			case d.Regressions() > 0:
				return &exitError{code: exitFail}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	cmd.Flags().BoolVar(&complete, "complete", false, "also compare every class of traffic each loaded ruleset can tell apart, and list the classes whose outcome changed")
	cmd.Flags().DurationVar(&backstop, "timeout", probe.DefaultBackstop,
		"how long to wait for an answer to a packet that left the lab")
	return cmd
}
