package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version may be set at build time by a packager (-ldflags "-X main.version=...");
// otherwise the module version the Go toolchain stamped into the binary is used.
var version = ""

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print egresslab's version and the commit it was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return nil
		},
	}
}

// versionLine is "egresslab VERSION (commit REV, TIME[, modified]; GOVERSION)".
// `go install .../cmd/egresslab@vX` stamps the module version (a pseudo-version
// names its commit); a build in a git checkout also stamps vcs.revision.
func versionLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "egresslab " + or(version, "unknown") + " (no build information in this binary)"
	}
	v := or(version, bi.Main.Version)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	commit := settings["vcs.revision"]
	if commit == "" {
		commit = pseudoVersionCommit(bi.Main.Version)
	}
	var parts []string
	switch {
	case commit != "":
		parts = append(parts, "commit "+commit)
	case bi.Main.Sum != "":
		// A tagged release installed with go install carries no VCS
		// settings; its module checksum names exactly what was built.
		parts = append(parts, "module sum "+bi.Main.Sum)
	}
	if t := settings["vcs.time"]; t != "" {
		parts = append(parts, t)
	}
	if settings["vcs.modified"] == "true" {
		parts = append(parts, "modified")
	}
	line := "egresslab " + or(v, "(devel)")
	if len(parts) > 0 {
		line += " (" + strings.Join(parts, ", ") + "; " + bi.GoVersion + ")"
	} else {
		line += " (" + bi.GoVersion + ")"
	}
	return line
}

// pseudoVersionCommit is the commit a pseudo-version names
// (v0.0.0-20261125114350-c37a1b2d4e5f), or "".
func pseudoVersionCommit(v string) string {
	v, _, _ = strings.Cut(v, "+")
	i := strings.LastIndexByte(v, '-')
	if i < 0 || len(v)-i-1 != 12 {
		return ""
	}
	rev := v[i+1:]
	if strings.Trim(rev, "0123456789abcdef") != "" {
		return ""
	}
	return rev
}

func or(s, def string) string {
	if s == "" || s == "(devel)" {
		return def
	}
	return s
}
