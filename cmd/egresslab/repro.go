package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/egresslab/egresslab/internal/catalogue"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/report"
	"github.com/egresslab/egresslab/scenarios/report/words"
	"github.com/spf13/cobra"
)

func newReproCommand() *cobra.Command {
	var backstop time.Duration
	var all bool
	cmd := &cobra.Command{
		Use:   "repro [NAME | DIR | --all]",
		Short: "Reproduce a bypass from the built-in catalogue (default: telnet-surprise)",
		Long: `repro runs every variant of a catalogue entry in a lab of its own, in
parallel: it shows the story's client (telnet, say) as the story's user, then
the truth table, and checks that each variant gets exactly its documented
cells wrong and nothing else. DIR is an entry exported with
scenarios --export NAME DIR, edited or not: its scenario.yaml says what each
variant should get wrong. --all runs the whole catalogue. Exit 0 when every
variant behaves as documented.`,
		Example: `  sudo egresslab repro
  sudo egresslab repro ndp-blackhole
  egresslab scenarios --export ndp-blackhole ./ndp && sudo egresslab repro ./ndp
  sudo egresslab repro --all
  egresslab scenarios                 # what is in the catalogue`,
		Args: cobra.MaximumNArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return entryNames(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var entries []*catalogue.Scenario
			switch {
			case all && len(args) > 0:
				return &exitError{code: exitBadInput, err: errors.New("repro: give a NAME or --all, not both")}
			case all:
				var err error
				if entries, err = catalogue.All(); err != nil {
					return err
				}
			default:
				name := "telnet-surprise"
				if len(args) == 1 {
					name = args[0]
				}
				s, err := findEntry(name)
				if err != nil {
					return err
				}
				entries = []*catalogue.Scenario{s}
			}
			// One entry shows a real telnet beside the probes; the whole
			// catalogue shows the client view only, and stays fast.
			opts := catalogue.Options{Backstop: backstop, NoTranscript: all}
			return repro(cmd.Context(), cmd.OutOrStdout(), entries, opts)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "run the whole catalogue")
	cmd.Flags().DurationVar(&backstop, "timeout", probe.DefaultBackstop,
		"how long to wait for an answer to a packet that left the lab")
	return cmd
}

// findEntry is the catalogue entry called name or, when name is a folder,
// the entry exported there.
func findEntry(name string) (*catalogue.Scenario, error) {
	if st, err := os.Stat(name); err == nil && st.IsDir() {
		s, err := catalogue.LoadDir(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, &exitError{code: exitBadInput, err: fmt.Errorf("%s: no scenario.yaml: repro DIR takes a folder that `egresslab scenarios --export NAME DIR` wrote", name)}
		case err != nil:
			return nil, &exitError{code: exitBadInput, err: fmt.Errorf("repro %s: %w", name, err)}
		}
		return s, nil
	}
	s, err := catalogue.Find(name)
	if err != nil {
		return nil, &exitError{code: exitBadInput, err: err}
	}
	return s, nil
}

func entryNames() []string {
	all, _ := catalogue.All()
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	return names
}

// repro runs the entries' variants (in parallel, each in its own lab) and
// prints them in order.
func repro(ctx context.Context, w io.Writer, entries []*catalogue.Scenario, opts catalogue.Options) error {
	start := time.Now()
	runs, err := catalogue.Reproduce(ctx, entries, opts)
	if err != nil {
		return err
	}
	status, differ := exitPass, 0
	var last *catalogue.Scenario
	for _, r := range runs {
		if r.Scenario != last {
			if last != nil {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "%s: %s\nsource: %s\n", r.Scenario.Name, r.Scenario.Story, r.Scenario.Source)
			last = r.Scenario
		}
		r.Report.Width = terminalWidth(os.Stdout)
		if err := printRun(w, r); err != nil {
			return err
		}
		switch {
		case r.Report.Summary().Errors > 0:
			status, differ = max(status, exitNoLab), differ+1
		case len(r.Problems) > 0:
			status, differ = max(status, exitFail), differ+1
		}
	}
	fmt.Fprintln(w)
	if differ > 0 {
		fmt.Fprintf(w, "repro: %d of %d variants do NOT behave as documented.\n", differ, len(runs))
	}
	if status != exitPass {
		return &exitError{code: status}
	}
	if len(entries) == 1 {
		fmt.Fprintf(w, "repro %s: every variant behaves as documented.\n", entries[0].Name)
	} else {
		fmt.Fprintf(w, "repro: all %d variants of %d entries behave as documented (%s).\n",
			len(runs), len(entries), time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// printRun shows one variant: its client, its truth table, and how it
// compares with what the entry documents.
func printRun(w io.Writer, r catalogue.Run) error {
	fmt.Fprintf(w, "\n== %s ==\n", r.Variant.Title)
	if r.Client != nil {
		c := r.Scenario.Client
		if r.Transcript != "" {
			fmt.Fprintf(w, "$ telnet %s %d        # a real telnet, as %s (uid %d), inside the lab\n", c.Name, c.Port, r.ClientUser.Name, r.ClientUser.UID)
			fmt.Fprint(w, r.Transcript)
			fmt.Fprintln(w, "probe evidence, address by address:")
		} else {
			fmt.Fprintf(w, "$ telnet %s %d        # as %s (uid %d), from probe results\n", c.Name, c.Port, r.ClientUser.Name, r.ClientUser.UID)
		}
		words.WriteTelnet(w, *r.Client)
		fmt.Fprintln(w)
	}
	if err := r.Report.WriteTable(w, useColor(os.Stdout)); err != nil {
		return err
	}
	if len(r.Problems) > 0 {
		fmt.Fprintln(w, "NOT as documented:")
		for _, p := range r.Problems {
			fmt.Fprintln(w, "  "+p)
		}
		return nil
	}
	fmt.Fprintln(w, "As documented:")
	wrong := false
	for _, res := range r.Report.Results {
		switch res.Kind() {
		case report.Passed:
		case report.Bypass:
			wrong = true
			fmt.Fprintf(w, "  BYPASS: %s connects although the policy denies it: %s\n", res.Probe, res.Detail)
		default:
			wrong = true
			fmt.Fprintf(w, "  BROKEN: %s is %s although the policy allows it: %s\n", res.Probe, res.Observed, res.Detail)
		}
	}
	for _, c := range r.Variant.Answered {
		for _, res := range r.Report.Results {
			if res.User.Name == c.User && res.Host == c.Host && res.Family() == c.Family {
				fmt.Fprintf(w, "  ANSWERED: %s by %s\n", res.Probe, words.AnsweredBy(res.Evidence))
			}
		}
	}
	if !wrong {
		fmt.Fprintln(w, "  every expectation holds on both families.")
	}
	return nil
}
