package preflight

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Every step runs its tool in a child of its own, in namespaces made for it.

// nsOptions is how a step's child process is started.
type nsOptions struct {
	flags  uintptr
	labIDs bool   // map the lab's 65,536 ids (root only), else one id: the caller's own
	stdin  string // the child's input
}

// stepTimeout bounds one step: each is a fork and one small tool.
const stepTimeout = 20 * time.Second

// runIn runs argv in fresh namespaces as their root, and returns its output.
// The child maps only the caller's own id (or, with labIDs, IDBase's range):
// enough to be root over the namespaces it made, nothing outside them.
func runIn(ctx context.Context, env Env, o nsOptions, argv ...string) ([]byte, error) {
	path, ok := lookTool(argv[0])
	if !ok {
		return nil, &ToolError{Missing: []Tool{toolFor(argv[0])}}
	}
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	cmd.Stdin = strings.NewReader(o.stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	uid, gid := os.Geteuid(), os.Getegid()
	idmap := []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
	gidmap := []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
	if o.labIDs {
		idmap = []syscall.SysProcIDMap{{ContainerID: 0, HostID: IDBase, Size: LabIDs}}
		if env.Rootless {
			// a rootless start's namespace: its own ids 0-65535, in its two
			// ranges (one range of a child's map must lie in one of its
			// parent's)
			idmap = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: 1, HostID: 1, Size: LabIDs - 1}}
		}
		gidmap = idmap
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  o.flags,
		UidMappings: idmap, GidMappings: gidmap,
		// Only the lab's own map needs setgroups (its users have groups); an
		// unprivileged process, or one in a namespace that denies setgroups
		// (unshare --map-root-user), may map its own gid only with it denied.
		GidMappingsEnableSetgroups: o.labIDs,
		Credential:                 &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: !o.labIDs},
		Pdeathsig:                  syscall.SIGKILL,
	}
	err := cmd.Run()
	if err == nil {
		return out.Bytes(), nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.Bytes(), &RefusedError{Tool: argv[0], Output: out.String()}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return nil, &NamespaceError{What: namespaceNames(o.flags), Errno: errno}
	}
	return nil, err
}

func namespaceNames(flags uintptr) string {
	var names []string
	for _, f := range []struct {
		flag uintptr
		name string
	}{{unix.CLONE_NEWUSER, "user"}, {unix.CLONE_NEWNET, "network"}, {unix.CLONE_NEWNS, "mount"}} {
		if flags&f.flag != 0 {
			names = append(names, f.name)
		}
	}
	return "a " + strings.Join(names, " + ") + " namespace"
}
