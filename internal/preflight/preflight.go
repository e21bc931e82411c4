// Package preflight tries, one at a time, what a lab needs of the machine it
// runs on — a user namespace with the lab's ids, a network namespace, a veth
// pair, an nft table, an owner match, the tools — and says, for each thing
// that fails, what to change where egresslab runs. `egresslab doctor` prints
// the steps; verify, exec, shell and repro run them when a lab cannot start.
//
// Every step runs in throwaway namespaces of its own, made for a child
// process that dies with the step: nothing is ever tried on the host.
package preflight

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// IDBase is where a lab run as root maps its ids 0-65535 on the host (the
// same as netns.IDBase, which this package does not import: netns may one day
// call it).
const IDBase = 0x70000000

// LabIDs is how many ids a lab's user namespace maps: the uids and gids 0-65535
// the default policy and the catalogue use.
const LabIDs = 65536

// Step is one thing a lab needs, tried.
type Step struct {
	Name string
	Err  error    // nil: it worked
	Fix  []string // what to change, when it failed; worded for Env
}

// OK reports whether the step worked.
func (s Step) OK() bool { return s.Err == nil }

// Run tries every step, in order, and returns them all: a failed step does not
// stop the later ones, whose results tell apart a missing id range from a
// kernel that refuses namespaces altogether.
func Run(ctx context.Context) []Step {
	env := Detect()
	steps := []struct {
		name string
		try  func(context.Context, Env) error
	}{
		{"privileges to run a lab", tryPrivileges},
		{fmt.Sprintf("a user namespace with the lab's ids (uids and gids 0-%d)", LabIDs-1), tryLabIDs},
		{"a network namespace", tryNetNS},
		{"a veth pair", tryVeth},
		{"an nft table", tryNFTTable},
		{"an owner match (nft meta skuid)", tryNFTOwner},
		{"an owner match (iptables-nft -m owner)", tryIPTablesNFTOwner},
		{"an owner match (iptables-legacy -m owner)", tryIPTablesLegacyOwner},
		{"the tools a lab runs", tryTools},
	}
	out := make([]Step, 0, len(steps))
	for _, s := range steps {
		err := s.try(ctx, env)
		st := Step{Name: s.name, Err: err}
		if err != nil {
			st.Fix = advise(env, err)
		}
		out = append(out, st)
	}
	return out
}

// Failed returns the steps that failed.
func Failed(steps []Step) []Step {
	var bad []Step
	for _, s := range steps {
		if !s.OK() {
			bad = append(bad, s)
		}
	}
	return bad
}

// Error is a lab that cannot run here: the steps that failed, each with what
// to change.
type Error struct{ Failed []Step }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("this machine cannot run a lab (egresslab doctor tries each step):")
	for _, s := range e.Failed {
		fmt.Fprintf(&b, "\n  %s: FAILED: %v", s.Name, s.Err)
		for _, f := range s.Fix {
			fmt.Fprintf(&b, "\n    fix: %s", f)
		}
	}
	return b.String()
}

// A step's failure, typed so that advise words the fix without reading
// messages.
type (
	// HelperError: newuidmap or newgidmap, which a rootless lab needs, is
	// not set-user-ID root (nor has file capabilities).
	HelperError struct{ Path string }
	// CapabilitiesError: root, without capabilities a lab needs.
	CapabilitiesError struct{ Missing []string }
	// NamespaceError: the kernel refused a namespace (or a mapping) to a child.
	NamespaceError struct {
		What  string // "a user namespace", "a network namespace", "the uid map"
		Errno syscall.Errno
	}
	// IDRangeError: the ids a lab needs are not there to map.
	IDRangeError struct {
		Why string
		// Rootless is how many ids a rootless start maps, when fewer than
		// the lab's (0 otherwise).
		Rootless int
		// NestedMap is this process's own uid_map when it runs in a user
		// namespace that maps fewer ids than the lab needs ("" otherwise).
		NestedMap string
		// NoSubordinate: the user has no (or too small a) range in /etc/subuid
		// or /etc/subgid; Have is how many it has.
		NoSubordinate string // "subuid" or "subgid"
		Have          int
		User          string
	}
	// ToolError: a command the lab runs is missing.
	ToolError struct{ Missing []Tool }
	// RefusedError: a tool ran inside the throwaway namespaces and failed.
	RefusedError struct {
		Tool   string
		Output string
	}
)

