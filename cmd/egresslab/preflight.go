package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

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
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	wrap(root)
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if !labCommands[c.Name()] {
			return nil
		}
		if err := checkMachine(); err != nil {
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

// labTools are the commands a lab runs, with the Debian package of each.
var labTools = []struct{ cmd, pkg string }{
	{"nsenter", "util-linux"}, {"setpriv", "util-linux"}, {"nft", "nftables"},
	{"iptables-nft-restore", "iptables"}, {"ip6tables-nft-restore", "iptables"},
	{"iptables-legacy-restore", "iptables"}, {"ip6tables-legacy-restore", "iptables"},
}

// labCapabilities are what a lab needs of root, by bit number.
var labCapabilities = []struct {
	bit  uint
	name string
}{
	{21, "CAP_SYS_ADMIN"}, {12, "CAP_NET_ADMIN"}, {19, "CAP_SYS_PTRACE"}, {6, "CAP_SETGID"}, {7, "CAP_SETUID"},
}

// checkMachine says what is missing for a lab: root, its capabilities (root
// in an unprivileged container has few), user namespaces, the tools.
func checkMachine() error {
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root privileges: run egresslab as root (sudo egresslab ...)")
	}
	if missing := missingCapabilities(); len(missing) > 0 {
		return fmt.Errorf("running as root without %s, as in an unprivileged container: the lab needs them to create namespaces and load rules; run the container with --privileged (or --cap-add %s)",
			strings.Join(missing, ", "), strings.ReplaceAll(strings.Join(missing, " --cap-add "), "CAP_", ""))
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		return errors.New("user namespaces are switched off on this machine (user.max_user_namespaces = 0): the lab needs them; set it above 0")
	}
	path := os.Getenv("PATH") + ":/usr/local/sbin:/usr/sbin:/sbin"
	var pkgs, cmds []string
	for _, t := range labTools {
		if lookPathIn(t.cmd, path) {
			continue
		}
		cmds = append(cmds, t.cmd)
		if !contains(pkgs, t.pkg) {
			pkgs = append(pkgs, t.pkg)
		}
	}
	if len(cmds) > 0 {
		return fmt.Errorf("the lab needs %s: install %s (apt-get install %s)", strings.Join(cmds, ", "), strings.Join(pkgs, " and "), strings.Join(pkgs, " "))
	}
	return nil
}

func missingCapabilities() []string {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil // cannot tell: the lab will say what failed
	}
	for _, ln := range strings.Split(string(status), "\n") {
		hex, ok := strings.CutPrefix(ln, "CapEff:")
		if !ok {
			continue
		}
		eff, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return nil
		}
		var missing []string
		for _, c := range labCapabilities {
			if eff&(1<<c.bit) == 0 {
				missing = append(missing, c.name)
			}
		}
		return missing
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
