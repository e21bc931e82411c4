// Command egresslab proves, before a firewall ruleset ships, which users on a
// host can reach which destinations over IPv4 and IPv6. See docs/ (docs/commands.md).
package main

import (
	"github.com/egresslab/egresslab/internal/labterm"

	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/ruleset"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// Exit statuses, as SPEC.md defines them; where several apply the highest wins.
const (
	exitPass     = 0
	exitFail     = 1 // an expectation failed
	exitBadInput = 2 // usage, policy file, or a ruleset the real tool rejects
	exitNoLab    = 3 // the lab could not run, or a probe errored
)

// exitError carries an exit status out of a command.
type exitError struct {
	code int
	err  error // printed to stderr when not nil
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func main() {
	netns.InitRootless()        // a rootless start's middle stage (rootless.go) never returns
	netns.CloseInheritedFiles() // `egresslab verify 9>>FILE`: nothing of the caller's reaches a lab
	netns.Init()                // a lab's holder is this binary, re-executed
	if status, started := startRootless(os.Args[1:]); started {
		os.Exit(status)
	}
	if os.Getenv("GOGC") == "" {
		// A sweep holds its 131,070 results: at the default (100) the heap
		// may grow to twice what is live, 138 MB peak RSS; at 50 it peaks at
		// 113-125 MB, for a little more collection (make bench).
		debug.SetGCPercent(50)
	}
	root := newRootCommand()
	guardUsage(root)
	os.Exit(runInterruptible(func(ctx context.Context) int {
		err := root.ExecuteContext(ctx)
		if ctx.Err() != nil {
			return 0 // interrupted: the signal decides the status, and says so
		}
		return reportError(err)
	}))
}

// reportError prints err and returns the exit status it stands for.
func reportError(err error) int {
	if err == nil {
		return exitPass
	}
	code, msg := describe(err)
	if msg != "" {
		fmt.Fprintln(os.Stderr, "egresslab:", msg)
	}
	return code
}

// describe is the exit status err stands for and what to say of it ("" when
// the output has said it already).
func describe(err error) (int, string) {
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err == nil {
			return ee.code, ""
		}
		return ee.code, ee.err.Error()
	}
	return statusOf(err), err.Error()
}

// statusOf classifies an error from loading or running a policy.
func statusOf(err error) int {
	var perr *scenarios.Error
	var rerr *ruleset.RulesetError
	var uerr *netns.UnavailableError
	var pathErr *fs.PathError
	switch {
	case errors.As(err, &perr), errors.As(err, &rerr):
		return exitBadInput
	case errors.As(err, &uerr):
		return exitNoLab
	case errors.As(err, &pathErr) && errors.Is(pathErr, fs.ErrNotExist):
		// a policy file that is not there is bad input; a netlink ENOENT
		// (a table the candidate deleted) is not
		return exitBadInput
	}
	return exitNoLab
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "egresslab",
		Short: "Prove which users can reach which destinations, over IPv4 and IPv6",
		Long: `egresslab loads a candidate firewall ruleset with the real tools into a throwaway
lab (user + network + mount namespaces), serves the destinations from inside it,
dials every address of every name as real kernel identities, and prints what
the policy expected next to what happened, per address family.`,
		Example: `  sudo egresslab repro                 # the telnet surprise: an IPv6 bypass
  sudo egresslab verify -f egresslab.yaml
  sudo egresslab verify --format json --junit report.xml`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(), // --version
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(usageError)
	root.AddCommand(newVerifyCommand(), newLintCommand(), newDiffCommand(), newExecCommand(), newShellCommand(),
		newReproCommand(), newScenariosCommand(), newVersionCommand(), newDoctorCommand(), newMergeCommand())
	return root
}

// isTerminal reports whether f is a terminal (colour and progress go only there).
func isTerminal(f *os.File) bool { return labterm.IsTerminal(f) }

// terminalWidth is f's width in columns when f is a terminal, else 0 (no limit).
func terminalWidth(f *os.File) int {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}

func useColor(f *os.File) bool {
	return isTerminal(f) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}
