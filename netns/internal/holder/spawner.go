package holder

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
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

// SpawnFD is the holder's end of the control socket.
const SpawnFD = 3

// Msg is a request (start, kill) or a reply (started, error, exited).
type Msg struct {
	ID   uint64   `json:"id"`
	Op   string   `json:"op"`
	Argv []string `json:"argv,omitempty"`
	Env  []string `json:"env,omitempty"`
	As   *Creds   `json:"as,omitempty"` // nil: the lab's root

	Status int    `json:"status,omitempty"` // exited: the wait status
	Err    string `json:"err,omitempty"`    // error: why it did not start
	Errno  int    `json:"errno,omitempty"`
}

// Creds are the lab's ids a process runs as (netns.Identity, which
// converts to them).
type Creds struct {
	UID    uint32
	GID    uint32
	Groups []uint32
}

// Spawner is egresslab's end of the control socket.
type Spawner struct {
	conn *net.UnixConn

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan Msg
	gone    bool
}

// NewSpawner takes egresslab's end of the control socket.
func NewSpawner(f *os.File) (*Spawner, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("the holder's control socket: %w", err)
	}
	s := &Spawner{conn: c.(*net.UnixConn), waiting: map[uint64]chan Msg{}}
	go s.read()
	return s, nil
}

func (s *Spawner) read() {
	buf := make([]byte, 64<<10)
	for {
		n, _, _, _, err := s.conn.ReadMsgUnix(buf, nil) // a descriptor sent here is dropped
		if err != nil || n == 0 {
			break
		}
		var m Msg
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

// Send sends m with files as its descriptors.
func (s *Spawner) Send(m Msg, files ...*os.File) error {
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

// Register gives a request its id and the channel its replies arrive on,
// closed if the holder goes away; ok is false if it already has.
func (s *Spawner) Register() (id uint64, replies chan Msg, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return 0, nil, false
	}
	s.next++
	ch := make(chan Msg, 2)
	s.waiting[s.next] = ch
	return s.next, ch, true
}

// Forget drops a request's channel.
func (s *Spawner) Forget(id uint64) {
	s.mu.Lock()
	delete(s.waiting, id)
	s.mu.Unlock()
}

// Close closes the control socket.
func (s *Spawner) Close() error { return s.conn.Close() }
