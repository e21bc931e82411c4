package lint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"github.com/egresslab/egresslab/netns"
	"golang.org/x/sys/unix"
)

// The sandbox is a throwaway user + network + mount + PID namespace, as
// `unshare -Urnmpf --mount-proc` makes one (its own /proc, which
// iptables-legacy reads): the real tools load the files there and read
// them back, and everything dies with the one child process. It needs no
// root where unprivileged user namespaces are allowed; as root it maps the
// lab's id range (netns.IDBase), so owner matches on any uid load and the
// tools can read no host file a lab's root could not.

// setup runs first inside the sandbox: a private /run (iptables-legacy's lock
// file) and, when the caller gives them, the policy's own passwd and group, so
// owner names resolve as they will in the lab. Then it runs "$@" in a second
// new network namespace: the first was made with the user namespace, before
// its id map existed, so its /proc/net files (iptables-legacy reads
// ip_tables_names) belong to nobody.
const setup = `set -e
mount --make-rprivate /
mount -t tmpfs -o mode=0755 egresslab-lint /run
mount -t proc proc /proc
if [ -n "$EGRESSLAB_PASSWD" ]; then
  printf '%s' "$EGRESSLAB_PASSWD" >/run/passwd && mount --bind /run/passwd /etc/passwd
  printf '%s' "$EGRESSLAB_GROUP" >/run/group && mount --bind /run/group /etc/group
fi
set +e
exec unshare --net -- "$@"`

// sandbox says how to start one.
type sandbox struct {
	Passwd, Group string // "" keeps the host's files
}

// run runs argv in a fresh sandbox with stdin as its input and returns its
// stdout; a tool's failure is a *toolError carrying its stderr.
func (s sandbox) run(ctx context.Context, stdin []byte, argv ...string) ([]byte, error) {
	return s.runWith(ctx, stdin, nil, argv...)
}

// runWith is run with extra files open in the sandbox, from descriptor 3 on.
func (s sandbox) runWith(ctx context.Context, stdin []byte, extra []*os.File, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", setup, "egresslab-lint"}, argv...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/",
		"EGRESSLAB_PASSWD=" + s.Passwd, "EGRESSLAB_GROUP=" + s.Group}
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.ExtraFiles = extra
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = sandboxAttr()
	// The death signal fires when the forking thread exits: keep it.
	runtime.LockOSThread()
	err := cmd.Run()
	runtime.UnlockOSThread()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return nil, unavailable(err)
	}
	msg := strings.TrimSpace(stderr.String())
	if exit.ExitCode() == 127 || strings.Contains(msg, "mount:") {
		return nil, &UnavailableError{What: "its sandbox (a user + network + mount namespace, as unshare -Urnm makes)", Fix: oneLine(msg)}
	}
	return stdout.Bytes(), &toolError{Tool: argv[0], Out: msg}
}

// sandboxAttr maps the lab's 65,536 ids when we may (root), else only the
// caller, as unprivileged `unshare -Ur` does.
func sandboxAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNET | unix.CLONE_NEWNS | unix.CLONE_NEWPID,
		Pdeathsig:  unix.SIGKILL,
	}
	if os.Geteuid() == 0 {
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: netns.IDBase, Size: 65536}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: netns.IDBase, Size: 65536}}
		attr.GidMappingsEnableSetgroups = true
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0} // the sandbox's root: nobody outside
		return attr
	}
	attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
	attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	attr.GidMappingsEnableSetgroups = false
	return attr
}

func unavailable(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EINVAL) {
		return &UnavailableError{What: "a user namespace (as unshare -Urn makes)",
			Fix: "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0) or run as root: " + err.Error()}
	}
	return fmt.Errorf("start the lint sandbox: %w", err)
}

// toolError is a real tool's refusal of its input.
type toolError struct {
	Tool string
	Out  string
}

func (e *toolError) Error() string { return e.Tool + ": " + e.Out }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
