package netns

import (
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
// (spawn.go), so each of them inherits it, and its listener is egresslab's
// for the lab's life.

// maxForcedBuffer bounds a buffer granted on a tool's behalf: far above what a
// 16 MiB ruleset needs, far below what could hurt the host.
const maxForcedBuffer = 256 << 20

// auditArch is the seccomp architecture of this build; 0 where the filter is
// not written, and the tools then run unfiltered.
var auditArch = map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}[runtime.GOARCH]

// installBufFilter puts the filter on the calling thread, which the
// processes it forks inherit, and returns its listener (-1 where no filter
// is written for this architecture).
func installBufFilter() (int, error) {
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

// serveBufForce answers the filter's notifications until stop closes or no
// process uses the filter any more, then closes the listener (later calls
// then fail with ENOSYS, as an unprivileged process's would with EPERM).
func serveBufForce(listener int, stop <-chan struct{}) {
	defer unix.Close(listener)
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
		if errno := forceBuffer(listener, &n); errno != 0 {
			resp.Error = -int32(errno)
		}
		_ = ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&resp))
	}
}

// forceBuffer does what the tool's setsockopt asked, on the tool's socket.
func forceBuffer(listener int, n *seccompNotif) syscall.Errno {
	pidfd, err := unix.PidfdOpen(int(n.PID), 0)
	if err != nil {
		return unix.ESRCH
	}
	defer unix.Close(pidfd)
	// The pid could have been reused before pidfd_open: the notification
	// still being valid proves it was not.
	id := n.ID
	if ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) != nil {
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
	size := min(max(int(value), 0), maxForcedBuffer)
	if err := unix.SetsockoptInt(sock, unix.SOL_SOCKET, int(n.Args[2]), size); err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return errno
		}
		return unix.EINVAL
	}
	return 0
}

func ioctlPtr(fd int, req uint, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}
