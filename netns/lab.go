package netns

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns/internal/confine"
	"github.com/egresslab/egresslab/netns/internal/holder"
	"github.com/egresslab/egresslab/netns/internal/labca"
	"github.com/egresslab/egresslab/netns/internal/sndbuf"
	"github.com/egresslab/egresslab/netns/internal/topology"
)

// IDBase is the host uid and gid that a lab's uid and gid 0 map to: a lab's ids
// 0-65535 are host ids IDBase to IDBase+65535, a range no host account uses.
// A socket opened as lab uid 107 carries kernel uid IDBase+107, which is what
// the lab's `--uid-owner 107` matches.
const IDBase = 0x70000000

// Identity is a set of credentials as the lab sees them: what a socket's owner
// match reads (fsuid, fsgid, supplementary groups).
type Identity struct {
	UID    uint32
	GID    uint32
	Groups []uint32
}

// Account is a user of the lab's /etc/passwd.
type Account struct {
	Name string
	Identity
}

// Group is an extra group of the lab's /etc/group.
type Group struct {
	Name string
	GID  uint32
}

// Config describes a lab.
type Config struct {
	Name        string         // for messages
	Uplink      string         // the uplink's name inside the lab; default eth0
	UplinkAddrs []netip.Prefix // the lab host's own uplink addresses
	Accounts    []Account      // users of the lab's /etc/passwd
	Groups      []Group        // extra groups of its /etc/group
	// Backend is the iptables flavour for rulesets and scripts: "nft" (default) or "legacy".
	Backend string
	// ToolTimeout bounds each candidate tool and script (DefaultToolTimeout when zero).
	ToolTimeout time.Duration
	// Networks the lab host routes for, each a bridge with clients behind
	// it (forward.go); with any, the host forwards.
	Networks []Network
}

// A lab is user + network + mount + PID + IPC + UTS namespaces: the PID
// namespace (with its own /proc) makes every process started inside (a
// candidate script's background jobs too) die with the holder, and hides the
// host's processes; IPC objects a script creates die with the lab.

// Lab is a running lab. Close it to tear everything down; if the process dies
// instead, the kernel does it.
type Lab struct {
	cfg     Config
	holder  *exec.Cmd
	stdin   io.WriteCloser // closing it tells the holder to exit
	done    chan struct{}  // closed when the holder has been reaped
	labFD   int            // the lab's network namespace
	worldFD int            // the world's network namespace
	pid     int

	clientFDs map[string]int // each client's network namespace, by name

	closeOnce sync.Once
	closed    atomic.Bool
	life      context.Context // done once Close begins: commands end with the lab
	endLife   context.CancelFunc
	closers   []func() error

	gateways   []netip.Addr // the world's router addresses on the uplink, one per family
	worldAddrs []netip.Addr // every destination address the world owns
	anyAddr    bool         // AnswerAnyAddress made the world own every other address too

	poolOnce sync.Once
	pool     *socketPool
	spawn    *holder.Spawner // starts the lab's processes, through the holder

	limits *confine.Limits // the lab's cgroups

	ca *labca.CA // signs the certificates of the lab's TLS listeners
}

// New starts a lab: namespaces, /etc overlays, the uplink, addresses and
// routes of both families. It does not load any ruleset.
func New(ctx context.Context, cfg Config) (*Lab, error) {
	if cfg.Uplink == "" {
		cfg.Uplink = "eth0"
	}
	if cfg.Backend == "" {
		cfg.Backend = "nft"
	}
	if cfg.ToolTimeout == 0 {
		cfg.ToolTimeout = DefaultToolTimeout
	}
	if !initCalled.Load() {
		return nil, errors.New("netns.Init was not called: call it first in main (or TestMain) of any program that opens labs")
	}
	if err := checkPrivileges(); err != nil {
		return nil, err
	}
	if err := checkIDsFit(cfg); err != nil {
		return nil, err
	}
	l := &Lab{cfg: cfg, labFD: -1, worldFD: -1, done: make(chan struct{})}
	l.life, l.endLife = context.WithCancel(context.Background())
	var err error
	if l.ca, err = labca.New(cfg.Name); err != nil {
		return nil, fmt.Errorf("start lab %s: %w", cfg.Name, err)
	}
	if err := l.startHolder(ctx); err != nil {
		l.Close()
		return nil, fmt.Errorf("start lab %s: %w", cfg.Name, err)
	}
	if l.gateways, err = topology.Wire(l.topology()); err != nil {
		l.Close()
		return nil, fmt.Errorf("wire lab %s: %w", cfg.Name, err)
	}
	return l, nil
}

