package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/egresslab/egresslab/internal/catalogue"
	"github.com/spf13/cobra"
)

func newScenariosCommand() *cobra.Command {
	var export bool
	cmd := &cobra.Command{
		Use:   "scenarios [--export NAME DIR]",
		Short: "List the built-in catalogue of bypass bugs, or copy an entry out as policy files",
		Long: `scenarios lists the catalogue: each entry's name, its story in one line, and
its source. --export NAME DIR writes the entry's policy files (one per variant)
and their rulesets to DIR, ready for egresslab verify -f DIR/VARIANT.yaml; it
never overwrites a file.`,
		Example: `  egresslab scenarios
  egresslab scenarios --export ndp-blackhole ./ndp
  sudo egresslab verify -f ./ndp/drop-all-icmpv6.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if export && len(args) != 2 {
				return errors.New("--export takes NAME and DIR")
			}
			if !export && len(args) != 0 {
				return fmt.Errorf("unexpected argument %q (did you mean --export NAME DIR?)", args[0])
			}
			return nil
		},
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if export && len(args) == 0 {
				return entryNames(), cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveFilterDirs
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if export {
				return exportEntry(cmd, args[0], args[1])
			}
			all, err := catalogue.All()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSTORY")
			for _, s := range all {
				fmt.Fprintf(w, "%s\t%s\n\tsource: %s\n", s.Name, s.Summary, strings.Join(strings.Fields(s.Source), " "))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&export, "export", false, "copy entry NAME out to DIR as policy files")
	return cmd
}

func exportEntry(cmd *cobra.Command, name, dir string) error {
	s, err := catalogue.Find(name)
	if err != nil {
		return &exitError{code: exitBadInput, err: err}
	}
	policies, err := s.Export(dir)
	var exists *catalogue.ExistsError
	if errors.As(err, &exists) {
		return &exitError{code: exitBadInput, err: err}
	}
	if err != nil {
		return fmt.Errorf("export %s to %s: %w", name, dir, err)
	}
	for _, p := range policies {
		fmt.Fprintf(cmd.OutOrStdout(), "egresslab verify -f %s\n", p)
	}
	return nil
}