func (e *HelperError) Error() string {
	return e.Path + " is neither set-user-ID root nor has file capabilities: it cannot write a rootless lab's id map"
}
func (e *CapabilitiesError) Error() string {
	return "root without " + strings.Join(e.Missing, ", ")
}
func (e *NamespaceError) Error() string {
	return fmt.Sprintf("the kernel refused %s: %v", e.What, e.Errno)
}
func (e *IDRangeError) Error() string { return e.Why }
func (e *ToolError) Error() string {
	var names []string
	for _, t := range e.Missing {
		names = append(names, t.Command)
	}
	return "missing " + strings.Join(names, ", ")
}
func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s failed inside a throwaway lab namespace: %s", e.Tool, oneLine(e.Output))
}

// Tool is a command a lab runs and the Debian package that has it.
type Tool struct{ Command, Package string }

// LabTools are the commands a lab runs.
var LabTools = []Tool{
	{"nsenter", "util-linux"}, {"setpriv", "util-linux"}, {"nft", "nftables"},
	{"iptables-nft-restore", "iptables"}, {"ip6tables-nft-restore", "iptables"},
	{"iptables-legacy-restore", "iptables"}, {"ip6tables-legacy-restore", "iptables"},
}

// doctorTools are what the steps run besides.
var doctorTools = []Tool{{"ip", "iproute2"}, {"mount", "mount"}}

// RootlessTools are what a rootless lab needs besides.
var RootlessTools = []Tool{{"newuidmap", "uidmap"}, {"newgidmap", "uidmap"}}

// toolPath is where the tools are looked for: sbin too, which a user's PATH
// often lacks.
func toolPath() string { return os.Getenv("PATH") + ":/usr/local/sbin:/usr/sbin:/sbin" }

