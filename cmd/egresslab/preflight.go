package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/egresslab/egresslab/internal/preflight"
	"github.com/egresslab/egresslab/netns"
	"github.com/spf13/cobra"
)

// labCommands start labs; they check the machine before anything else.
// verify checks for itself, once its JUnit file is set to say why it failed.
var labCommands = map[string]bool{"repro": true, "exec": true, "shell": true}

// guardUsage makes every usage error exit 2: an unknown command, a stray
// argument (cobra reports both as plain errors) as well as a bad flag; and
// it checks, before a lab command runs, that the machine can run a lab.
func guardUsage(root *cobra.Command) {
	if root.SuggestionsMinimumDistance <= 0 {
		root.SuggestionsMinimumDistance = 2
	}
	root.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.Name())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += " (did you mean " + strings.Join(s, " or ") + "?)"
		}
		return usageError(c, errors.New(msg))
	}
	if root.Run == nil && root.RunE == nil {
		root.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	}
	var wrap func(c *cobra.Command)
	wrap = func(c *cobra.Command) {
		if args := c.Args; args != nil && c != root {
			c.Args = func(c *cobra.Command, a []string) error {
				if err := args(c, a); err != nil {
					return usageError(c, err)
				}
				return nil
			}
		}
		if run := c.RunE; run != nil && labCommands[c.Name()] {
			c.RunE = func(c *cobra.Command, a []string) error { return labAdvice(c.Context(), run(c, a)) }
		}
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	wrap(root)
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if !labCommands[c.Name()] {
			return nil
		}
		if err := checkMachine(c.Context()); err != nil {
			return &exitError{code: exitNoLab, err: err}
		}
		return nil
	}
}

// usageError is one line, pointing at the help rather than printing it:
// "unknown flag: --frob; see 'egresslab verify --help'".
func usageError(c *cobra.Command, err error) error {
	return &exitError{code: exitBadInput, err: fmt.Errorf("%w; see '%s --help'", err, c.CommandPath())}
}

// checkMachine says, before a lab command starts a lab, what the machine
// lacks for one: root, its capabilities (root in an unprivileged container
// has few), user namespaces, the lab's id range, the tools. These are reads
// only; when one fails, the doctor's steps (each tried in throwaway
// namespaces) say what to change where egresslab runs.
func checkMachine(ctx context.Context) error {
	err := quickCheck()
	if err == nil {
		return nil
	}
	if bad := preflight.Failed(preflight.Run(ctx)); len(bad) > 0 {
		return fmt.Errorf("%w\n%w", err, &preflight.Error{Failed: bad})
	}
	return err
}

// labAdvice is for a lab that could not start although quickCheck passed: it
// runs the doctor's steps and adds the ones that failed, with their fixes, to
// err. Errors of bad input, interruptions and runs that happened pass as they
// are.
func labAdvice(ctx context.Context, err error) error {
	if err == nil || isBadInput(err) || ctx.Err() != nil {
		return err
	}
	var ee *exitError
	if errors.As(err, &ee) && (ee.code != exitNoLab || ee.err == nil) {
		return err // a run that happened, or a status of its own
	}
	var said *preflight.Error
	var ids *netns.IDRangeError // says what to add itself
	if errors.As(err, &said) || errors.As(err, &ids) {
		return err
	}
	if bad := preflight.Failed(preflight.Run(ctx)); len(bad) > 0 {
		return &exitError{code: exitNoLab, err: fmt.Errorf("%w\n%w", err, &preflight.Error{Failed: bad})}
	}
	return err
}

func quickCheck() error {
	if os.Geteuid() != 0 {
		if rootlessFailure != nil {
			return fmt.Errorf("as a user, egresslab runs its labs rootless, and could not: %w", rootlessFailure)
		}
		return errors.New("the lab needs root privileges: run egresslab as root (sudo egresslab ...)")
	}
	if missing := preflight.MissingCapabilities(); len(missing) > 0 {
		return fmt.Errorf("running as root without %s, as in an unprivileged container: the lab needs them to create namespaces and load rules; run the container with --privileged (or --cap-add %s)",
			strings.Join(missing, ", "), strings.ReplaceAll(strings.Join(missing, " --cap-add "), "CAP_", ""))
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		return errors.New("user namespaces are switched off on this machine (user.max_user_namespaces = 0): the lab needs them; set it above 0")
	}
	if preflight.RunsNested() && !netns.Rootless() {
		return errors.New("egresslab runs inside a user namespace that does not map the ids a lab needs (as `unshare --user --map-root-user` makes)")
	}
	path := os.Getenv("PATH") + ":/usr/local/sbin:/usr/sbin:/sbin"
	var pkgs, cmds []string
	for _, t := range preflight.LabTools {
		if lookPathIn(t.Command, path) {
			continue
		}
		cmds = append(cmds, t.Command)
		if !contains(pkgs, t.Package) {
			pkgs = append(pkgs, t.Package)
		}
	}
	if len(cmds) > 0 {
		return fmt.Errorf("the lab needs %s: install %s (apt-get install %s)", strings.Join(cmds, ", "), strings.Join(pkgs, " and "), strings.Join(pkgs, " "))
	}
	return nil
}

func lookPathIn(cmd, path string) bool {
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			continue
		}
		if st, err := os.Stat(dir + "/" + cmd); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return true
		}
	}
	_, err := exec.LookPath(cmd)
	return err == nil && !strings.Contains(cmd, "/")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
