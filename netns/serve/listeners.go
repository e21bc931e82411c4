package serve

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/egresslab/egresslab/netns"
	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// Service is one address and port that the lab serves.
type Service struct {
	Host  string // the host name it answers as
	Addr  netip.Addr
	Port  uint16
	Proto string // "tcp" or "udp"
	// ServedBy is who the listener runs as, when it is on the lab's own
	// loopback: its answers carry that owner through the lab's OUTPUT rules,
	// as a host's relay or resolver does. The zero netns.Identity is the lab's root.
	ServedBy netns.Identity
}

func (s Service) String() string {
	return fmt.Sprintf("%s %s/%s", s.Host, netip.AddrPortFrom(s.Addr, s.Port), s.Proto)
}

// SMTPPort says whether port greets with 220 and speaks the SMTP that
// telnet, swaks and curl do.
func SMTPPort(port uint16) bool { return port == 25 || port == 465 || port == 587 }

// Other well-known TCP ports serve what a client expects there, so that a
// client that connected finishes and exits 0 (a TLS port that never spoke
// would hang `curl https://` exactly like a drop): HTTP answers 200 on any
// path, HTTPS is the same behind TLS with a certificate of the lab's CA, and
// port 53 answers DNS from the lab's zone. Every other TCP port accepts.
func httpPort(port uint16) bool  { return port == 80 || port == 8080 }
func httpsPort(port uint16) bool { return port == 443 || port == 8443 }

// DNSPort answers DNS queries from the lab's zone, over TCP and UDP; a UDP
// datagram that is no query is echoed, as on any UDP port.
const DNSPort = 53

// ServedAlone says whether a port gets a server of its own, outside any
// range or the world's any-address socket, which only accept or echo.
func ServedAlone(port uint16, proto string) bool {
	if proto == "udp" {
		return port == DNSPort
	}
	return SMTPPort(port) || httpPort(port) || httpsPort(port) || port == DNSPort
}

func (sv *Server) Serve(services []Service) (err error) {
	smtpServers := map[string]*smtp.Server{}
	for _, s := range services {
		// The world's listeners are beyond every rule of the lab: whoever
		// owns them matters to nothing.
		listen := sv.lab.DoWorld
		if s.Addr.IsLoopback() {
			listen = sv.listenAs(s.ServedBy)
		} else if err := sv.lab.AddWorldAddress(s.Addr); err != nil {
			return err
		} else if err := sv.noteWorldCell(s); err != nil {
			return err
		}
		addr := netip.AddrPortFrom(s.Addr, s.Port).String()
		if s.Proto == "udp" {
			var pc net.PacketConn
			if err := listen(func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
				return fmt.Errorf("listen on %s in lab %s: %w", s, sv.lab.Name(), err)
			}
			sv.lab.OnClose(pc.Close)
			go sv.echo(pc, s)
			continue
		}
		var ln net.Listener
		if err := listen(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
			return fmt.Errorf("listen on %s in lab %s: %w", s, sv.lab.Name(), err)
		}
		if s.Addr.IsLoopback() {
			if ln, err = sv.acceptAs(ln, s.ServedBy); err != nil {
				return fmt.Errorf("listen on %s in lab %s: %w", s, sv.lab.Name(), err)
			}
		}
		ln = &recordingListener{Listener: ln, lab: sv, service: s}
		switch {
		case SMTPPort(s.Port):
			srv := smtpServers[s.Host]
			if srv == nil {
				srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return mailSink{}, nil }))
				srv.Domain = s.Host
				srv.ErrorLog = log.New(io.Discard, "", 0)
				srv.TLSConfig = sv.lab.TLSConfig() // STARTTLS, as swaks --tls asks
				smtpServers[s.Host] = srv
				sv.lab.OnClose(srv.Close)
			}
			go func() { sv.served(s, srv.Serve(&helpListener{ln})) }()
		case httpPort(s.Port), httpsPort(s.Port):
			srv := &http.Server{Handler: okHandler(s.Host), ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: time.Minute}
			if httpsPort(s.Port) {
				ln = tls.NewListener(ln, sv.lab.TLSConfig())
			}
			sv.lab.OnClose(srv.Close)
			go func() { sv.served(s, srv.Serve(ln)) }()
		case s.Port == DNSPort:
			srv := &dns.Server{Listener: ln, Handler: sv.zoneHandler()}
			sv.lab.OnClose(ln.Close)
			go func() { sv.served(s, srv.ActivateAndServe()) }()
		default:
			sv.lab.OnClose(ln.Close)
			go func() { sv.served(s, acceptAndHold(ln)) }()
		}
	}
	return nil
}

