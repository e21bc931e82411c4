package ruleset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/ruleset/nftinclude"
)

// RulesetError is a ruleset that its tool rejected: bad input, not a broken lab.
type RulesetError struct {
	File string // the ruleset file as the policy names it
	Line int    // 0 when the tool did not say
	Tool string
	Msg  string // the tool's own message, cut to what may be shown
	// Limit is the lab's bound the run hit, such as "process limit (512
	// processes)", or "" when the file itself was rejected.
	Limit string
}

func (e *RulesetError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Tool, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Tool, e.Msg)
}

// IncludedFile is a file an nft ruleset includes (nftinclude.File: the policy
// reads these without a lab, so the type lives below both).
type IncludedFile = nftinclude.File

// labInputDir holds ruleset files inside the lab's private /run.
const labInputDir = "/run/egresslab/in"

// labBinDir holds the lab's iptables tools, first on a script's PATH.
const labBinDir = "/run/egresslab/bin"

// stage writes data where tools inside the lab can read it, through the
// holder's view of the file system, and returns the path inside the lab. rel
// is a clean relative path.
func stage(lab *netns.Lab, rel string, data []byte, mode os.FileMode) (string, error) {
	rel = path.Clean("/" + filepath.ToSlash(rel))[1:]
	if rel == "" {
		return "", fmt.Errorf("stage an unnamed file in lab %s", lab.Name())
	}
	inLab := path.Join(labInputDir, rel)
	if err := lab.WriteFile(inLab, data, mode); err != nil {
		return "", fmt.Errorf("stage %s in lab %s: %w", rel, lab.Name(), err)
	}
	return inLab, nil
}

// iptablesTool names the restore tool for a family and the lab's backend.
func iptablesTool(lab *netns.Lab, ipv6 bool, restore bool) string {
	name := "iptables"
	if ipv6 {
		name = "ip6tables"
	}
	name += "-" + lab.Backend()
	if restore {
		name += "-restore"
	}
	return name
}

// LoadIPTables loads an iptables-restore (or, with ipv6, ip6tables-restore)
// file of the lab's backend flavour. name is the file as the policy names it.
func LoadIPTables(ctx context.Context, lab *netns.Lab, ipv6 bool, name string, data []byte) error {
	tool, toolName := iptablesTool(lab, ipv6, true), "iptables-restore"
	if ipv6 {
		toolName = "ip6tables-restore"
	}
	out, err := lab.RunCandidate(ctx, data, nil, tool)
	if err == nil {
		return nil
	}
	if err := toolFailure(ctx, lab, err, out, name, toolName, tool, "iptables"); err != nil {
		return err
	}
	return &RulesetError{File: name, Line: iptablesErrorLine(out), Tool: toolName, Msg: showToolOutput(out, nil)}
}

// LoadNFT loads a file with `nft -f`; its includes resolve against the files
// given, staged beside it, and nowhere else: nft would try its default
// include path (the host's /etc) first and resolve "./" against its working
// directory, so every include of every staged file is rewritten to name the
// staged copy by its absolute path. An include of a file not given then
// names a file that does not exist.
func LoadNFT(ctx context.Context, lab *netns.Lab, name string, data []byte, includes ...IncludedFile) error {
	staged := map[string]string{} // path in the lab -> the policy's name for it
	incDir := path.Join(labInputDir, "include")
	toStaged := func(p string) string { return path.Join(incDir, path.Clean("/"+p)) }
	p, err := stage(lab, path.Base(name), nftinclude.Rewrite(data, toStaged), 0o644)
	if err != nil {
		return err
	}
	staged[p] = name
	for _, inc := range includes {
		rel := path.Clean("/" + inc.Path)[1:]
		ip, err := stage(lab, path.Join("include", rel), nftinclude.Rewrite(inc.Data, toStaged), 0o644)
		if err != nil {
			return err
		}
		staged[ip] = path.Join(path.Dir(name), rel)
	}
	out, err := lab.RunCandidate(ctx, nil, nil, "nft", "-f", p)
	if err == nil {
		return nil
	}
	if err := toolFailure(ctx, lab, err, out, name, "nft", "nft", "nftables"); err != nil {
		return err
	}
	file, line := nftErrorPlace(out, staged, name)
	return &RulesetError{File: file, Line: line, Tool: "nft", Msg: showToolOutput(out, staged)}
}

