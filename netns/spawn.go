package netns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns/internal/labca"
)

// The lab's own processes (the candidate's tools and scripts, the harness's
// listings, a real client as a user) are started by the holder, which is
// already inside every namespace of the lab: a fork of a running process,
// where nsenter would cost an exec of its own and a Go shim (for the buffer
// filter) another, each paying this machine's page faults (about 8 and 25 ms
// per tool, measured with strace on `egresslab verify`).
//
// The parent asks over a SOCK_SEQPACKET socket (the holder's fd 3): one JSON
// message per request, with the process's stdin and output passed as
// descriptors. The holder answers "started" (or "error") and later "exited"
// with the wait status. Processes run as the lab's root start from one thread
// of the holder that carries the buffer filter (netns/internal/sndbuf); a
// user's start from another, unfiltered, as a user on a host would be.

// spawnFD is the holder's end of the control socket.
const spawnFD = 3

// spawnMsg is a request (start, kill) or a reply (started, error, exited).
type spawnMsg struct {
	ID   uint64    `json:"id"`
	Op   string    `json:"op"`
	Argv []string  `json:"argv,omitempty"`
	Env  []string  `json:"env,omitempty"`
	As   *Identity `json:"as,omitempty"` // nil: the lab's root

	Status int    `json:"status,omitempty"` // exited: the wait status
	Err    string `json:"err,omitempty"`    // error: why it did not start
	Errno  int    `json:"errno,omitempty"`
}

// spawner is the parent's end of the control socket.
type spawner struct {
	conn *net.UnixConn

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan spawnMsg
	gone    bool
}

func newSpawner(f *os.File) (*spawner, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("the holder's control socket: %w", err)
	}
	s := &spawner{conn: c.(*net.UnixConn), waiting: map[uint64]chan spawnMsg{}}
	go s.read()
	return s, nil
}

func (s *spawner) read() {
	buf := make([]byte, 64<<10)
	for {
		n, _, _, _, err := s.conn.ReadMsgUnix(buf, nil) // a descriptor sent here is dropped
		if err != nil || n == 0 {
			break
		}
		var m spawnMsg
		if json.Unmarshal(buf[:n], &m) != nil {
			continue
		}
		s.mu.Lock()
		if ch, ok := s.waiting[m.ID]; ok {
			select {
			case ch <- m:
			default: // more replies than a run reads: the holder is not ours
			}
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.gone = true
	for id, ch := range s.waiting {
		close(ch)
		delete(s.waiting, id)
	}
	s.mu.Unlock()
}

func (s *spawner) send(m spawnMsg, files ...*os.File) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	_, _, err = s.conn.WriteMsgUnix(b, oob, nil)
	runtime.KeepAlive(files)
	return err
}

func (s *spawner) register() (uint64, chan spawnMsg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return 0, nil, ErrHolderGone
	}
	s.next++
	ch := make(chan spawnMsg, 2)
	s.waiting[s.next] = ch
	return s.next, ch, nil
}

func (s *spawner) forget(id uint64) {
	s.mu.Lock()
	delete(s.waiting, id)
	s.mu.Unlock()
}

func (s *spawner) close() error { return s.conn.Close() }

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
var baseEnv = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C"}, labca.Env(labEtcDir)...)

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
	id, replies, err := l.spawn.register()
	if err != nil {
		return nil, err
	}
	defer l.spawn.forget(id)
	req := spawnMsg{ID: id, Op: "start", Argv: s.argv, Env: mergeEnv(baseEnv, s.env), As: s.as}
	if err := l.spawn.send(req, in, out); err != nil {
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
func (l *Lab) await(ctx context.Context, id uint64, replies chan spawnMsg, name string) error {
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
			_ = l.spawn.send(spawnMsg{ID: id, Op: "kill"})
			// The holder kills at once; a holder that does not answer is
			// not one to wait on.
			killed = time.After(2 * time.Second)
		case <-killed:
			return ctx.Err()
		}
	}
}
