package sndbuf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Why this file exists: nft and iptables-nft send a whole ruleset as one
// netlink batch and, for a large one, raise their socket's send buffer with
// SO_SNDBUFFORCE. That option needs CAP_NET_ADMIN in the initial user
// namespace, which the lab's root does not have, so past about 450 rules the
// batch fails with "Message too long" in the lab while the same file loads on
// the host. The lab cannot change the host's net.core.wmem_* either.
//
// So the tools run under a seccomp filter that hands exactly these two calls
// (setsockopt SOL_SOCKET SO_SNDBUFFORCE / SO_RCVBUFFORCE) to egresslab, which
// is root on the host: it takes the tool's socket with pidfd_getfd and sets
// the buffer itself, bounded, as the host's root would have. The tool, its
// input and its one transaction are unchanged; every other call runs as is.
// The filter sits on the holder's thread that starts the lab root's processes
// (netns/internal/holder), so each of them inherits it, and its listener is
// egresslab's for the lab's life.

// maxForcedBuffer bounds a buffer granted on a tool's behalf (the kernel
// doubles it). A 100,000-rule load asks for at most 54 MiB of send buffer
// (iptables-nft-restore; nft 42 MiB) and loads with its receive buffer cut
// to this (iptables-nft-restore asks for 781 MiB, nft for 98 MiB).
const maxForcedBuffer = 64 << 20

// maxForcedPerLab bounds what the lab's live sockets hold in granted
// buffers together: a tool's load at the cap, both families' at once.
const maxForcedPerLab = 256 << 20

// auditArch is the seccomp architecture of this build; 0 where the filter is
// not written, and the tools then run unfiltered.
var auditArch = map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}[runtime.GOARCH]

// InstallFilter puts the filter on the calling thread, which the
// processes it forks inherit, and returns its listener (-1 where no filter
// is written for this architecture).
func InstallFilter() (int, error) {
	if auditArch == 0 {
		return -1, nil
	}
	const (
		ldw  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
		arch = 4  // offsetof(struct seccomp_data, arch)
		nr   = 0  // offsetof(struct seccomp_data, nr)
		arg1 = 24 // args[1], low half (little-endian): level
		arg2 = 32 // args[2], low half: option name
	)
	prog := []unix.SockFilter{
		{Code: ldw, K: arch},
		{Code: jeq, K: auditArch, Jf: 7},
		{Code: ldw, K: nr},
		{Code: jeq, K: unix.SYS_SETSOCKOPT, Jf: 5},
		{Code: ldw, K: arg1},
		{Code: jeq, K: unix.SOL_SOCKET, Jf: 3},
		{Code: ldw, K: arg2},
		{Code: jeq, K: unix.SO_SNDBUFFORCE, Jt: 2},
		{Code: jeq, K: unix.SO_RCVBUFFORCE, Jt: 1},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		{Code: ret, K: unix.SECCOMP_RET_USER_NOTIF},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return -1, fmt.Errorf("install seccomp filter: %w", errno)
	}
	return int(fd), nil
}

// seccompNotif and seccompNotifResp are the kernel's struct seccomp_notif and
// seccomp_notif_resp.
type seccompNotif struct {
	ID    uint64
	PID   uint32
	Flags uint32
	NR    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// bufBudget is what one lab's sockets were granted, by socket inode.
type bufBudget struct {
	netnsCookie uint64 // the lab's network namespace; 0 when the kernel cannot say
	diag        int    // a NETLINK_SOCK_DIAG socket in the lab's network namespace, or -1
	granted     map[uint64]*grant
}

// grant is what one socket holds. A bound socket (every tool's is, when it
// asks) is listed by sock_diag until it closes; an unbound one is not, so
// its grant counts for the lab's life.
type grant struct {
	snd, rcv int
	bound    bool
}

func (g *grant) total() int { return g.snd + g.rcv }

func (b *bufBudget) total() int {
	sum := 0
	for _, g := range b.granted {
		sum += g.total()
	}
	return sum
}

// forget drops the grants of sockets that no longer exist: the lab's live
// netfilter netlink sockets, as sock_diag lists them, are what counts.
func (b *bufBudget) forget() {
	if b.diag < 0 {
		return // without a listing, a grant counts for the lab's life
	}
	live, err := netfilterSocketInodes(b.diag)
	if err != nil {
		return
	}
	for ino, g := range b.granted {
		if g.bound && !live[ino] {
			delete(b.granted, ino)
		}
	}
}

// Serve answers the filter's notifications for the lab whose network
// namespace inLab runs in, until stop closes or no process uses the filter
// any more, then closes the listener (later calls then fail with ENOSYS, as
// an unprivileged process's would with EPERM).
func Serve(listener int, inLab func(func() error) error, stop <-chan struct{}) {
	serve(listener, newBufBudget(inLab), stop)
}

func serve(listener int, budget *bufBudget, stop <-chan struct{}) {
	defer unix.Close(listener)
	if budget.diag >= 0 {
		defer unix.Close(budget.diag)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return
	}
	// The waker may be writing to wake when this returns: wake is closed only
	// once the waker is gone, or its write could land in whatever file
	// reuses the descriptor number (another lab's tool input, say).
	done, wakerGone := make(chan struct{}), make(chan struct{})
	defer func() {
		close(done)
		<-wakerGone
		unix.Close(wake)
	}()
	go func() {
		defer close(wakerGone)
		select {
		case <-stop:
			_, _ = unix.Write(wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		case <-done:
		}
	}()
	for {
		fds := []unix.PollFd{{Fd: int32(listener), Events: unix.POLLIN}, {Fd: int32(wake), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if fds[1].Revents != 0 || fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
			return
		}
		var n seccompNotif
		if err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&n)); err != nil {
			continue // the caller died meanwhile
		}
		resp := seccompNotifResp{ID: n.ID}
		if errno := budget.forceBuffer(listener, &n); errno != 0 {
			resp.Error = -int32(errno)
		}
		_ = ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&resp))
	}
}

