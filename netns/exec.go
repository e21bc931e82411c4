package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns/internal/confine"
)

// DefaultToolTimeout bounds each candidate tool and script the lab runs when
// its Config names no ToolTimeout: a script that never ends, or nft reading
// an include that never ends, is bad input.
const DefaultToolTimeout = 30 * time.Second

// ToolTimeout is how long each candidate tool and script may run.
func (l *Lab) ToolTimeout() time.Duration { return l.cfg.ToolTimeout }

// MaxToolOutput is how much of a tool's output is kept; what it prints beyond
// is discarded by the kernel (the tool's writes fail), never held in memory.
const MaxToolOutput = 1 << 20

// Command returns a command that runs inside the lab (all its namespaces)
// as the lab's root, through nsenter, for a caller that wants an *exec.Cmd
// of its own (`egresslab exec` and `shell`, with the user's terminal; the Go
// API's Session.Command). The lab's own runs (the candidate's tools and
// scripts, listings, repro's telnet) start from the holder instead (spawn.go).
// nsenter dies with the thread that started it; what it runs lives in the
// lab's PID namespace and dies with the lab. It runs in a session of its own,
// so the caller's controlling terminal is not its; a caller that gives it a
// terminal should give it one of the lab's own (a pty, as exec and shell
// do), never the operator's. Like every process of the lab's root, it has
// no CAP_SYS_PTRACE: nothing in the lab can trace or read the holder.
func (l *Lab) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return l.command(ctx, append([]string{"setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace", "--"}, argv...))
}

// command is argv through nsenter into every namespace of the lab.
// The command lives no longer than the lab: once the lab closes, it is killed,
// and one not started yet fails to start (its pid would name no lab then).
func (l *Lab) command(ctx context.Context, argv []string) *exec.Cmd {
	return l.commandNet(ctx, "--net", argv)
}

// commandNet is command with net as nsenter's network namespace option.
func (l *Lab) commandNet(ctx context.Context, net string, argv []string) *exec.Cmd {
	ctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(l.life, cancel)
	args := append([]string{"--target", strconv.Itoa(l.pid), "--user", net, "--mount", "--pid", "--ipc", "--uts", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = slices.Clone(baseEnv)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setsid: true}
	cmd.Cancel = func() error { return killInLab(cmd.Process.Pid) }
	cmd.WaitDelay = 250 * time.Millisecond // then nsenter itself is killed
	return cmd
}

// killInLab ends what nsenter (pid) runs inside the lab, rather than nsenter:
// nsenter then reaps its child and exits. Killing nsenter first would orphan
// the child outside the lab's PID namespace, to be reaped by the host's init
// whenever it gets round to it, and the lab's teardown waits for that.
func killInLab(pid int) error {
	children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	killed := false
	for _, f := range strings.Fields(string(children)) {
		if child, err := strconv.Atoi(f); err == nil && unix.Kill(child, unix.SIGKILL) == nil {
			killed = true
		}
	}
	if !killed {
		return unix.Kill(pid, unix.SIGKILL) // nothing started inside yet
	}
	return nil
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
		"--regid=" + strconv.FormatUint(uint64(id.GID), 10), groups, "--bounding-set=-sys_ptrace", "--"}
	return l.command(ctx, append(setpriv, argv...))
}

// ErrToolTimeout is a candidate tool still running at the lab's ToolTimeout.
var ErrToolTimeout = errors.New("still running")

// runCandidateTool runs a tool or script of the candidate's inside the lab,
// bounded in time (the lab's ToolTimeout) and output (MaxToolOutput), with the netlink
// buffers a host's root would get (netns/internal/sndbuf).
func (l *Lab) runCandidateTool(ctx context.Context, stdin []byte, env []string, argv ...string) ([]byte, error) {
	tctx, cancel := context.WithTimeout(ctx, l.cfg.ToolTimeout)
	defer cancel()
	if stdin == nil {
		stdin = []byte{} // a file, never a terminal or a pipe: nothing waits on input left unread
	}
	out, err := l.run(tctx, runSpec{argv: argv, env: env, stdin: stdin, limit: MaxToolOutput})
	if err != nil && ctx.Err() == nil && errors.Is(tctx.Err(), context.DeadlineExceeded) {
		return out, ErrToolTimeout
	}
	return out, err
}

