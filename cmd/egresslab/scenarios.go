package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/egresslab/egresslab/scenarios"
	"github.com/spf13/cobra"
)

func newScenariosCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "scenarios",
		Short: "List the built-in catalogue of bypass scenarios",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := scenarios.Catalogue()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSTORY\tSOURCE")
			for _, s := range all {
				fmt.Fprintf(w, "%s\t%s\t%s\n", s.Name, firstSentence(s.Story), s.Source)
			}
			return w.Flush()
		},
	}
}

func firstSentence(s string) string {
	for i, r := range s {
		if r == ';' || r == '.' {
			return s[:i]
		}
	}
	return s
}
