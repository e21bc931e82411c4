package holder

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns/internal/confine"
	"github.com/egresslab/egresslab/netns/internal/sndbuf"
)

// Config is what egresslab sends the holder on its stdin, as one JSON line.
type Config struct {
	Etc     map[string]string // file name under /etc -> content
	Clients int               // how many client network namespaces to make
	Forward bool              // the lab host routes for networks
}

// Main is the holder's whole life: it holds the lab until egresslab closes
// its stdin or dies, and then exits; it never returns.
func Main() {
	// Nothing the lab starts may reach what the holder holds (its control
	// socket, its pipes to egresslab): no inherited descriptor, and no
	// ptrace, pidfd_getfd or /proc/1/fd of the holder from inside the lab,
	// which the same uid would allow a dumpable process (netns/internal/confine).
	confine.CloseInherited(SpawnFD)
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stdout, "error make the lab's holder non-dumpable: %v\n", err)
		os.Exit(1)
	}
	// The holder is PID 1 of the lab's PID namespace: when it exits, the
	// kernel kills every process left in the lab. If the parent died before
	// the death signal was armed, stdin is already at EOF and we exit below.
	in := bufio.NewReader(os.Stdin)
	worldFD, clientFDs, err := holdLab(in)
	listener := -1
	if err == nil {
		listener, err = serveSpawns(sndbuf.InstallFilter)
	}
	if err != nil {
		fmt.Fprintf(os.Stdout, "error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
	ready := fmt.Sprintf("ready %d %d", worldFD, listener)
	for _, fd := range clientFDs {
		ready += fmt.Sprintf(" %d", fd)
	}
	fmt.Fprintln(os.Stdout, ready)
	// Once the parent holds the world's namespace and the filter's listener
	// itself, the holder lets go of them: nothing inside the lab (whose /proc
	// shows the holder) may reach them through the holder's descriptors.
	if line, err := in.ReadString('\n'); err != nil || line != "held\n" {
		os.Exit(1)
	}
	unix.Close(worldFD)
	for _, fd := range clientFDs {
		unix.Close(fd)
	}
	if listener >= 0 {
		unix.Close(listener)
	}
	// The ready line was stdout's last use.
	if null, err := unix.Open(os.DevNull, unix.O_WRONLY|unix.O_CLOEXEC, 0); err == nil {
		_ = unix.Dup3(null, 1, 0)
		unix.Close(null)
	}
	_, _ = io.Copy(io.Discard, in) // until the parent closes our stdin or dies
	os.Exit(0)
}

// holdLab makes the lab's files and settings, the world's namespace and
// the clients' (as many as the lab's config asks for).
func holdLab(in *bufio.Reader) (int, []int, error) {
	line, err := in.ReadBytes('\n')
	if err != nil {
		return 0, nil, fmt.Errorf("read lab config: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(line, &cfg); err != nil {
		return 0, nil, fmt.Errorf("decode lab config: %w", err)
	}
	// The world's namespace and its settings are made on another thread
	// (newWorld), beside the lab's mounts and settings: the parent waits
	// for both, and the machine has a core to spare for one of them.
	type world struct {
		fd  int
		err error
	}
	worldc := make(chan world, 1)
	go func() {
		fd, err := newWorld()
		worldc <- world{fd, err}
	}()
	err = holdLabFiles(cfg)
	w := <-worldc
	if err == nil {
		err = w.err
	}
	// Clients are namespaces like the world's: held by descriptor, dying
	// with the lab.
	var clients []int
	for i := 0; i < cfg.Clients && err == nil; i++ {
		var fd int
		if fd, err = newWorld(); err == nil {
			clients = append(clients, fd)
		}
	}
	if err != nil {
		for _, fd := range append(clients, w.fd) {
			if fd > 0 {
				unix.Close(fd)
			}
		}
		return 0, nil, err
	}
	return w.fd, clients, nil
}

// holdLabFiles makes the lab's mounts, /etc files and settings.
func holdLabFiles(cfg Config) error {
	// The lab's own root (netns/internal/confine): private, bounded /tmp, /var/tmp,
	// /dev/shm and /run (the lab's files, iptables-legacy's lock), its own
	// /proc, and nothing of the host's that an unmount would reveal.
	if err := confine.MakeRoot(); err != nil {
		return err
	}
	if err := os.MkdirAll(EtcDir, 0o755); err != nil {
		return err
	}
	for name, content := range cfg.Etc {
		if err := overlayEtc(name, content); err != nil {
			return err
		}
	}
	if err := labSysctls(); err != nil {
		return err
	}
	if cfg.Forward {
		return writeSysctls(forwardSysctls)
	}
	return nil
}

// EtcDir is where the lab's own /etc files live, inside its private /run.
const EtcDir = "/run/egresslab/etc"

// overlayEtc makes /etc/NAME read content inside the lab only. A symlink (such
// as resolv.conf pointing into /run) is followed: a target under the private
// /run is written directly, any other target gets a bind mount.
func overlayEtc(name, content string) error {
	src := filepath.Join(EtcDir, name)
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil { // ssl/certs/...
		return err
	}
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write lab /etc/%s: %w", name, err)
	}
	target, err := resolveLinks(filepath.Join("/etc", name))
	if err != nil {
		return fmt.Errorf("overlay /etc/%s: %w", name, err)
	}
	if target == "/run" || strings.HasPrefix(target, "/run/") {
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, []byte(content), 0o644)
	}
	if _, err := os.Stat(target); err != nil {
		// Nothing to mount over, and the host's /etc must not gain a file.
		return nil
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("overlay /etc/%s in the lab: %w", name, err)
	}
	return nil
}

