package preflight

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Rootless, a lab's root is the caller's own id and its ids 1-65535 come from
// the caller's subordinate ranges, through the setuid helpers newuidmap and
// newgidmap (shadow's, Debian package uidmap), as rootless podman maps them.

// SubordinateRange is a range of /etc/subuid or /etc/subgid.
type SubordinateRange struct{ Start, Count int }

// Subordinate returns the caller's first range of at least want ids in file
// (/etc/subuid or /etc/subgid), or the largest it has (ok false).
func Subordinate(file string, u *user.User, want int) (r SubordinateRange, ok bool) {
	f, err := os.Open(file)
	if err != nil {
		return r, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(parts) != 3 || parts[0] != u.Username && parts[0] != u.Uid {
			continue
		}
		start, err1 := strconv.Atoi(parts[1])
		count, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil {
			continue
		}
		if count >= want {
			return SubordinateRange{start, count}, true
		}
		if count > r.Count {
			r = SubordinateRange{start, count}
		}
	}
	return r, false
}

func tryRootlessIDs(ctx context.Context, env Env) error {
	u, err := user.Current()
	if err != nil {
		return fmt.Errorf("who is running: %w", err)
	}
	need := LabIDs - 1 // ids 1-65535; the lab's root is the caller
	subuid, okU := Subordinate("/etc/subuid", u, need)
	if !okU {
		return &IDRangeError{Why: fmt.Sprintf("user %s has %d subordinate uids in /etc/subuid; a lab needs %d", u.Username, subuid.Count, need),
			NoSubordinate: "subuid", Have: subuid.Count, User: u.Username}
	}
	subgid, okG := Subordinate("/etc/subgid", u, need)
	if !okG {
		return &IDRangeError{Why: fmt.Sprintf("user %s has %d subordinate gids in /etc/subgid; a lab needs %d", u.Username, subgid.Count, need),
			NoSubordinate: "subgid", Have: subgid.Count, User: u.Username}
	}
	var missing []Tool
	paths := map[string]string{}
	for _, t := range RootlessTools {
		p, ok := lookTool(t.Command)
		if !ok {
			missing = append(missing, t)
		}
		paths[t.Command] = p
	}
	if len(missing) > 0 {
		return &ToolError{Missing: missing}
	}
	// A child in a fresh user namespace waits on its stdin while its maps
	// are written, then shows them.
	sh, ok := lookTool("sh")
	if !ok {
		return &ToolError{Missing: []Tool{toolFor("sh")}}
	}
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	child := exec.CommandContext(ctx, sh, "-c", "read -r _ && cat /proc/self/uid_map /proc/self/gid_map")
	in, err := child.StdinPipe()
	if err != nil {
		return err
	}
	var out strings.Builder
	child.Stdout, child.Stderr = &out, &out
	child.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER, Pdeathsig: syscall.SIGKILL}
	if err := child.Start(); err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return &NamespaceError{What: "a user namespace", Errno: errno}
		}
		return err
	}
	pid := strconv.Itoa(child.Process.Pid)
	mapErr := func() error {
		for _, m := range []struct {
			tool    string
			own     int
			sub     SubordinateRange
			subFile string
		}{{"newuidmap", os.Getuid(), subuid, "/etc/subuid"}, {"newgidmap", os.Getgid(), subgid, "/etc/subgid"}} {
			cmd := exec.CommandContext(ctx, paths[m.tool], pid, "0", strconv.Itoa(m.own), "1", "1", strconv.Itoa(m.sub.Start), strconv.Itoa(need))
			if b, err := cmd.CombinedOutput(); err != nil {
				return &RefusedError{Tool: m.tool, Output: fmt.Sprintf("%s (%v)", b, err)}
			}
		}
		return nil
	}()
	_, _ = io.WriteString(in, "\n")
	in.Close()
	waitErr := child.Wait()
	if mapErr != nil {
		return mapErr
	}
	if waitErr != nil {
		return &RefusedError{Tool: "a process in the mapped user namespace", Output: out.String()}
	}
	if lines := strings.Count(strings.TrimSpace(out.String()), "\n") + 1; lines != 4 {
		return &RefusedError{Tool: "the id maps", Output: "want two ranges each, got: " + out.String()}
	}
	return nil
}

// rootless is what SetRootless recorded.
var rootless struct {
	user       string
	uids, gids int
}

// SetRootless tells the steps that this process is a rootless start's,
// root of a user namespace of its own that maps uids and gids ids of
// user's: the steps then try what such a process can.
func SetRootless(user string, uids, gids int) {
	rootless.user, rootless.uids, rootless.gids = user, uids, gids
}

// rootlessHelpers checks that newuidmap and newgidmap can write a map: they
// are set-user-ID root, or carry file capabilities (as Fedora ships them).
func rootlessHelpers() error {
	var missing []Tool
	for _, t := range RootlessTools {
		p, ok := lookTool(t.Command)
		if !ok {
			missing = append(missing, t)
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return fmt.Errorf("look at %s: %w", p, err)
		}
		if st.Mode&unix.S_ISUID != 0 && st.Uid == 0 {
			continue
		}
		if _, err := unix.Getxattr(p, "security.capability", nil); err == nil {
			continue
		}
		return &HelperError{Path: p}
	}
	if len(missing) > 0 {
		return &ToolError{Missing: missing}
	}
	return nil
}

// Notes are what works differently here without failing a step: rootless,
// how the lab's processes are bounded and how large a ruleset loads.
func Notes(env Env) []string {
	if env.Root {
		return nil
	}
	notes := []string{
		"rootless, one netlink batch of more than about 400 rules does not load (only the host's CAP_NET_ADMIN can enlarge the tools' netlink buffers): run egresslab as root for larger rulesets",
		"rootless, a port range on the lab's loopback (a host at 127.0.0.1 or ::1 with ports: [N-M]) does not run: it needs a BPF program, which only the host's CAP_BPF loads: run egresslab as root for those (ranges beyond the uplink and verify --complete run rootless)",
	}
	if dir, ok := writableCgroup(); ok {
		return append(notes, "rootless, "+env.User+" may write egresslab's own cgroup ("+dir+", delegated): labs are bounded there as under root")
	}
	return append(notes, "rootless, the lab's processes are bounded by RLIMIT_NPROC (per lab uid) instead of a cgroup, and its memory is not bounded: egresslab's own cgroup is not writable by "+env.User+" (a systemd user session delegates one: `systemd-run --user --scope egresslab ...`)")
}

// writableCgroup is the cgroup a lab's would be made under, when this user
// may write it: cgroup v2's own, else v1's pids hierarchy's.
func writableCgroup() (string, bool) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", false
	}
	for _, ln := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(ln, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dir = "/sys/fs/cgroup" + parts[2]
			if _, err := os.Stat(dir + "/cgroup.subtree_control"); err != nil {
				continue // v1's hierarchies hold /sys/fs/cgroup
			}
		case parts[1] == "pids":
			dir = "/sys/fs/cgroup/pids" + parts[2]
		default:
			continue
		}
		if unix.Access(dir, unix.W_OK) == nil {
			return dir, true
		}
	}
	return "", false
}