func (l *Lab) startHolder(ctx context.Context) (err error) {
	etc, err := json.Marshal(holder.Config{Etc: l.etcFiles(), Clients: l.cfg.clientCount(), Forward: l.Forwarding()})
	if err != nil {
		return err
	}
	cmd := exec.Command("/proc/self/exe")
	// Its name in ps says whose it is.
	cmd.Args = []string{fmt.Sprintf("egresslab-lab-holder-of-%d", os.Getpid())}
	cmd.Env = []string{holderEnv + "=1"}
	// Never our stderr itself, which may be the operator's terminal: what
	// the holder writes is relayed, cleaned and bounded (netns/internal/confine).
	errRead, errWrite, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("the lab holder's stderr: %w", err)
	}
	defer errWrite.Close()
	go func() {
		confine.RelayHolderStderr(errRead, os.Stderr, l.cfg.Name)
		errRead.Close()
	}()
	cmd.Stderr = errWrite
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A session of its own, without a controlling terminal: nothing in
		// the lab can open the operator's terminal as /dev/tty (and push
		// keystrokes into it with TIOCSTI), and ^C reaches egresslab only.
		Setsid: true,
		Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNET | unix.CLONE_NEWNS | unix.CLONE_NEWPID |
			unix.CLONE_NEWIPC | unix.CLONE_NEWUTS,
		UidMappings:                labIDs.uidMappings(), // idmap.go
		GidMappings:                labIDs.gidMappings(),
		GidMappingsEnableSetgroups: true,
		// Become the lab's root (host IDBase, or rootless the caller's own
		// id): root in the lab, nobody outside.
		Credential: &syscall.Credential{Uid: 0, Gid: 0},
		Pdeathsig:  syscall.SIGKILL,
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("the lab's control socket: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(pair[0]), "egresslab-control"), os.NewFile(uintptr(pair[1]), "egresslab-control")
	defer theirs.Close()
	if l.spawn, err = holder.NewSpawner(ours); err != nil {
		return err
	}
	l.addCloser(l.spawn.Close)
	cmd.ExtraFiles = []*os.File{theirs} // the holder's SpawnFD
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	// The death signal fires when the thread that forked the holder exits, so
	// that thread stays locked to a goroutine that lives as long as the lab.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(l.done)
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(l.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start the lab's holder process: %w", err)
	}
	l.holder, l.stdin, l.pid = cmd, stdin, cmd.Process.Pid
	// Bounded beside its start-up, before it runs anything (confineInBackground).
	confined := l.confineInBackground()
	defer func() { err = errors.Join(err, confined()) }()
	if _, err := stdin.Write(append(etc, '\n')); err != nil {
		return fmt.Errorf("configure the lab's holder: %w", err)
	}
	reply := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		reply <- strings.TrimSpace(line)
	}()
	var line string
	select {
	case line = <-reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	var worldFDInHolder, listenerInHolder int
	if _, err := fmt.Sscanf(line, "ready %d %d", &worldFDInHolder, &listenerInHolder); err != nil {
		if msg, isErr := strings.CutPrefix(line, "error "); isErr {
			return errors.New(msg)
		}
		return fmt.Errorf("the lab's holder exited before it was ready")
	}
	if err := l.openClients(strings.Fields(line)[3:]); err != nil {
		return err
	}
	if l.labFD, err = unix.Open(fmt.Sprintf("/proc/%d/ns/net", l.pid), unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		return fmt.Errorf("open the lab's network namespace: %w", err)
	}
	if l.worldFD, err = unix.Open(fmt.Sprintf("/proc/%d/fd/%d", l.pid, worldFDInHolder), unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		return fmt.Errorf("open the world's network namespace: %w", err)
	}
	if listenerInHolder >= 0 {
		if err := l.serveBufFilter(listenerInHolder); err != nil {
			return err
		}
	}
	if _, err := stdin.Write([]byte("held\n")); err != nil {
		return fmt.Errorf("configure the lab's holder: %w", err)
	}
	return nil
}