// okHandler answers 200 on any path, naming the host: a client that got
// through has something to print.
func okHandler(host string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "egresslab: %s answered %s %s\n", host, r.Method, r.URL.Path)
	})
}

// zoneHandler answers from the zone ServeDNS was given (it starts after the
// listeners), or SERVFAIL before then.
func (sv *Server) zoneHandler() dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if answer, ok := sv.zone.Load().(func(*dns.Msg) *dns.Msg); ok {
			_ = w.WriteMsg(answer(req))
			return
		}
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
		_ = w.WriteMsg(m)
	})
}

type recordingListener struct {
	net.Listener
	lab     *Server
	service Service
}

func (r *recordingListener) Accept() (net.Conn, error) {
	c, err := r.Listener.Accept()
	if err != nil {
		return nil, err
	}
	r.lab.answered.record("tcp", c.RemoteAddr(), endpoint(c.LocalAddr()), r.service)
	return &greetingConn{Conn: c, answered: &r.lab.answered}, nil
}

// greetingConn records its first write: the server's greeting is on its way.
type greetingConn struct {
	net.Conn
	answered *answered
	once     sync.Once
}

func (c *greetingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.once.Do(func() { c.answered.greet(c.RemoteAddr(), c.LocalAddr()) })
	}
	return n, err
}

// acceptAndHold accepts and keeps each connection until the client closes
// it, and returns why it stopped accepting.
func acceptAndHold(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}()
	}
}

func (sv *Server) echo(pc net.PacketConn, s Service) {
	buf := make([]byte, 64*1024)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		sv.answered.record("udp", from, netip.AddrPortFrom(s.Addr, s.Port).String(), s)
		reply := buf[:n]
		if s.Port == DNSPort {
			reply = sv.answerDNS(reply)
		}
		_, _ = pc.WriteTo(reply, from)
	}
}

// mailSink accepts any mail and forgets it.
type mailSink struct{}

func (mailSink) Reset()                               {}
func (mailSink) Logout() error                        { return nil }
func (mailSink) Mail(string, *smtp.MailOptions) error { return nil }
func (mailSink) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (mailSink) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }

// listenAs opens listeners on the lab's loopback as id, so that the owner
// match sees their answers as the host would see its relay's or resolver's.
func (sv *Server) listenAs(id netns.Identity) func(func() error) error {
	return func(fn func() error) error { return sv.lab.As(id, fn) }
}

// acceptAs makes ln accept its connections as id: an accepted socket's file
// takes the credentials of the thread that accepts it, and its packets (an
// SMTP greeting, say) carry that owner.
func (sv *Server) acceptAs(ln net.Listener, id netns.Identity) (net.Listener, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return ln, nil
	}
	// A listener's own RawConn cannot wait for readiness; a duplicate of
	// its descriptor, handed to the poller as a file, can.
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup := -1
	if cerr := rc.Control(func(fd uintptr) { dup, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, fmt.Errorf("duplicate a listener: %w", err)
	}
	f := os.NewFile(uintptr(dup), "listener")
	frc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &credListener{Listener: ln, lab: sv, id: id, f: f, rc: frc}, nil
}

type credListener struct {
	net.Listener
	lab *Server
	id  netns.Identity
	f   *os.File // the duplicate that Accept waits on
	rc  syscall.RawConn
}

func (c *credListener) Accept() (net.Conn, error) {
	nfd := -1
	var aerr error
	err := c.rc.Read(func(fd uintptr) bool {
		aerr = c.lab.lab.As(c.id, func() (err error) {
			nfd, _, err = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			return err
		})
		return !errors.Is(aerr, unix.EAGAIN)
	})
	if err == nil {
		err = aerr
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(nfd), "accepted")
	defer f.Close()
	return net.FileConn(f) // a duplicate of the same file: the owner stays
}

func (c *credListener) Close() error {
	c.f.Close() // wakes a waiting Accept
	return c.Listener.Close()
}

// answerDNS is the zone's answer to a DNS query on a host's port 53, or the
// datagram itself when it is no query (the prober's, which wants its echo).
func (sv *Server) answerDNS(datagram []byte) []byte {
	var req dns.Msg
	answer, ok := sv.zone.Load().(func(*dns.Msg) *dns.Msg)
	if !ok || req.Unpack(datagram) != nil || req.Response || len(req.Question) == 0 {
		return datagram
	}
	out, err := answer(&req).Pack()
	if err != nil {
		return datagram
	}
	return out
}
