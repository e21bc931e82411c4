package netns

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// Network is a network the lab host routes for (containers, VMs, a LAN): a
// bridge of the ruleset's interface name holding the host's addresses on
// it, with its clients behind it.
type Network struct {
	Name      string         // the bridge's name: docker0, br-0123456789ab, virbr0
	Addresses []netip.Prefix // the host's addresses on it: its clients' gateways
	Clients   []Client
}

// Client is a machine behind a network: a network namespace of its own,
// made by the holder and dying with the lab, with a veth into the bridge.
type Client struct {
	Name      string
	Addresses []netip.Addr
}

// Forwarding reports whether the lab routes for networks: the host forwards
// (net.ipv4.ip_forward=1, net.ipv6.conf.all.forwarding=1, set before the
// candidate loads, as Docker and libvirt set them).
func (l *Lab) Forwarding() bool { return len(l.cfg.Networks) > 0 }

// clientCount is how many client namespaces the holder makes.
func (c Config) clientCount() int {
	n := 0
	for _, net := range c.Networks {
		n += len(net.Clients)
	}
	return n
}

// ClientNetNSFD is the network namespace of the client called name.
func (l *Lab) ClientNetNSFD(name string) (int, bool) {
	fd, ok := l.clientFDs[name]
	return fd, ok
}

// ClientCommand returns a command that runs inside the lab as the client
// called name: the lab's namespaces but the client's network namespace, as
// its root (without CAP_SYS_PTRACE, as Command). A real client (curl, nc,
// bash's /dev/tcp) sees what the client's probes see: the host's forward
// path and its nat.
func (l *Lab) ClientCommand(ctx context.Context, name string, argv ...string) (*exec.Cmd, error) {
	fd, ok := l.clientFDs[name]
	if !ok {
		return nil, fmt.Errorf("lab %s has no client %q", l.cfg.Name, name)
	}
	// nsenter opens its namespaces before it enters any: the client's is
	// handed to it as its descriptor 3, and closed here with the lab.
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("client %s's network namespace: %w", name, err)
	}
	f := os.NewFile(uintptr(dup), "netns-"+name)
	context.AfterFunc(l.life, func() { f.Close() })
	cmd := l.commandNet(ctx, "--net=/proc/self/fd/3", append([]string{"setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace", "--"}, argv...))
	cmd.ExtraFiles = []*os.File{f}
	return cmd, nil
}

// DoClient runs fn on a thread inside the client's network namespace, as
// Do does in the lab's.
func (l *Lab) DoClient(name string, fn func() error) error {
	fd, ok := l.clientFDs[name]
	if !ok {
		return fmt.Errorf("lab %s has no client %q", l.cfg.Name, name)
	}
	return doIn(fd, fn)
}

// closeClientFDs closes the client namespaces' descriptors.
func (l *Lab) closeClientFDs() {
	for _, fd := range l.clientFDs {
		unix.Close(fd)
	}
}

// openClients opens the client namespaces the holder reported (descriptors
// in the holder, in the order of the config's clients).
func (l *Lab) openClients(inHolder []string) error {
	var names []string
	for _, n := range l.cfg.Networks {
		for _, c := range n.Clients {
			names = append(names, c.Name)
		}
	}
	if len(inHolder) != len(names) {
		return fmt.Errorf("the lab's holder made %d client namespaces, want %d", len(inHolder), len(names))
	}
	l.clientFDs = map[string]int{}
	for i, s := range inHolder {
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/fd/%s", l.pid, s), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open client %s's network namespace: %w", names[i], err)
		}
		l.clientFDs[names[i]] = fd
	}
	return nil
}

// ClientSocket opens a probe socket (as Socket does) inside the client's
// network namespace, as the client's root: a client probes as the root of
// its own machine.
func (l *Lab) ClientSocket(name string, family, sotype int) (int, error) {
	return probeSocket(func(fn func() error) error { return l.DoClient(name, fn) }, family, sotype)
}

// ClientSocket is Lab.ClientSocket, made on this thread: it steps into the
// client's namespace for the socket and back into the lab's.
func (t *ProbeThread) ClientSocket(name string, family, sotype int) (int, error) {
	ns, ok := t.clientFDs[name]
	if !ok {
		return -1, fmt.Errorf("lab %s has no client %q", t.cfg.Name, name)
	}
	if err := t.creds.become(Identity{}); err != nil {
		return -1, err
	}
	if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
		return -1, fmt.Errorf("enter client %s's network namespace: %w", name, err)
	}
	fd, err := unix.Socket(family, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if serr := unix.Setns(t.labFD, unix.CLONE_NEWNET); serr != nil {
		// Leave cannot fix this thread: it goes back to its own namespace
		// and the lab's sockets would be made there.
		if fd >= 0 {
			unix.Close(fd)
		}
		t.tainted = true
		return -1, fmt.Errorf("%w: back into the lab from client %s: %v", errTainted, name, serr)
	}
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	return setUpProbeSocket(fd, family)
}
