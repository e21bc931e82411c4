package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/egresslab/egresslab/internal/lint"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/spf13/cobra"
)

func newLintCommand() *cobra.Command {
	var file, format string
	cmd := &cobra.Command{
		Use:   "lint [-f egresslab.yaml | FILES...]",
		Short: "Compare the IPv4 and IPv6 sides of a ruleset statically (no root, no lab)",
		Long: `lint loads the ruleset files with the real tools (iptables-restore,
ip6tables-restore, nft) into a throwaway user + network namespace, reads them
back, and reports what one family has and the other lacks: rules in one family
only, owner matches without a twin, a drop policy on one side, family-limited
matches inside inet tables, and IPv6 drops that take neighbour discovery.

FILES are KIND:PATH (iptables, ip6tables, nft) or a PATH: nft syntax is
recognised, and iptables-restore input is IPv6 when its name says v6 or ip6.
With -f, the policy's ruleset is linted with the policy's users and groups.

Exit status: 0 no findings; 1 findings; 2 bad input (a file a tool rejects);
3 the tools or user namespaces are missing.`,
		Example: `  egresslab lint -f egresslab.yaml
  egresslab lint rules.v4 rules.v6 --format json
  egresslab lint nft:/etc/nftables.conf`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return &exitError{code: exitBadInput, err: fmt.Errorf("--format %q: want table or json", format)}
			}
			if cmd.Flags().Changed("file") && len(args) > 0 {
				return &exitError{code: exitBadInput, err: errors.New("give -f POLICY or ruleset FILES, not both")}
			}
			var sources []lint.Source
			var opts lint.Options
			if len(args) > 0 {
				var err error
				if sources, err = lint.FromFiles(args); err != nil {
					return &exitError{code: exitBadInput, err: err}
				}
			} else {
				p, err := scenarios.Load(file)
				if err != nil {
					return err
				}
				printWarnings(os.Stderr, p, false)
				var skipped []string
				sources, opts, skipped = lint.FromPolicy(p)
				for _, s := range skipped {
					fmt.Fprintln(os.Stderr, "egresslab lint:", s)
				}
			}
			findings, err := lint.Lint(cmd.Context(), sources, opts)
			if err != nil {
				var rerr *lint.RulesetError
				var uerr *lint.UnavailableError
				switch {
				case errors.As(err, &rerr):
					return &exitError{code: exitBadInput, err: err}
				case errors.As(err, &uerr):
					return &exitError{code: exitNoLab, err: err}
				}
				return err
			}
			if format == "json" {
				err = lint.WriteJSON(cmd.OutOrStdout(), findings)
			} else {
				err = lint.WriteText(cmd.OutOrStdout(), findings)
			}
			if err != nil {
				return err
			}
			if len(findings) > 0 {
				return &exitError{code: exitFail}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "egresslab.yaml", "the policy file whose ruleset to lint")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}