// forceBuffer does what the tool's setsockopt asked, on the tool's socket,
// if it is a netfilter netlink socket of the lab's and the lab's budget
// allows. A refusal is EPERM, what the call gives anyone without the
// privilege; the tool then goes on with the buffer it has.
func (b *bufBudget) forceBuffer(listener int, n *seccompNotif) syscall.Errno {
	pidfd, err := unix.PidfdOpen(int(n.PID), 0)
	if err != nil {
		return unix.ESRCH
	}
	defer unix.Close(pidfd)
	// The pid could have been reused before pidfd_open: the notification
	// still being valid proves it was not.
	if !notificationValid(listener, n.ID) {
		return unix.ESRCH
	}
	if n.Args[4] < 4 {
		return unix.EINVAL
	}
	var value int32
	local := []unix.Iovec{{Base: (*byte)(unsafe.Pointer(&value)), Len: 4}}
	remote := []unix.RemoteIovec{{Base: uintptr(n.Args[3]), Len: 4}}
	if got, err := unix.ProcessVMReadv(int(n.PID), local, remote, 0); err != nil || got != 4 {
		return unix.EFAULT
	}
	sock, err := unix.PidfdGetfd(pidfd, int(int32(n.Args[0])), 0)
	if err != nil {
		return unix.EBADF
	}
	defer unix.Close(sock)
	// What was read, and the descriptor taken, are the caller's only if it
	// is still waiting in this very call (it may have died, its pid reused).
	if !notificationValid(listener, n.ID) {
		return unix.ESRCH
	}
	ino, errno := b.netfilterSocket(sock)
	if errno != 0 {
		return errno
	}
	size := min(max(int(value), 0), maxForcedBuffer)
	g := b.granted[ino]
	if g == nil {
		sa, err := unix.Getsockname(sock)
		nl, ok := sa.(*unix.SockaddrNetlink)
		g = &grant{bound: err == nil && ok && nl.Pid != 0}
	}
	want := *g
	if int(n.Args[2]) == unix.SO_SNDBUFFORCE {
		want.snd = size
	} else {
		want.rcv = size
	}
	if over := b.total() - g.total() + want.total(); over > maxForcedPerLab {
		b.forget()
		if b.total()-g.total()+want.total() > maxForcedPerLab {
			return unix.EPERM
		}
	}
	if err := unix.SetsockoptInt(sock, unix.SOL_SOCKET, int(n.Args[2]), size); err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return errno
		}
		return unix.EINVAL
	}
	*g = want
	b.granted[ino] = g
	return 0
}

// netfilterSocket returns sock's inode if it is a netfilter netlink socket
// in the lab's network namespace (what nft and iptables-nft talk through),
// and EPERM otherwise.
func (b *bufBudget) netfilterSocket(sock int) (uint64, syscall.Errno) {
	domain, err := unix.GetsockoptInt(sock, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil || domain != unix.AF_NETLINK {
		return 0, unix.EPERM
	}
	proto, err := unix.GetsockoptInt(sock, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil || proto != unix.NETLINK_NETFILTER {
		return 0, unix.EPERM
	}
	if b.netnsCookie != 0 {
		if cookie, err := netnsCookie(sock); err != nil || cookie != b.netnsCookie {
			return 0, unix.EPERM
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(sock, &st); err != nil {
		return 0, unix.EBADF
	}
	return st.Ino, 0
}

func notificationValid(listener int, id uint64) bool {
	return ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) == nil
}

// netnsCookie is the cookie of the network namespace sock belongs to.
func netnsCookie(sock int) (uint64, error) {
	var cookie uint64
	size := uint32(8)
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(sock), unix.SOL_SOCKET, unix.SO_NETNS_COOKIE,
		uintptr(unsafe.Pointer(&cookie)), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return 0, errno
	}
	return cookie, nil
}

// newBufBudget is a budget for a lab whose network namespace inLab runs in.
func newBufBudget(inLab func(func() error) error) *bufBudget {
	b := &bufBudget{diag: -1, granted: map[uint64]*grant{}}
	_ = inLab(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
		if err != nil {
			return err
		}
		if _, err := netfilterSocketInodes(fd); err != nil {
			unix.Close(fd)
			return err
		}
		b.diag = fd
		b.netnsCookie, _ = netnsCookie(fd)
		return nil
	})
	return b
}

// netfilterSocketInodes lists the inodes of the netfilter netlink sockets
// in the network namespace of diag, a NETLINK_SOCK_DIAG socket.
func netfilterSocketInodes(diag int) (map[uint64]bool, error) {
	// struct nlmsghdr, then struct netlink_diag_req.
	req := make([]byte, unix.NLMSG_HDRLEN+20)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	req[unix.NLMSG_HDRLEN] = unix.AF_NETLINK
	req[unix.NLMSG_HDRLEN+1] = unix.NETLINK_NETFILTER
	if err := unix.Sendto(diag, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	live := map[uint64]bool{}
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(diag, buf, 0)
		if err != nil {
			return nil, err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return live, nil
			case unix.NLMSG_ERROR:
				return nil, errors.New("sock_diag: netlink sockets cannot be listed")
			}
			if len(m.Data) >= 20 { // struct netlink_diag_msg: ndiag_ino at 16
				live[uint64(binary.NativeEndian.Uint32(m.Data[16:]))] = true
			}
		}
	}
}

func ioctlPtr(fd int, req uint, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}