// serveBufFilter takes the holder's filter listener (netns/internal/sndbuf) and
// answers it until the lab closes.
func (l *Lab) serveBufFilter(inHolder int) error {
	pidfd, err := unix.PidfdOpen(l.pid, 0)
	if err != nil {
		return fmt.Errorf("the lab's holder: %w", err)
	}
	defer unix.Close(pidfd)
	listener, err := unix.PidfdGetfd(pidfd, inHolder, 0)
	if err != nil {
		return fmt.Errorf("take the lab's buffer filter: %w", err)
	}
	stop := make(chan struct{})
	l.addCloser(func() error { close(stop); return nil })
	go sndbuf.Serve(listener, l.inLab, stop)
	return nil
}

// inLab runs fn on a thread inside the lab's network namespace. Sockets made
// there belong to the lab and may be used from any goroutine afterwards.
func (l *Lab) inLab(fn func() error) error { return doIn(l.labFD, fn) }

// inWorld runs fn on a thread inside the world's network namespace.
func (l *Lab) inWorld(fn func() error) error { return doIn(l.worldFD, fn) }

// addCloser registers fn to run when the lab closes (servers, listeners).
func (l *Lab) addCloser(fn func() error) { l.closers = append(l.closers, fn) }

// Close stops the lab's servers and its holder; the kernel frees the
// namespaces with their last reference.
func (l *Lab) Close() error {
	var errs []error
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		l.endLife()
		for i := len(l.closers) - 1; i >= 0; i-- {
			if err := l.closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
		for _, fd := range []int{l.labFD, l.worldFD} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
		l.closeClientFDs()
		if l.stdin != nil {
			l.stdin.Close()
		}
		if l.holder != nil && l.holder.Process != nil {
			_ = l.holder.Process.Kill()
			<-l.done
		}
		if err := l.limits.Remove(); err != nil {
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}

// Name is the lab's name, for messages.
func (l *Lab) Name() string { return l.cfg.Name }

// ErrClosed is what a closed lab answers.
var ErrClosed = errors.New("the lab is closed")

// checkPrivileges fails early, with what to do, where a lab cannot start.
func checkPrivileges() error {
	if os.Geteuid() != 0 {
		return &UnavailableError{What: "root privileges (effective uid 0, with CAP_SYS_ADMIN and CAP_NET_ADMIN)", Fix: fmt.Sprintf("this process runs as uid %d; run the program or test binary that starts the lab as root (the egresslab command itself starts rootless labs for a user with a subordinate id range)", os.Geteuid())}
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		return &UnavailableError{What: "nsenter", Fix: "install util-linux (apt-get install util-linux)"}
	}
	return nil
}

// UnavailableError says the lab cannot run on this machine, and what to do.
type UnavailableError struct {
	What string
	Fix  string
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("the lab needs %s: %s", e.What, e.Fix)
}

// SourceFor returns the source address the lab's routing picks for dst, the
// way getaddrinfo asks the kernel while it sorts addresses (a UDP connect,
// which sends nothing). ok is false when dst is unreachable from the lab.
func (l *Lab) SourceFor(dst netip.Addr) (src netip.Addr, ok bool) {
	_ = l.inLab(func() error {
		var family int
		var sa unix.Sockaddr
		if dst.Is4() {
			family, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: dst.As4(), Port: 9}
		} else {
			family, sa = unix.AF_INET6, &unix.SockaddrInet6{Addr: dst.As16(), Port: 9}
		}
		fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Connect(fd, sa); err != nil {
			return err
		}
		local, err := unix.Getsockname(fd)
		if err != nil {
			return err
		}
		switch a := local.(type) {
		case *unix.SockaddrInet4:
			src, ok = netip.AddrFrom4(a.Addr), true
		case *unix.SockaddrInet6:
			src, ok = netip.AddrFrom16(a.Addr), true
		}
		return nil
	})
	return src, ok
}
