package main

import (
	"fmt"
	"io"

	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/report/github"
)

// printWarnings writes the policy's warnings to w (stderr): they fail
// nothing. Under --parity a single-family host is said louder: parity has
// nothing to compare there, and a reader of a green --parity run would
// believe otherwise.
func printWarnings(w io.Writer, p *scenarios.Policy, parity bool) {
	for _, warn := range p.Warnings {
		fmt.Fprintln(w, "egresslab:", warn)
		if parity && warn.MissingFamily != "" {
			fmt.Fprintf(w, "egresslab: WARNING: --parity cannot check host %q: it has no %s address, so none of its cells has a twin to compare with\n",
				warn.Host, map[string]string{"ipv4": "IPv4", "ipv6": "IPv6"}[warn.MissingFamily])
		}
	}
}

// githubWarnings writes the policy's warnings as GitHub warning annotations
// at their place in the policy file.
func githubWarnings(w io.Writer, p *scenarios.Policy) {
	for _, warn := range p.Warnings {
		a := github.Annotation{Level: "warning", File: warn.File, Line: warn.Line, Title: "egresslab " + p.Name + ": warning", Message: warn.Msg}
		fmt.Fprintln(w, a)
	}
}
