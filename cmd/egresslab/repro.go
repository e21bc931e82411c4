package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/spf13/cobra"
)

func newReproCommand() *cobra.Command {
	var backstop time.Duration
	cmd := &cobra.Command{
		Use:   "repro [NAME]",
		Short: "Reproduce a bypass scenario from the built-in catalogue (default: telnet-surprise)",
		Long: `repro runs every variant of a catalogue scenario in a lab of its own: it shows
the story's client (telnet, say) as the story's user, then the truth table, and
checks that each variant behaves as the story says. Exit 0 when they all do.`,
		Example: `  sudo egresslab repro
  sudo egresslab scenarios            # what else is in the catalogue`,
		Args: cobra.MaximumNArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			all, _ := scenarios.Catalogue()
			var names []string
			for _, s := range all {
				names = append(names, s.Name)
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "telnet-surprise"
			if len(args) == 1 {
				name = args[0]
			}
			s, err := scenarios.FindScenario(name)
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			return repro(cmd.Context(), cmd.OutOrStdout(), s, backstop)
		},
	}
	cmd.Flags().DurationVar(&backstop, "timeout", probe.DefaultBackstop,
		"how long to wait for an answer to a packet that left the lab")
	return cmd
}

// repro runs the variants (in parallel, each in its own lab) and prints them in order.
func repro(ctx context.Context, w io.Writer, s *scenarios.Scenario, backstop time.Duration) error {
	runs, err := s.Reproduce(ctx, backstop)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %s\n", s.Name, s.Story)
	status := exitPass
	for _, r := range runs {
		fmt.Fprintf(w, "\n== %s ==\n", r.Variant.Title)
		if r.Client != nil {
			c := s.Client
			if r.Transcript != "" {
				fmt.Fprintf(w, "$ telnet %s %d        # a real telnet, as %s (uid %d), inside the lab\n", c.Name, c.Port, r.ClientUser.Name, r.ClientUser.UID)
				fmt.Fprint(w, r.Transcript)
				fmt.Fprintln(w, "probe evidence, address by address:")
			} else {
				fmt.Fprintf(w, "$ telnet %s %d        # as %s (uid %d); telnet is not installed: built from probe results\n", c.Name, c.Port, r.ClientUser.Name, r.ClientUser.UID)
			}
			r.Client.WriteTelnet(w)
			fmt.Fprintln(w)
		}
		r.Report.Width = terminalWidth(os.Stdout)
		if err := r.Report.WriteTable(w, useColor(os.Stdout)); err != nil {
			return err
		}
		switch {
		case r.Report.Summary().Errors > 0:
			status = max(status, exitNoLab)
		case len(r.Problems) > 0:
			status = max(status, exitFail)
			fmt.Fprintln(w, "NOT as the story says:")
			for _, p := range r.Problems {
				fmt.Fprintln(w, "  "+p)
			}
		case len(r.Variant.Bypass)+len(r.Variant.Broken) > 0:
			fmt.Fprintln(w, "As the story says:")
			for _, res := range r.Report.Results {
				switch {
				case res.Pass():
				case res.Observed == probe.Connected:
					fmt.Fprintf(w, "  BYPASS: %s connects although the policy denies it\n", res.Probe)
				default:
					fmt.Fprintf(w, "  BROKEN: %s is %s although the policy allows it: %s\n", res.Probe, res.Observed, res.Detail)
				}
			}
		default:
			fmt.Fprintln(w, "As the story says: every expectation holds on both families.")
		}
	}
	if status != exitPass {
		return &exitError{code: status}
	}
	fmt.Fprintf(w, "\nrepro %s: every variant behaves as the story says.\n", s.Name)
	return nil
}
