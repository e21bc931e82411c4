package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/egresslab/egresslab/netns"
	"github.com/miekg/dns"
)

// ClientLab is what the client's view needs: probing, the lab's DNS (asked
// from outside the candidate's reach) and the lab's source address choice.
type ClientLab interface {
	Lab
	Lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error)
	SourceFor(dst netip.Addr) (netip.Addr, bool)
}

var _ ClientLab = (*netns.Lab)(nil)

// Attempt is one address a client tried, and what happened.
type Attempt struct {
	Addr   netip.Addr
	Result Result
}

// ClientView is what a resolver-ordered client (telnet, an MTA) experiences:
// it resolves the name, orders the addresses as getaddrinfo does, and tries
// them one after another until one connects.
type ClientView struct {
	Name     string // what the client was asked for
	Host     string // the host it resolved (the MX target for a mail domain)
	Port     uint16
	Attempts []Attempt
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

// Resolve returns the host a client would connect to for name (its MX target
// if name is a mail domain, else name itself) and that host's addresses in
// the order a client tries them.
func Resolve(ctx context.Context, lab ClientLab, name string) (host string, addrs []netip.Addr, err error) {
	host = strings.TrimSuffix(name, ".")
	if rrs, err := lab.Lookup(ctx, host, dns.TypeMX); err == nil {
		var best *dns.MX
		for _, rr := range rrs {
			if mx, ok := rr.(*dns.MX); ok && (best == nil || mx.Preference < best.Preference) {
				best = mx
			}
		}
		if best != nil {
			host = strings.TrimSuffix(best.Mx, ".")
		}
	}
	for _, qt := range []uint16{dns.TypeAAAA, dns.TypeA} {
		rrs, err := lab.Lookup(ctx, host, qt)
		var lerr *netns.LookupError
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
		return host, nil, fmt.Errorf("%s has no A or AAAA record in the lab", host)
	}
	return host, SortRFC6724(addrs, lab.SourceFor), nil
}

// Client plays a resolver-ordered TCP client run as id: it tries each address
// of name in order and stops at the first that connects, as telnet does.
func Client(ctx context.Context, lab ClientLab, id netns.Identity, name string, port uint16, backstop time.Duration) (ClientView, error) {
	host, addrs, err := Resolve(ctx, lab, name)
	if err != nil {
		return ClientView{}, err
	}
	v := ClientView{Name: name, Host: host, Port: port}
	for _, a := range addrs {
		r := Dial(ctx, lab, id, Target{Addr: a, Port: port, Proto: "tcp"}, backstop)
		v.Attempts = append(v.Attempts, Attempt{Addr: a, Result: r})
		if r.Outcome == Connected {
			break
		}
	}
	return v, nil
}

// WriteTelnet prints the view as telnet would have shown it.
func (v ClientView) WriteTelnet(w io.Writer) {
	for _, a := range v.Attempts {
		fmt.Fprintf(w, "Trying %s...\n", a.Addr)
		switch a.Result.Outcome {
		case Connected:
			fmt.Fprintf(w, "Connected to %s.\nEscape character is '^]'.\n", v.Host)
			if strings.HasPrefix(a.Result.Detail, "220") {
				fmt.Fprintln(w, a.Result.Detail)
			}
		case Dropped:
			fmt.Fprintf(w, "telnet: connect to address %s: Connection timed out   [%s]\n", a.Addr, a.Result.Detail)
		case Refused:
			fmt.Fprintf(w, "telnet: connect to address %s: Connection refused   [%s]\n", a.Addr, a.Result.Detail)
		case Rejected:
			fmt.Fprintf(w, "telnet: connect to address %s: No route to host   [%s]\n", a.Addr, a.Result.Detail)
		default:
			fmt.Fprintf(w, "telnet: connect to address %s: probe error: %s\n", a.Addr, a.Result.Detail)
		}
	}
	if _, ok := v.Connected(); !ok {
		fmt.Fprintln(w, "telnet: Unable to connect to remote host")
	}
}
