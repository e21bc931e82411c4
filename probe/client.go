package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns"
	"github.com/miekg/dns"
)

// ClientLab is what the client's view needs: probing, and the lab's source
// address choice (getaddrinfo's sort asks the kernel).
type ClientLab interface {
	Lab
	SourceFor(dst netip.Addr) (netip.Addr, bool)
}

// Attempt is one address a client tried, and what happened.
type Attempt struct {
	Addr   netip.Addr
	Result Result
}

// ClientView is what a resolver-ordered client (telnet, an MTA) experiences:
// it resolves the name, orders the addresses as getaddrinfo does, and tries
// them one after another until one connects.
type ClientView struct {
	Name string // what the client was asked for
	Host string // the host it resolved (the MX target for a mail domain)
	Port uint16
	// Unresolved says why the name did not resolve, as the user, through the
	// lab's rules ("" when it did).
	Unresolved string
	Attempts   []Attempt
}

// Connected reports whether any attempt connected, and which.
func (v ClientView) Connected() (Attempt, bool) {
	for _, a := range v.Attempts {
		if a.Result.Outcome == Connected {
			return a, true
		}
	}
	return Attempt{}, false
}

// Resolve returns the host a client run as id would connect to for name (its
// MX target if name is a mail domain, else name itself) and that host's
// addresses in the order a client tries them. It asks the lab's resolvers as
// the lab's resolv.conf lists them, from sockets opened as id, so the
// candidate's rules apply to the lookups as they would to the client's own.
// A name that cannot be resolved that way is a *ResolveError.
func Resolve(ctx context.Context, lab ClientLab, id netns.Identity, name string, backstop time.Duration) (host string, addrs []netip.Addr, err error) {
	if backstop <= 0 {
		backstop = DefaultBackstop
	}
	host = strings.TrimSuffix(name, ".")
	if rrs, err := lookupAs(ctx, lab, id, host, dns.TypeMX, backstop); err == nil {
		var best *dns.MX
		for _, rr := range rrs {
			if mx, ok := rr.(*dns.MX); ok && (best == nil || mx.Preference < best.Preference) {
				best = mx
			}
		}
		if best != nil {
			host = strings.TrimSuffix(best.Mx, ".")
		}
	} else if errors.As(err, new(*ResolveError)) {
		return host, nil, err
	}
	for _, qt := range []uint16{dns.TypeAAAA, dns.TypeA} {
		rrs, err := lookupAs(ctx, lab, id, host, qt, backstop)
		var lerr *LookupError
		if errors.As(err, &lerr) {
			continue
		}
		if err != nil {
			return host, nil, err
		}
		for _, rr := range rrs {
			switch r := rr.(type) {
			case *dns.A:
				a, _ := netip.AddrFromSlice(r.A.To4())
				addrs = append(addrs, a)
			case *dns.AAAA:
				a, _ := netip.AddrFromSlice(r.AAAA)
				addrs = append(addrs, a)
			}
		}
	}
	if len(addrs) == 0 {
		return host, nil, &LookupError{Name: host, Rcode: "no A or AAAA record"}
	}
	return host, SortRFC6724(addrs, lab.SourceFor), nil
}

// LookupError is a resolver's answer other than success (NXDOMAIN, say), or
// a name with no address.
type LookupError struct {
	Name  string
	Rcode string
}

func (e *LookupError) Error() string { return fmt.Sprintf("look up %s: %s", e.Name, e.Rcode) }

// ResolveError says that no resolver of the lab answered the user: the
// candidate's rules (or the host's state) kept every lookup from getting
// through, and a real client would fail to resolve the name.
type ResolveError struct {
	Name  string
	Tried []string // each resolver and what happened to the query
}

func (e *ResolveError) Error() string {
	return fmt.Sprintf("could not resolve %s: %s", e.Name, strings.Join(e.Tried, "; "))
}

// lookupAs asks each of the lab's resolvers in turn, over UDP from a socket
// opened as id, as glibc does with the lab's resolv.conf.
func lookupAs(ctx context.Context, lab ClientLab, id netns.Identity, name string, qtype uint16, backstop time.Duration) ([]dns.RR, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	rerr := &ResolveError{Name: name}
	for _, server := range netns.DNSServers() {
		r, err := exchangeAs(ctx, lab, id, server, q, backstop)
		if err != nil {
			rerr.Tried = append(rerr.Tried, fmt.Sprintf("%s: %v", server, err))
			continue
		}
		if r.Rcode != dns.RcodeSuccess {
			return nil, &LookupError{Name: name, Rcode: dns.RcodeToString[r.Rcode]}
		}
		return r.Answer, nil
	}
	return nil, rerr
}

func exchangeAs(ctx context.Context, lab ClientLab, id netns.Identity, server netip.Addr, q *dns.Msg, backstop time.Duration) (*dns.Msg, error) {
	family := unix.AF_INET
	if server.Is6() {
		family = unix.AF_INET6
	}
	fd, err := lab.Socket(id, family, unix.SOCK_DGRAM)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "resolver")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	uc := conn.(*net.UDPConn)
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(server, 53))
	deadline := time.Now().Add(backstop)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = uc.SetDeadline(deadline)
	c := &dns.Conn{Conn: &connectedUDP{uc, dst}}
	if err := c.WriteMsg(q); err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, errors.New("the query was dropped by the lab's egress rules")
		}
		return nil, err
	}
	r, err := c.ReadMsg()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, fmt.Errorf("no answer within %s", backstop)
	}
	return r, err
}

// connectedUDP sends every write to one resolver.
type connectedUDP struct {
	*net.UDPConn
	dst *net.UDPAddr
}

func (c *connectedUDP) Write(b []byte) (int, error) { return c.WriteToUDP(b, c.dst) }

// Client plays a resolver-ordered TCP client run as id: it resolves name as
// id inside the lab, then tries each address in order and stops at the first
// that connects, as telnet does.
func Client(ctx context.Context, lab ClientLab, id netns.Identity, name string, port uint16, backstop time.Duration) (ClientView, error) {
	v := ClientView{Name: name, Host: name, Port: port}
	host, addrs, err := Resolve(ctx, lab, id, name, backstop)
	var rerr *ResolveError
	if errors.As(err, &rerr) {
		v.Unresolved = err.Error()
		return v, nil
	}
	if err != nil {
		return ClientView{}, err
	}
	v.Host = host
	for _, a := range addrs {
		r := Dial(ctx, lab, id, Target{Addr: a, Port: port, Proto: "tcp"}, backstop)
		v.Attempts = append(v.Attempts, Attempt{Addr: a, Result: r})
		if r.Outcome == Connected {
			break
		}
	}
	return v, nil
}