// resolveLinks follows symlinks in path even when the final target does not exist.
func resolveLinks(path string) (string, error) {
	for i := 0; i < 16; i++ {
		link, err := os.Readlink(path)
		if err != nil {
			return path, nil // not a link (or missing): this is the target
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = filepath.Clean(link)
	}
	return "", fmt.Errorf("too many symlinks at %s", path)
}

// labSysctls are the per-namespace settings a lab needs: IPv6 addresses usable
// at once (no duplicate address detection), and ICMP error rate limits lifted
// so that a REJECT under parallel probes never turns into an apparent drop.
//
// Lifting the rates is not enough (net/ipv4/icmp.c, 6.18): __icmp_send asks
// icmpv4_global_allow, whose icmp_global_allow refuses outright once the
// namespace's credit is spent and less than HZ/50 has passed since its last
// refill, whatever icmp_msgs_per_sec says; the credit is shared with ICMPv6
// (icmpv6_global_allow in net/ipv6/icmp.c). An empty ratemask takes every
// type out of both limiters (icmpv4_mask_allow, icmpv6_mask_allow return
// true first), so a REJECT's error is always sent.
func labSysctls() error {
	return writeSysctls(map[string]string{
		"net/ipv6/conf/all/accept_dad":        "0",
		"net/ipv6/conf/default/accept_dad":    "0",
		"net/ipv6/conf/all/dad_transmits":     "0",
		"net/ipv6/conf/default/dad_transmits": "0",
		"net/ipv4/icmp_ratelimit":             "0",
		"net/ipv4/icmp_msgs_per_sec":          "1000000",
		"net/ipv4/icmp_msgs_burst":            "1000000",
		"net/ipv6/icmp/ratelimit":             "0",
		"net/ipv4/icmp_ratemask":              "0",
		"net/ipv6/icmp/ratemask":              "\n", // an empty bitmap
		"net/ipv4/ip_local_port_range":        "32768 60999",
	})
}

// forwardSysctls make the lab host a router.
var forwardSysctls = map[string]string{
	"net/ipv4/ip_forward":          "1",
	"net/ipv6/conf/all/forwarding": "1",
}

func writeSysctls(kv map[string]string) error {
	for k, v := range kv {
		if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
			if os.IsNotExist(err) && strings.Contains(k, "msgs_") {
				continue // older kernels lack the global ICMP budget
			}
			return fmt.Errorf("set %s in the lab: %w", strings.ReplaceAll(k, "/", "."), err)
		}
	}
	return nil
}

// newWorld creates a network namespace (the world beyond the lab's uplink, or
// a client's) with the lab's settings and returns a descriptor that holds it. The calling thread goes back to the lab's
// namespace; if it cannot, the thread stays locked and dies with its goroutine.
func newWorld() (int, error) {
	type result struct {
		fd  int
		err error
	}
	resc := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			resc <- result{err: fmt.Errorf("open the lab's network namespace: %w", err)}
			return
		}
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			resc <- result{err: fmt.Errorf("create the world's network namespace: %w", err)}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = labSysctls()
		}
		if serr := unix.Setns(orig, unix.CLONE_NEWNET); serr != nil {
			resc <- result{err: fmt.Errorf("return to the lab's network namespace: %w", serr)}
			return
		}
		runtime.UnlockOSThread()
		resc <- result{fd: fd, err: err}
	}()
	r := <-resc
	return r.fd, r.err
}
