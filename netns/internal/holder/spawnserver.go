package holder

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns/internal/confine"
)

// The holder side of spawning: the holder starts and reaps the lab's
// processes for the lab (spawner.go).

// spawnServer starts and reaps the lab's processes inside the holder.
type spawnServer struct {
	conn     *net.UnixConn
	root     chan func() // runs on the filtered thread
	user     chan func() // runs on a plain thread
	mu       sync.Mutex
	running  map[int]*child // by pid
	children chan struct{}  // a child was started: the reaper has work
}

type child struct {
	id    uint64
	pidfd int
}

// serveSpawns runs in the holder for the lab's life. filter installs the
// buffer filter on the thread that starts the lab root's processes and
// returns its listener; the listener's number goes into the ready line.
func serveSpawns(filter func() (int, error)) (listener int, err error) {
	f := os.NewFile(SpawnFD, "egresslab-control")
	unix.CloseOnExec(SpawnFD) // no process of the lab's inherits it
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return -1, fmt.Errorf("the control socket: %w", err)
	}
	s := &spawnServer{conn: c.(*net.UnixConn), root: make(chan func()), user: make(chan func()),
		running: map[int]*child{}, children: make(chan struct{}, 1)}
	listener = -1
	if err := startThread(s.root, func() error {
		if err := confine.DropPtraceCapability(); err != nil {
			return fmt.Errorf("drop CAP_SYS_PTRACE for the lab's root: %w", err)
		}
		var err error
		listener, err = filter()
		return err
	}); err != nil {
		return -1, err
	}
	if err := startThread(s.user, confine.DropPtraceCapability); err != nil {
		return -1, err
	}
	go s.reap()
	go s.serve()
	return listener, nil
}

// startThread runs work on one locked thread, after setup; the thread is
// never returned to the runtime (it may carry a filter).
func startThread(work chan func(), setup func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := setup(); err != nil {
			errc <- err
			return
		}
		errc <- nil
		for fn := range work {
			fn()
		}
	}()
	return <-errc
}

func (s *spawnServer) reply(m Msg) {
	b, _ := json.Marshal(m)
	_, _, _ = s.conn.WriteMsgUnix(b, nil, nil)
}

func (s *spawnServer) serve() {
	buf, oob := make([]byte, 1<<20), make([]byte, unix.CmsgSpace(2*4))
	for {
		n, oobn, _, _, err := s.conn.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			return
		}
		fds := receivedFDs(oob[:oobn])
		var m Msg
		if err := json.Unmarshal(buf[:n], &m); err != nil || (m.Op == "start" && (len(fds) != 2 || len(m.Argv) == 0)) {
			closeAll(fds)
			continue
		}
		switch m.Op {
		case "start":
			on := s.root
			if m.As != nil {
				on = s.user
			}
			done := make(chan struct{})
			on <- func() { s.start(m, fds); close(done) }
			<-done
			closeAll(fds)
		case "kill":
			closeAll(fds)
			s.mu.Lock()
			for _, c := range s.running {
				if c.id == m.ID {
					_ = unix.PidfdSendSignal(c.pidfd, unix.SIGKILL, nil, 0)
				}
			}
			s.mu.Unlock()
		default:
			closeAll(fds)
		}
	}
}

func receivedFDs(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// start forks and executes m on the calling (locked) thread: the child
// inherits that thread's filter, or none.
func (s *spawnServer) start(m Msg, fds []int) {
	path, err := lookPath(m.Argv[0], m.Env)
	if err != nil {
		var errno syscall.Errno
		errors.As(err, &errno)
		s.reply(Msg{ID: m.ID, Op: "error", Err: err.Error(), Errno: int(errno)})
		return
	}
	// A session of its own: no controlling terminal (/dev/tty fails with
	// ENXIO), and no terminal's signals.
	sys := &syscall.SysProcAttr{Setsid: true}
	if m.As != nil {
		sys.Credential = &syscall.Credential{Uid: m.As.UID, Gid: m.As.GID, Groups: m.As.Groups}
	}
	pidfd := -1
	sys.PidFD = &pidfd
	attr := &syscall.ProcAttr{Dir: "/", Env: m.Env, Files: []uintptr{uintptr(fds[0]), uintptr(fds[1]), uintptr(fds[1])}, Sys: sys}
	// Held from before the fork until the child is recorded: the reaper,
	// which may reap it at once, looks it up only after.
	s.mu.Lock()
	pid, err := syscall.ForkExec(path, m.Argv, attr)
	if err != nil {
		s.mu.Unlock()
		var errno syscall.Errno
		errors.As(err, &errno)
		s.reply(Msg{ID: m.ID, Op: "error", Err: err.Error(), Errno: int(errno)})
		return
	}
	s.running[pid] = &child{id: m.ID, pidfd: pidfd}
	s.mu.Unlock()
	s.reply(Msg{ID: m.ID, Op: "started"})
	select {
	case s.children <- struct{}{}:
	default:
	}
}

// reap waits for every child of the holder: those it started, and the
// orphans of the lab's processes, which the PID namespace gives to its PID 1.
func (s *spawnServer) reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.ECHILD {
			<-s.children
			continue
		}
		if err != nil {
			continue
		}
		s.mu.Lock()
		c, ok := s.running[pid] // not ours: an orphan of the lab's
		delete(s.running, pid)
		s.mu.Unlock()
		if ok {
			unix.Close(c.pidfd)
			s.reply(Msg{ID: c.id, Op: "exited", Status: int(ws)})
		}
	}
}

// lookPath finds name as a shell would, on env's PATH.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", syscall.ENOENT
}