// RunAs runs argv inside the lab with id's credentials (a real client,
// seeing whatever the lab's rules allow), stdin as its input, and returns
// what it printed, stdout and stderr together. With stdinStaysOpen its input
// does not end after stdin's bytes: an interactive client (telnet) reads
// them as a person's typing and waits for the other end, where at the input's
// end it would leave. When ctx ends it is killed, and what it printed so far
// comes with ctx's error. A non-zero exit is an *ExitError, a missing
// program a *StartError.
func (l *Lab) RunAs(ctx context.Context, id Identity, stdin []byte, stdinStaysOpen bool, argv ...string) ([]byte, error) {
	return l.run(ctx, runSpec{argv: argv, stdin: stdin, stdinOpen: stdinStaysOpen, as: &id, limit: MaxToolOutput})
}

// memoryFile is an anonymous file holding data, positioned at its start.
func memoryFile(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

// boundedOutputFile is a memory file that cannot grow past limit.
func boundedOutputFile(limit int64) (*os.File, error) {
	fd, err := unix.MemfdCreate("egresslab-tool-output", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("tool output file: %w", err)
	}
	f := os.NewFile(uintptr(fd), "tool-output")
	if err := f.Truncate(limit); err != nil {
		f.Close()
		return nil, fmt.Errorf("tool output file: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_GROW|unix.F_SEAL_SHRINK); err != nil {
		f.Close()
		return nil, fmt.Errorf("tool output file: %w", err)
	}
	return f, nil
}

// WriteFile creates a file of the lab's root inside the lab's private /run
// (inLab is its path inside the lab), through the holder's view of the file
// system: where the lab's tools can read it.
func (l *Lab) WriteFile(inLab string, data []byte, mode os.FileMode) error {
	onHost := filepath.Join(fmt.Sprintf("/proc/%d/root", l.pid), inLab)
	err := asLabRoot(func() error {
		if err := os.MkdirAll(filepath.Dir(onHost), 0o755); err != nil {
			return err
		}
		return os.WriteFile(onHost, data, mode)
	})
	select {
	case <-l.done:
		if err != nil {
			// Not a missing input file: the lab is gone (exit 3, not 2).
			return ErrHolderGone
		}
	default:
	}
	return err
}

// confineInBackground bounds the lab's holder beside its start-up: moving a
// process into a cgroup waits for an RCU grace period (5 to 19 ms for the two
// v1 hierarchies, measured), and the holder starts nothing of the lab's
// before New returns. The returned func waits for it; startHolder calls it
// before it returns, whatever happened.
func (l *Lab) confineInBackground() func() error {
	done := make(chan struct{})
	var limits *confine.Limits
	var err error
	go func() {
		limits, err = confine.New(l.pid)
		close(done)
	}()
	return func() error {
		<-done
		l.limits = limits
		return err
	}
}

// RunCandidate runs a candidate's tool or script (runCandidateTool) and
// returns a *LimitError when it hit a bound of the lab's, whatever its exit:
// a tool that fails for want of a process or memory failed for the lab's
// reason, and one that succeeded left the lab at its bound. A hit of the
// process limit stops it at once.
func (l *Lab) RunCandidate(ctx context.Context, stdin []byte, env []string, argv ...string) ([]byte, error) {
	wctx, stop := l.limits.Watch(ctx)
	out, err := l.runCandidateTool(wctx, stdin, env, argv...)
	stop()
	if bound := l.limits.Hit(); bound != "" && ctx.Err() == nil {
		return out, &LimitError{Bound: bound}
	}
	return out, err
}

// LimitError is a bound of the lab's that a candidate's tool or script hit.
type LimitError struct {
	Bound string // what was hit, with its value: "process limit (512 processes)"
}

func (e *LimitError) Error() string { return "hit the lab's " + e.Bound }
