package netns

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"sync"

	"github.com/emersion/go-smtp"
)

// Service is one address and port that the lab serves.
type Service struct {
	Host  string // the host name it answers as
	Addr  netip.Addr
	Port  uint16
	Proto string // "tcp" or "udp"
}

func (s Service) String() string {
	return fmt.Sprintf("%s %s/%s", s.Host, netip.AddrPortFrom(s.Addr, s.Port), s.Proto)
}

// SMTPPorts greet with 220 and speak enough SMTP for telnet and swaks.
var SMTPPorts = map[uint16]bool{25: true, 465: true, 587: true}

// answered records which service saw which client, so a probe knows who
// answered it (a NAT rule may send it somewhere else than it dialled).
type answered struct {
	mu   sync.Mutex
	seen map[string]Service
}

func (a *answered) record(proto string, client net.Addr, s Service) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen == nil {
		a.seen = map[string]Service{}
	}
	a.seen[proto+" "+client.String()] = s
}

// WhoAnswered names the service that saw a client at clientAddr ("ip:port").
func (l *Lab) WhoAnswered(proto, clientAddr string) (Service, bool) {
	l.answered.mu.Lock()
	defer l.answered.mu.Unlock()
	s, ok := l.answered.seen[proto+" "+clientAddr]
	return s, ok
}

// Serve starts a listener for every service: loopback addresses on the lab's
// lo, every other address in the world, one hop beyond the uplink. SMTP ports
// greet as their host; other TCP ports accept; UDP ports echo.
func (l *Lab) Serve(services []Service) error {
	smtpServers := map[string]*smtp.Server{}
	for _, s := range services {
		in := l.inWorld
		if s.Addr.IsLoopback() {
			in = l.inLab
			l.ports.reserve(s.Port)
		} else if err := l.AddWorldAddress(s.Addr); err != nil {
			return err
		}
		addr := netip.AddrPortFrom(s.Addr, s.Port).String()
		if s.Proto == "udp" {
			var pc net.PacketConn
			if err := in(func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
				return fmt.Errorf("listen on %s in lab %s: %w", s, l.cfg.Name, err)
			}
			l.addCloser(pc.Close)
			go l.echo(pc, s)
			continue
		}
		var ln net.Listener
		if err := in(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
			return fmt.Errorf("listen on %s in lab %s: %w", s, l.cfg.Name, err)
		}
		ln = &recordingListener{Listener: ln, lab: l, service: s}
		if !SMTPPorts[s.Port] {
			l.addCloser(ln.Close)
			go acceptAndHold(ln)
			continue
		}
		srv := smtpServers[s.Host]
		if srv == nil {
			srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return mailSink{}, nil }))
			srv.Domain = s.Host
			srv.ErrorLog = log.New(io.Discard, "", 0)
			smtpServers[s.Host] = srv
			l.addCloser(srv.Close)
		}
		go func() { _ = srv.Serve(ln) }()
	}
	return nil
}

type recordingListener struct {
	net.Listener
	lab     *Lab
	service Service
}

func (r *recordingListener) Accept() (net.Conn, error) {
	c, err := r.Listener.Accept()
	if err == nil {
		r.lab.answered.record("tcp", c.RemoteAddr(), r.service)
	}
	return c, err
}

// acceptAndHold accepts and keeps each connection until the client closes it.
func acceptAndHold(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}()
	}
}

func (l *Lab) echo(pc net.PacketConn, s Service) {
	buf := make([]byte, 64*1024)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		l.answered.record("udp", from, s)
		_, _ = pc.WriteTo(buf[:n], from)
	}
}

// mailSink accepts any mail and forgets it.
type mailSink struct{}

func (mailSink) Reset()                               {}
func (mailSink) Logout() error                        { return nil }
func (mailSink) Mail(string, *smtp.MailOptions) error { return nil }
func (mailSink) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (mailSink) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
