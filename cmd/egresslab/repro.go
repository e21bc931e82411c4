package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
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

// variantRun is what one variant's lab produced.
type variantRun struct {
	out      bytes.Buffer
	problems []string
	errored  bool
	err      error
}

// repro runs the variants in parallel, each in its own lab, and prints them in order.
func repro(ctx context.Context, w io.Writer, s *scenarios.Scenario, backstop time.Duration) error {
	runs := make([]variantRun, len(s.Variants))
	var wg sync.WaitGroup
	for i := range s.Variants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i].err = runVariant(ctx, &runs[i], s, s.Variants[i], backstop)
		}()
	}
	wg.Wait()
	fmt.Fprintf(w, "%s: %s\n", s.Name, s.Story)
	status := exitPass
	for i, v := range s.Variants {
		r := &runs[i]
		fmt.Fprintf(w, "\n== %s ==\n", v.Title)
		if r.err != nil {
			return r.err
		}
		_, _ = w.Write(r.out.Bytes())
		switch {
		case r.errored:
			status = max(status, exitNoLab)
		case len(r.problems) > 0:
			status = max(status, exitFail)
			fmt.Fprintln(w, "NOT as the story says:")
			for _, p := range r.problems {
				fmt.Fprintln(w, "  "+p)
			}
		case len(v.Bypass) > 0:
			fmt.Fprintln(w, "As the story says: the bypass is there.")
			for _, c := range v.Bypass {
				fmt.Fprintf(w, "  BYPASS: %s connects although the policy denies it\n", c)
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

func runVariant(ctx context.Context, r *variantRun, s *scenarios.Scenario, v scenarios.Variant, backstop time.Duration) error {
	lab, err := scenarios.StartLab(ctx, v.Policy)
	if err != nil {
		return err
	}
	defer lab.Close()
	if c := s.Client; c.Name != "" {
		u, ok := v.Policy.User(c.User)
		if !ok {
			return fmt.Errorf("scenario %s: client user %q is not in %s", s.Name, c.User, v.Policy.File)
		}
		view, err := probe.Client(ctx, lab, scenarios.Identity(u), c.Name, c.Port, backstop)
		if err != nil {
			return err
		}
		fmt.Fprintf(&r.out, "$ telnet %s %d        # as %s (uid %d)\n", c.Name, c.Port, u.Name, u.UID)
		view.WriteTelnet(&r.out)
		fmt.Fprintln(&r.out)
	}
	rep, err := scenarios.ProbeAll(ctx, lab, v.Policy, scenarios.RunOptions{Backstop: backstop})
	if err != nil {
		return err
	}
	if err := rep.WriteTable(&r.out, useColor(os.Stdout)); err != nil {
		return err
	}
	r.problems = v.Check(rep)
	r.errored = rep.Summary().Errors > 0
	return nil
}
