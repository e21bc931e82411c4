package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/egresslab/egresslab/netns/internal/holder"
	"github.com/egresslab/egresslab/netns/internal/labca"
)

// The lab's own processes are started by the holder, asked over its control
// socket (netns/internal/holder).

// ErrHolderGone is what a run meets when the lab went away under it.
var ErrHolderGone = errors.New("the lab's holder process has exited")

// StartError is a process the lab could not start: the file is missing or
// cannot be executed.
type StartError struct {
	Name  string
	Errno syscall.Errno
}

func (e *StartError) Error() string { return fmt.Sprintf("execute %s: %v", e.Name, e.Errno) }

// ExitError is a process of the lab's that did not exit 0.
type ExitError struct{ Status syscall.WaitStatus }

func (e *ExitError) Error() string {
	if e.Status.Signaled() {
		return "signal: " + e.Status.Signal().String()
	}
	return fmt.Sprintf("exit status %d", e.Status.ExitStatus())
}

// ExitCode is the process's exit status, or -1 if a signal ended it.
func (e *ExitError) ExitCode() int {
	if e.Status.Signaled() {
		return -1
	}
	return e.Status.ExitStatus()
}

// baseEnv is what every process of the lab's starts with.
var baseEnv = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C"}, labca.Env(holder.EtcDir)...)

// mergeEnv is base with extra's settings, a later one of a name replacing an
// earlier (execve keeps both, and getenv would read the first).
func mergeEnv(base, extra []string) []string {
	var out []string
	at := map[string]int{}
	for _, kv := range append(append([]string{}, base...), extra...) {
		name, _, _ := strings.Cut(kv, "=")
		if i, ok := at[name]; ok {
			out[i] = kv
			continue
		}
		at[name] = len(out)
		out = append(out, kv)
	}
	return out
}

// runSpec is one process to run inside the lab.
type runSpec struct {
	argv  []string
	env   []string // after baseEnv; a later PATH wins
	stdin []byte   // nil: /dev/null
	// stdinOpen: stdin does not end after its bytes (an interactive
	// program such as telnet ends at its input's end).
	stdinOpen bool
	as        *Identity // nil: the lab's root
	limit     int64     // output kept; the tool's writes beyond fail
}

// run runs s inside the lab, in every one of its namespaces, and returns its
// stdout and stderr together (see boundedOutputFile). When ctx ends the
// process is killed and what it printed so far is returned with ctx's error.
// A start that fails is a *StartError, a non-zero exit an *ExitError.
func (l *Lab) run(ctx context.Context, s runSpec) ([]byte, error) {
	if l.spawn == nil {
		return nil, ErrHolderGone
	}
	var in *os.File
	var err error
	switch {
	case s.stdinOpen:
		// A pipe that holds stdin and stays open (its writing end is
		// ours) until the process has ended.
		var w *os.File
		if in, w, err = os.Pipe(); err == nil {
			defer w.Close()
			_, err = w.Write(s.stdin) // within the pipe's buffer
		}
	case s.stdin != nil:
		in, err = memoryFile("egresslab-tool-input", s.stdin)
	default:
		in, err = os.Open(os.DevNull)
	}
	if err != nil {
		return nil, err
	}
	defer in.Close()
	out, err := boundedOutputFile(s.limit)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	id, replies, ok := l.spawn.Register()
	if !ok {
		return nil, ErrHolderGone
	}
	defer l.spawn.Forget(id)
	req := holder.Msg{ID: id, Op: "start", Argv: s.argv, Env: mergeEnv(baseEnv, s.env), As: (*holder.Creds)(s.as)}
	if err := l.spawn.Send(req, in, out); err != nil {
		return nil, fmt.Errorf("ask the lab's holder to run %s: %w", s.argv[0], err)
	}
	runErr := l.await(ctx, id, replies, s.argv[0])
	// The process shares this descriptor's offset: it is where it stopped.
	end, err := out.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, min(end, s.limit))
	if _, err := out.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, runErr
}

// await waits for the process's end; if ctx ends first, it kills it.
func (l *Lab) await(ctx context.Context, id uint64, replies chan holder.Msg, name string) error {
	var killed <-chan time.Time
	done := ctx.Done()
	for {
		select {
		case m, ok := <-replies:
			switch {
			case !ok:
				return ErrHolderGone
			case m.Op == "started":
				continue
			case m.Op == "error":
				if m.Errno != 0 {
					return &StartError{Name: name, Errno: syscall.Errno(m.Errno)}
				}
				return fmt.Errorf("start %s in lab %s: %s", name, l.cfg.Name, m.Err)
			case m.Op == "exited":
				if killed != nil || done == nil {
					return ctx.Err()
				}
				if ws := syscall.WaitStatus(m.Status); ws != 0 {
					return &ExitError{Status: ws}
				}
				return nil
			}
		case <-done:
			done = nil
			_ = l.spawn.Send(holder.Msg{ID: id, Op: "kill"})
			// The holder kills at once; a holder that does not answer is
			// not one to wait on.
			killed = time.After(2 * time.Second)
		case <-killed:
			return ctx.Err()
		}
	}
}
