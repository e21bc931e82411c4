package probe

import (
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/sentinel"
	"github.com/egresslab/egresslab/netns/serve"
	"golang.org/x/sys/unix"
)

// fakeLab is a lab without namespaces, in the spirit of knftables' Fake: its
// sockets are real, unprivileged ones in the test's own network namespace
// (the kernel's loopback answers them), and its evidence is what the spec
// says it is. It records what the prober asked, so a spec can also say which
// facts were read.
type fakeLab struct {
	mu sync.Mutex
	// The evidence the spec sets.
	left, answered bool
	where          sentinel.ReturnPath
	discovery      sentinel.Discovery
	refusal        *sentinel.Refusal
	service        *serve.Service // who answers every flow
	// What the prober did.
	asked    []string
	released []netns.Flow
}

var _ Lab = (*fakeLab)(nil)

func (l *fakeLab) ask(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, what)
}

func (l *fakeLab) Socket(_ netns.Identity, family, sotype int) (int, error) {
	fd, err := unix.Socket(family, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	level, opt := unix.IPPROTO_IP, unix.IP_RECVERR
	if family == unix.AF_INET6 {
		level, opt = unix.IPPROTO_IPV6, unix.IPV6_RECVERR
	}
	if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func (l *fakeLab) Left(netns.Flow) (bool, error) { l.ask("left"); return l.left, nil }
func (l *fakeLab) Answered(netns.Flow) (bool, error) {
	l.ask("answered")
	return l.answered, nil
}
func (l *fakeLab) Egress(netns.Flow) (bool, bool, error) {
	l.ask("egress")
	return l.left, l.answered, nil
}
func (l *fakeLab) WhereDropped(netns.Flow) (sentinel.ReturnPath, error) {
	l.ask("where")
	return l.where, nil
}
func (l *fakeLab) NeighbourDiscovery(netip.Addr) (sentinel.Discovery, error) {
	l.ask("discovery")
	return l.discovery, nil
}
func (l *fakeLab) NextHop(dst netip.Addr) (netip.Addr, bool, bool) { return dst, false, true }
func (l *fakeLab) HostRefusal(netip.Addr) (sentinel.Refusal, bool, error) {
	l.ask("host")
	if l.refusal == nil {
		return sentinel.Refusal{}, false, nil
	}
	return *l.refusal, true, nil
}
func (l *fakeLab) WhoAnswered(string, string, string) (serve.Service, bool) {
	l.ask("who")
	if l.service == nil {
		return serve.Service{}, false
	}
	return *l.service, true
}
func (l *fakeLab) AwaitAnswered(proto, client, server string, _ time.Time) (serve.Service, bool) {
	return l.WhoAnswered(proto, client, server)
}
func (l *fakeLab) AwaitGreeted(string, string, time.Time) bool { return false }
func (l *fakeLab) AfterNAT(f netns.Flow) (netns.Flow, error)   { return f, nil }
func (l *fakeLab) Release(f netns.Flow, sock io.Closer) {
	l.mu.Lock()
	l.released = append(l.released, f)
	l.mu.Unlock()
	_ = sock.Close()
}
func (l *fakeLab) ForgetMark() uint64                  { return 0 }
func (l *fakeLab) Recycled(netns.Flow, uint64) bool    { return false }
func (l *fakeLab) AwaitForgotten(netns.Flow) error     { return nil }
func (l *fakeLab) AwaitHeldPorts(uint64) (bool, error) { return false, nil }
func (l *fakeLab) Uplink() string                      { return "eth0" }
