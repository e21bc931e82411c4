package netns

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Probe sockets are made by a few worker threads that live inside the lab's
// network namespace for the lab's whole life. The owner match reads a socket's
// file credentials, which socket() takes from the calling thread's fsuid,
// fsgid and supplementary groups: per-thread values, so a worker switches them
// around each socket() and back. Workers never return to the host's
// namespace; when the lab closes they exit still locked and the runtime
// discards their threads.
type socketRequest struct {
	id     Identity
	family int
	sotype int
	reply  chan socketReply
}

type socketReply struct {
	fd   int
	port uint16
	err  error
}

type socketPool struct {
	reqs chan socketRequest
}

const socketWorkers = 4

func (l *Lab) socketPool() *socketPool {
	l.poolOnce.Do(func() {
		l.pool = &socketPool{reqs: make(chan socketRequest)}
		for i := 0; i < socketWorkers; i++ {
			go l.socketWorker(l.pool.reqs)
		}
		l.addCloser(func() error { close(l.pool.reqs); return nil })
	})
	return l.pool
}

func (l *Lab) socketWorker(reqs chan socketRequest) {
	runtime.LockOSThread() // never unlocked: this thread is the lab's for good
	enterErr := unix.Setns(l.labFD, unix.CLONE_NEWNET)
	var groups []uint32
	if enterErr == nil {
		groups, enterErr = threadGroups()
	}
	for req := range reqs {
		if enterErr != nil {
			req.reply <- socketReply{fd: -1, err: fmt.Errorf("enter lab network namespace: %w", enterErr)}
			continue
		}
		fd, err := socketAs(req.id, req.family, req.sotype, groups)
		if errors.Is(err, errTainted) {
			enterErr = err // this thread's credentials are unknown: it makes no more sockets
		}
		if err != nil {
			req.reply <- socketReply{fd: -1, err: err}
			continue
		}
		port, err := l.bindProbePort(fd, req.family)
		if err != nil {
			unix.Close(fd)
			req.reply <- socketReply{fd: -1, err: err}
			continue
		}
		req.reply <- socketReply{fd: fd, port: port}
	}
}

// Socket opens a non-blocking socket inside the lab that the owner match sees
// as id, bound to a source port of the lab's probe range (unique among the
// lab's live probes, which is how the sentinel tells probes apart), with
// ICMP errors queued on it (IP_RECVERR) so the probe can read which
// unreachable came back.
func (l *Lab) Socket(id Identity, family, sotype int) (fd int, port uint16, err error) {
	reply := make(chan socketReply, 1)
	l.socketPool().reqs <- socketRequest{id: id, family: family, sotype: sotype, reply: reply}
	r := <-reply
	return r.fd, r.port, r.err
}

var errTainted = errors.New("a probe thread lost track of its credentials")

// socketAs opens a socket with id's credentials on the calling (locked) thread
// and restores the thread's own credentials before returning.
func socketAs(id Identity, family, sotype int, restoreGroups []uint32) (int, error) {
	kgroups := make([]uint32, len(id.Groups))
	for i, g := range id.Groups {
		kgroups[i] = IDBase + g
	}
	if err := setThreadGroups(kgroups); err != nil {
		return -1, fmt.Errorf("set supplementary groups %v: %w", id.Groups, err)
	}
	unix.Setfsgid(int(IDBase + id.GID))
	unix.Setfsuid(int(IDBase + id.UID))
	fd, serr := unix.Socket(family, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	// setfsuid and setfsgid report the previous value: asking again with an
	// invalid id (-1) both checks that the switch took and changes nothing.
	gotUID, _ := unix.SetfsuidRetUid(-1)
	gotGID, _ := unix.SetfsgidRetGid(-1)
	unix.Setfsuid(0)
	unix.Setfsgid(0)
	if err := setThreadGroups(restoreGroups); err != nil {
		if serr == nil {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("%w: restore its groups: %v", errTainted, err)
	}
	if serr != nil {
		return -1, fmt.Errorf("socket: %w", serr)
	}
	if gotUID != int(IDBase+id.UID) || gotGID != int(IDBase+id.GID) {
		unix.Close(fd)
		return -1, fmt.Errorf("switch a probe thread to uid %d gid %d: the kernel kept fsuid %d fsgid %d", id.UID, id.GID, gotUID, gotGID)
	}
	return fd, nil
}

// setThreadGroups sets the calling thread's supplementary groups only: the raw
// system call, not the libc or Go wrapper that applies it to every thread.
func setThreadGroups(gids []uint32) error {
	var p unsafe.Pointer
	if len(gids) > 0 {
		p = unsafe.Pointer(&gids[0])
	}
	_, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), uintptr(p), 0)
	if e != 0 {
		return e
	}
	return nil
}

func threadGroups() ([]uint32, error) {
	buf := make([]uint32, 1024)
	n, _, e := unix.RawSyscall(unix.SYS_GETGROUPS, uintptr(len(buf)), uintptr(unsafe.Pointer(&buf[0])), 0)
	if e != 0 {
		return nil, e
	}
	return buf[:n], nil
}

func (l *Lab) bindProbePort(fd, family int) (uint16, error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return 0, err
	}
	var sa unix.Sockaddr
	port := l.ports.next()
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return 0, err
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1); err != nil {
			return 0, err
		}
		sa = &unix.SockaddrInet6{Port: int(port)}
	} else {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1); err != nil {
			return 0, err
		}
		sa = &unix.SockaddrInet4{Port: int(port)}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return 0, fmt.Errorf("bind probe port %d: %w", port, err)
	}
	return port, nil
}

// Probe source ports come from 1024-32767, below the lab's ephemeral range
// (32768-60999, which real clients in the lab use), skipping ports the lab's
// own loopback services listen on.
const (
	probePortFirst = 1024
	probePortLast  = 32767
)

type portAllocator struct {
	mu       sync.Mutex
	cursor   int
	reserved map[uint16]bool
	onWrap   func()
}

func newPortAllocator() *portAllocator {
	return &portAllocator{cursor: probePortFirst, reserved: map[uint16]bool{}}
}

func (a *portAllocator) reserve(p uint16) {
	a.mu.Lock()
	a.reserved[p] = true
	a.mu.Unlock()
}

func (a *portAllocator) next() uint16 {
	a.mu.Lock()
	defer a.mu.Unlock()
	for {
		p := a.cursor
		a.cursor++
		if a.cursor > probePortLast {
			a.cursor = probePortFirst
			if a.onWrap != nil {
				a.onWrap()
			}
		}
		if !a.reserved[uint16(p)] {
			return uint16(p)
		}
	}
}
