package netns

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
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
	var creds threadCreds
	if enterErr == nil {
		creds, enterErr = newThreadCreds()
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
		err := creds.become(req.id)
		if err == nil {
			err = req.fn()
		}
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
	return probeSocket(func(fn func() error) error { return l.As(id, fn) }, family, sotype)
}

// probeSocket opens a probe socket inside whatever in runs its callback in
// (the lab as an identity, a client's namespace), then sets it up as every
// probe socket is.
func probeSocket(in func(func() error) error, family, sotype int) (int, error) {
	fd := -1
	err := in(func() (err error) {
		fd, err = unix.Socket(family, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		return nil
	})
	if err != nil {
		return -1, err
	}
	return setUpProbeSocket(fd, family)
}

// setUpProbeSocket makes fd an IPv6-only socket for IPv6, and has ICMP
// errors queued on it.
func setUpProbeSocket(fd, family int) (int, error) {
	var err error
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

// threadCreds are a probe thread's file credentials and groups. A socket
// worker keeps the last identity it switched to: probes of one user in a row
// switch once, not twice per socket.
type threadCreds struct {
	own      []uint32 // the thread's groups before any switch
	groups   []uint32 // the thread's groups now
	current  Identity
	switched bool // current is in effect; otherwise the thread's own are
}

func newThreadCreds() (threadCreds, error) {
	own, err := threadGroups()
	return threadCreds{own: own, groups: own}, err
}

// become gives the calling (locked) thread id's credentials. If the kernel
// does not take them, the thread goes back to its own and says why; if it
// cannot go back either, the error is errTainted.
func (c *threadCreds) become(id Identity) error {
	if c.switched && c.current.UID == id.UID && c.current.GID == id.GID && slices.Equal(c.current.Groups, id.Groups) {
		return nil
	}
	kgroups := make([]uint32, len(id.Groups))
	for i, g := range id.Groups {
		kgroups[i] = labIDs.base + g
	}
	c.switched = false
	if err := c.setGroups(kgroups); err != nil {
		return errors.Join(fmt.Errorf("set supplementary groups %v: %w", id.Groups, err), c.restore())
	}
	unix.Setfsgid(int(labIDs.base + id.GID))
	unix.Setfsuid(int(labIDs.base + id.UID))
	// setfsuid and setfsgid report the previous value: asking again with an
	// invalid id (-1) both checks that the switch took and changes nothing.
	gotUID, _ := unix.SetfsuidRetUid(-1)
	gotGID, _ := unix.SetfsgidRetGid(-1)
	if gotUID != int(labIDs.base+id.UID) || gotGID != int(labIDs.base+id.GID) {
		err := fmt.Errorf("switch a probe thread to uid %d gid %d: the kernel kept fsuid %d fsgid %d", id.UID, id.GID, gotUID, gotGID)
		return errors.Join(err, c.restore())
	}
	c.current = Identity{UID: id.UID, GID: id.GID, Groups: slices.Clone(id.Groups)}
	c.switched = true
	return nil
}

// restore gives the thread back its own credentials.
func (c *threadCreds) restore() error {
	c.switched = false
	unix.Setfsuid(0)
	unix.Setfsgid(0)
	if uid, _ := unix.SetfsuidRetUid(-1); uid != 0 {
		return fmt.Errorf("%w: fsuid stays %d", errTainted, uid)
	}
	if err := c.setGroups(c.own); err != nil {
		return fmt.Errorf("%w: restore its groups: %v", errTainted, err)
	}
	return nil
}

// setGroups sets the thread's groups, unless they are those already.
func (c *threadCreds) setGroups(gids []uint32) error {
	if slices.Equal(c.groups, gids) {
		return nil
	}
	c.groups = nil // unknown until the call succeeds
	if err := setThreadGroups(gids); err != nil {
		return err
	}
	c.groups = slices.Clone(gids)
	return nil
}

// ProbeThread is a goroutine's own thread inside the lab's network
// namespace, for probes: its sockets are made right there, as each probe's
// identity, with no hand-over to a shared worker (which cost a wake-up of
// another thread per socket: a fifth of a sweep's CPU). Get it on the
// goroutine that probes, and Leave it there when done.
type ProbeThread struct {
	*Lab
	creds   threadCreds
	orig    int  // the thread's own network namespace
	tainted bool // stuck outside the lab's namespace: no more sockets
}

// ProbeThread locks the calling goroutine to its thread, moves the thread
// into the lab's network namespace and clears its supplementary groups (a
// probe as a user without groups then sets none).
func (l *Lab) ProbeThread() (*ProbeThread, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("open own network namespace: %w", err)
	}
	t := &ProbeThread{Lab: l, orig: orig}
	if t.creds, err = newThreadCreds(); err != nil {
		unix.Close(orig)
		runtime.UnlockOSThread()
		return nil, err
	}
	if err := unix.Setns(l.labFD, unix.CLONE_NEWNET); err != nil {
		unix.Close(orig)
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter lab network namespace: %w", err)
	}
	if err := t.creds.setGroups(nil); err != nil {
		t.Leave()
		return nil, fmt.Errorf("clear a probe thread's groups: %w", err)
	}
	return t, nil
}

// Socket is Lab.Socket, made on this thread. The thread keeps id's file
// credentials afterwards (the next probe is most often the same user's);
// nothing else the probe does depends on them, and Leave restores its own.
func (t *ProbeThread) Socket(id Identity, family, sotype int) (int, error) {
	if t.tainted {
		return -1, errTainted
	}
	if err := t.creds.become(id); err != nil {
		return -1, err
	}
	fd, err := unix.Socket(family, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	return setUpProbeSocket(fd, family)
}

// Leave gives the thread back to the runtime, in its own namespace with
// its own groups; a thread that cannot get back dies with its goroutine.
func (t *ProbeThread) Leave() {
	defer unix.Close(t.orig)
	if t.creds.restore() != nil || unix.Setns(t.orig, unix.CLONE_NEWNET) != nil {
		return // stays locked: the runtime discards the thread
	}
	runtime.UnlockOSThread()
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
