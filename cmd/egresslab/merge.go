package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/report"
	"github.com/egresslab/egresslab/scenarios/report/shard"
	"github.com/spf13/cobra"
)

// shardPlan is the plan of verify --shard K/N (nil without it), and makes
// opts probe only the shard's cells.
func shardPlan(p *scenarios.Policy, how verifyOptions, opts *scenarios.RunOptions) (*report.Shard, error) {
	if how.shard == "" {
		return nil, nil
	}
	spec, err := shard.Parse(how.shard)
	if err != nil {
		return nil, &exitError{code: exitBadInput, err: err}
	}
	if how.parity {
		// Parity compares the two families of one cell, which may sit in
		// two shards.
		return nil, &exitError{code: exitBadInput, err: errors.New("--parity with --shard: a cell's IPv4 and IPv6 probes may be in different shards; check parity on an unsharded run")}
	}
	opts.Only = spec.Holds
	return shard.New(p, spec), nil
}

func newMergeCommand() *cobra.Command {
	var format, junit string
	cmd := &cobra.Command{
		Use:   "merge SHARD.json...",
		Short: "Join the JSON reports of verify --shard K/N runs into the report of one run",
		Long: `merge reads the JSON reports of the N shards of one run (egresslab verify
--shard K/N --format json, one per CI job) and prints the report one unsharded
run would have printed, with the same exit status. It refuses, with exit status
2 and naming which, a shard missing, a shard given twice, or a shard of another
run (another policy, ruleset digest, cells or N).

Exit status: 0 every expectation held; 1 at least one failed; 2 the shards are
not the N parts of one run; 3 a probe errored.`,
		Example: `  egresslab merge shard-1.json shard-2.json shard-3.json
  egresslab merge --format json --junit egresslab-junit.xml shards/*.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "merge"
			var jf *junitFile
			if junit != "" {
				var err error
				if jf, err = createJUnit(junit, &name); err != nil {
					return &exitError{code: exitBadInput, err: err}
				}
			}
			rep, err := merge(cmd, format, args)
			if jf != nil {
				if rep != nil {
					name = rep.Policy
				}
				if jerr := jf.finish(rep, name, err); jerr != nil {
					code := reportError(err)
					return &exitError{code: max(code, exitNoLab), err: jerr}
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	cmd.Flags().StringVar(&junit, "junit", "", "also write a JUnit XML report to `FILE`")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func merge(cmd *cobra.Command, format string, files []string) (*scenarios.Report, error) {
	if format != "table" && format != "json" {
		return nil, &exitError{code: exitBadInput, err: fmt.Errorf("--format %q: want table or json", format)}
	}
	var shards []*report.ShardReport
	for _, name := range files {
		s, err := readShard(name)
		if err != nil {
			return nil, &exitError{code: exitBadInput, err: err}
		}
		shards = append(shards, s)
	}
	rep, err := report.Merge(shards)
	if err != nil {
		return nil, &exitError{code: exitBadInput, err: fmt.Errorf("merge: %w", err)}
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

func readShard(name string) (*report.ShardReport, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return report.ReadShardReport(name, f)
}
