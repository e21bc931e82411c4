package netns

import (
	"errors"
	"fmt"
	"runtime"
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
type credRequest struct {
	id    Identity
	fn    func() error // runs with id's credentials, in the lab's network namespace
	reply chan error
}

type socketPool struct {
	reqs chan credRequest
	stop chan struct{} // closed when the lab closes
}

const socketWorkers = 4

func (l *Lab) socketPool() *socketPool {
	l.poolOnce.Do(func() {
		l.pool = &socketPool{reqs: make(chan credRequest), stop: make(chan struct{})}
		for i := 0; i < socketWorkers; i++ {
			go l.socketWorker(l.pool)
		}
		l.addCloser(func() error { close(l.pool.stop); return nil })
	})
	return l.pool
}

func (l *Lab) socketWorker(pool *socketPool) {
	runtime.LockOSThread() // never unlocked: this thread is the lab's for good
	enterErr := unix.Setns(l.labFD, unix.CLONE_NEWNET)
	var groups []uint32
	if enterErr == nil {
		groups, enterErr = threadGroups()
	}
	for {
		var req credRequest
		select {
		case req = <-pool.reqs:
		case <-pool.stop:
			return
		}
		if enterErr != nil {
			req.reply <- fmt.Errorf("enter lab network namespace: %w", enterErr)
			continue
		}
		err := runAs(req.id, req.fn, groups)
		if errors.Is(err, errTainted) {
			enterErr = err // this thread's credentials are unknown: it runs nothing more
		}
		req.reply <- err
	}
}

// As runs fn inside the lab's network namespace on a thread whose file
// credentials are id's: a socket fn creates (or accepts) belongs to id, as
// the owner match and `meta skuid` see it. fn must not block for long: a few
// threads serve every identity.
func (l *Lab) As(id Identity, fn func() error) error {
	if l.closed.Load() {
		return ErrClosed
	}
	pool := l.socketPool()
	reply := make(chan error, 1)
	select {
	case pool.reqs <- credRequest{id: id, fn: fn, reply: reply}:
	case <-pool.stop:
		return ErrClosed
	}
	return <-reply
}

// Socket opens a non-blocking socket inside the lab that the owner match sees
// as id, unbound: like a real client's, its source port is the kernel's choice
// from the lab's ephemeral range when it connects. ICMP errors are queued on
// it (IP_RECVERR) so the probe can read which unreachable came back.
func (l *Lab) Socket(id Identity, family, sotype int) (int, error) {
	fd := -1
	err := l.As(id, func() (err error) {
		fd, err = unix.Socket(family, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		return nil
	})
	if err != nil {
		return -1, err
	}
	level, opt := unix.IPPROTO_IP, unix.IP_RECVERR
	if family == unix.AF_INET6 {
		level, opt = unix.IPPROTO_IPV6, unix.IPV6_RECVERR
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	if err == nil {
		err = unix.SetsockoptInt(fd, level, opt, 1)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("set up a probe socket: %w", err)
	}
	return fd, nil
}

var errTainted = errors.New("a probe thread lost track of its credentials")

// runAs runs fn on the calling (locked) thread with id's credentials and
// restores the thread's own before returning.
func runAs(id Identity, fn func() error, restoreGroups []uint32) error {
	kgroups := make([]uint32, len(id.Groups))
	for i, g := range id.Groups {
		kgroups[i] = IDBase + g
	}
	if err := setThreadGroups(kgroups); err != nil {
		return fmt.Errorf("set supplementary groups %v: %w", id.Groups, err)
	}
	unix.Setfsgid(int(IDBase + id.GID))
	unix.Setfsuid(int(IDBase + id.UID))
	// setfsuid and setfsgid report the previous value: asking again with an
	// invalid id (-1) both checks that the switch took and changes nothing.
	gotUID, _ := unix.SetfsuidRetUid(-1)
	gotGID, _ := unix.SetfsgidRetGid(-1)
	var ferr error
	if gotUID == int(IDBase+id.UID) && gotGID == int(IDBase+id.GID) {
		ferr = fn()
	} else {
		ferr = fmt.Errorf("switch a probe thread to uid %d gid %d: the kernel kept fsuid %d fsgid %d", id.UID, id.GID, gotUID, gotGID)
	}
	unix.Setfsuid(0)
	unix.Setfsgid(0)
	if err := setThreadGroups(restoreGroups); err != nil {
		return fmt.Errorf("%w: restore its groups: %v", errTainted, err)
	}
	return ferr
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