// RunScript runs a script inside the lab as the lab's root, as its #! line
// says (sh without one), with the lab's iptables tools first on PATH and
// $IPTABLES and $IP6TABLES naming them.
func RunScript(ctx context.Context, lab *netns.Lab, name string, data []byte) error {
	if err := stageIPTablesTools(lab); err != nil {
		return err
	}
	p, err := stage(lab, path.Base(name), data, 0o755)
	if err != nil {
		return err
	}
	argv := []string{"sh", p}
	if bytes.HasPrefix(data, []byte("#!")) {
		argv = []string{p}
	}
	env := []string{"PATH=" + labBinDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"IPTABLES=iptables", "IP6TABLES=ip6tables", "IPTABLES_RESTORE=iptables-restore", "IP6TABLES_RESTORE=ip6tables-restore"}
	out, err := lab.RunCandidate(ctx, nil, env, argv...)
	if err == nil {
		return nil
	}
	if err := toolFailure(ctx, lab, err, out, name, "script", "", ""); err != nil {
		return err
	}
	line := 0
	if m := regexp.MustCompile(regexp.QuoteMeta(p) + `: (?:line )?(\d+): `).FindSubmatch(out); m != nil {
		line, _ = strconv.Atoi(string(m[1]))
	}
	staged := map[string]string{p: name}
	msg := showScriptOutput(out, staged)
	var start *netns.StartError
	switch {
	case errors.As(err, &start) && start.Errno == syscall.ENOENT:
		msg = "cannot execute it: the interpreter its #! line names is not installed"
	case errors.As(err, &start):
		msg = "cannot execute it: " + start.Errno.Error()
	case msg == "":
		msg = err.Error()
	}
	return &RulesetError{File: name, Line: line, Tool: "script", Msg: msg}
}

// stageIPTablesTools puts iptables, ip6tables and their -restore and -save
// tools of the lab's backend flavour into the lab's own bin directory.
func stageIPTablesTools(lab *netns.Lab) error {
	for _, family := range []string{"iptables", "ip6tables"} {
		for _, suffix := range []string{"", "-restore", "-save"} {
			wrapper := fmt.Sprintf("#!/bin/sh\n# the lab's %s flavour\nexec %s-%s%s \"$@\"\n", lab.Backend(), family, lab.Backend(), suffix)
			if err := lab.WriteFile(path.Join(labBinDir, family+suffix), []byte(wrapper), 0o755); err != nil {
				return fmt.Errorf("stage the lab's %s%s in lab %s: %w", family, suffix, lab.Name(), err)
			}
		}
	}
	return nil
}

// toolFailure classifies a failed tool run whose cause is not the ruleset's
// content: cancellation, the time bound, a missing tool, a limit of the lab.
// It returns nil when the tool rejected the ruleset.
func toolFailure(ctx context.Context, lab *netns.Lab, err error, out []byte, name, label, execName, pkg string) error {
	var start *netns.StartError
	var hit *netns.LimitError
	switch {
	case errors.As(err, &hit):
		who := label
		if label == "script" {
			who = "the candidate script"
		}
		return &RulesetError{File: name, Tool: label, Limit: hit.Bound, Msg: who + " " + hit.Error()}
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, netns.ErrHolderGone):
		// The lab went away under the tool (its holder was killed): the
		// run could not happen (exit 3), whatever the tool printed.
		return fmt.Errorf("load %s in the lab: %w", name, err)
	case errors.Is(err, netns.ErrToolTimeout):
		return &RulesetError{File: name, Tool: label, Msg: fmt.Sprintf("still running after %s: a ruleset must load within that", lab.ToolTimeout())}
	case pkg != "" && errors.As(err, &start) && start.Errno == syscall.ENOENT:
		return &netns.UnavailableError{What: execName, Fix: fmt.Sprintf("install %s (apt-get install %s)", pkg, pkg)}
	case bytes.Contains(out, []byte("Message too long")):
		msg := "the kernel refused a netlink batch as too long inside the lab's user namespace"
		if netns.Rootless() {
			// egresslab lends the tools a bigger netlink buffer
			// (SO_SNDBUFFORCE), which needs CAP_NET_ADMIN on the host
			msg += ": rootless, egresslab cannot enlarge the tools' netlink buffers, so a batch of more than about 400 rules does not load; run egresslab as root for this ruleset"
		}
		return &LabLimitError{Tool: label, Msg: msg}
	}
	return nil
}

// LabLimitError is a ruleset the lab could not load for a reason of the
// lab's, not the file's: the run could not happen (exit 3), not bad input.
type LabLimitError struct {
	Tool string
	Msg  string
}

func (e *LabLimitError) Error() string {
	return fmt.Sprintf("the lab could not load the ruleset: %s: %s", e.Tool, e.Msg)
}
