package netns

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Command returns a command that runs inside the lab (all three namespaces)
// as the lab's root: how the candidate's tools and scripts run.
func (l *Lab) Command(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"--target", strconv.Itoa(l.pid), "--user", "--net", "--mount", "--pid", "--ipc", "--uts", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C"}
	return cmd
}

// CommandAs returns a command that runs inside the lab with id's credentials:
// a real client, seeing whatever the lab's rules allow.
func (l *Lab) CommandAs(ctx context.Context, id Identity, argv ...string) *exec.Cmd {
	groups := "--clear-groups"
	if len(id.Groups) > 0 {
		gs := make([]string, len(id.Groups))
		for i, g := range id.Groups {
			gs[i] = strconv.FormatUint(uint64(g), 10)
		}
		groups = "--groups=" + strings.Join(gs, ",")
	}
	setpriv := []string{"setpriv", "--reuid=" + strconv.FormatUint(uint64(id.UID), 10),
		"--regid=" + strconv.FormatUint(uint64(id.GID), 10), groups, "--"}
	return l.Command(ctx, append(setpriv, argv...)...)
}

// combinedOutput runs cmd and returns its stdout and stderr together. They go
// to an anonymous memory file rather than a pipe: a process the command leaves
// running in the lab (a script's daemon) keeps its copy of the output open,
// and the run must not wait for it. Such processes die with the lab's PID
// namespace.
func combinedOutput(cmd *exec.Cmd) ([]byte, error) {
	fd, err := unix.MemfdCreate("egresslab-tool-output", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "tool-output")
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	runErr := cmd.Run()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	out, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return out, runErr
}