// lookTool finds a tool on toolPath.
func lookTool(name string) (string, bool) {
	for _, dir := range strings.Split(toolPath(), ":") {
		if dir == "" {
			continue
		}
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// tryPrivileges: root needs its capabilities; a user runs labs rootless,
// through the set-user-ID helpers newuidmap and newgidmap.
func tryPrivileges(_ context.Context, env Env) error {
	if env.Rootless {
		return nil // the helpers did map this process's namespace
	}
	if !env.Root {
		return rootlessHelpers()
	}
	if missing := MissingCapabilities(); len(missing) > 0 {
		return &CapabilitiesError{Missing: missing}
	}
	return nil
}

// labCapabilities are what a lab needs of root, by bit number.
var labCapabilities = []struct {
	bit  uint
	name string
}{
	{21, "CAP_SYS_ADMIN"}, {12, "CAP_NET_ADMIN"}, {19, "CAP_SYS_PTRACE"}, {6, "CAP_SETGID"}, {7, "CAP_SETUID"},
}

// MissingCapabilities names the capabilities a lab needs that this process
// does not have (root in an unprivileged container has few).
func MissingCapabilities() []string {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil // cannot tell: the steps will say what failed
	}
	for _, ln := range strings.Split(string(status), "\n") {
		hex, ok := strings.CutPrefix(ln, "CapEff:")
		if !ok {
			continue
		}
		var eff uint64
		if _, err := fmt.Sscanf(strings.TrimSpace(hex), "%x", &eff); err != nil {
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

// tryLabIDs makes a user namespace that maps the lab's 65,536 ids, as a lab
// would: as root onto IDBase, rootless onto the user's subordinate ranges.
func tryLabIDs(ctx context.Context, env Env) error {
	if env.Rootless {
		// root of the rootless start's own namespace: the lab's ids are its
		// ids 0-65535, which it maps itself
		if env.RootlessIDs < LabIDs {
			return &IDRangeError{Why: fmt.Sprintf("running rootless, egresslab's user namespace maps ids 0-%d only (user %s's own id and subordinate ranges)", env.RootlessIDs-1, env.User), Rootless: env.RootlessIDs}
		}
		_, err := runIn(ctx, env, nsOptions{flags: unix.CLONE_NEWUSER, labIDs: true}, "cat", "/proc/self/uid_map")
		return err
	}
	if env.Root {
		if m := nestedMap(); m != "" {
			return &IDRangeError{Why: fmt.Sprintf("this process runs in a user namespace that does not map host ids %d-%d (its uid_map: %s)", IDBase, IDBase+LabIDs-1, m), NestedMap: m}
		}
		_, err := runIn(ctx, env, nsOptions{flags: unix.CLONE_NEWUSER, labIDs: true}, "cat", "/proc/self/uid_map")
		return err
	}
	return tryRootlessIDs(ctx, env)
}

// RunsNested reports whether this process runs in a user namespace that does
// not map the host ids a lab run as root maps its own onto.
func RunsNested() bool { return nestedMap() != "" }

// nestedMap is this process's uid_map when it does not cover IDBase's range
// (as in `unshare --user --map-root-user`), else "".
func nestedMap() string {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return ""
	}
	for _, ln := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var inside, outside, n uint64
		if _, err := fmt.Sscan(ln, &inside, &outside, &n); err == nil && inside <= IDBase && inside+n >= IDBase+LabIDs {
			return ""
		}
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

func tryNetNS(ctx context.Context, env Env) error {
	_, err := runIn(ctx, env, nsOptions{flags: unix.CLONE_NEWUSER | unix.CLONE_NEWNET}, "ip", "link", "set", "lo", "up")
	return err
}

func tryVeth(ctx context.Context, env Env) error {
	_, err := runIn(ctx, env, nsOptions{flags: unix.CLONE_NEWUSER | unix.CLONE_NEWNET},
		"ip", "link", "add", "doctor0", "type", "veth", "peer", "name", "doctor1")
	return err
}

func tryNFTTable(ctx context.Context, env Env) error {
	_, err := runIn(ctx, env, nsOptions{flags: unix.CLONE_NEWUSER | unix.CLONE_NEWNET,
		stdin: "table inet doctor {\n chain out { type filter hook output priority 0; }\n}\n"}, "nft", "-f", "-")
	return err
}

func tryNFTOwner(ctx context.Context, env Env) error {
	_, err := runIn(ctx, env, nsOptions{flags: unix.CLONE_NEWUSER | unix.CLONE_NEWNET,
		stdin: "table inet doctor {\n chain out { type filter hook output priority 0; meta skuid 0 accept; }\n}\n"}, "nft", "-f", "-")
	return err
}

const ownerRules = "*filter\n-A OUTPUT -m owner --uid-owner 0 -j ACCEPT\nCOMMIT\n"

func tryIPTablesNFTOwner(ctx context.Context, env Env) error {
	_, err := runIn(ctx, env, nsOptions{flags: unix.CLONE_NEWUSER | unix.CLONE_NEWNET, stdin: ownerRules}, "iptables-nft-restore")
	return err
}

// iptables-legacy takes a lock file under /run: the step gives it a private
// tmpfs there, in a mount namespace of its own, as a lab does.
func tryIPTablesLegacyOwner(ctx context.Context, env Env) error {
	restore, ok := lookTool("iptables-legacy-restore")
	if !ok {
		return &ToolError{Missing: []Tool{{"iptables-legacy-restore", "iptables"}}}
	}
	_, err := runIn(ctx, env, nsOptions{flags: unix.CLONE_NEWUSER | unix.CLONE_NEWNET | unix.CLONE_NEWNS, stdin: ownerRules},
		"sh", "-c", `mount --make-rprivate / && mount -t tmpfs doctor /run && exec "$0"`, restore)
	return err
}

func tryTools(_ context.Context, env Env) error {
	tools := append(append([]Tool{}, LabTools...), doctorTools...)
	if !env.Root && !env.Rootless {
		tools = append(append([]Tool{}, tools...), RootlessTools...)
	}
	var missing []Tool
	for _, t := range tools {
		if _, ok := lookTool(t.Command); !ok {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return &ToolError{Missing: missing}
	}
	return nil
}

func toolFor(cmd string) Tool {
	for _, t := range append(append(append([]Tool{}, LabTools...), doctorTools...), RootlessTools...) {
		if t.Command == cmd {
			return t
		}
	}
	switch cmd {
	case "sh":
		return Tool{cmd, "dash"}
	case "cat":
		return Tool{cmd, "coreutils"}
	}
	return Tool{cmd, cmd}
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	return s
}
