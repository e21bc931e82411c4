package serve

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/egresslab/egresslab/netns"
	"github.com/miekg/dns"
)

// Zone is what the lab's DNS answers.
type Zone struct {
	Hosts map[string][]netip.Addr // name -> A and AAAA records
	MX    map[string]string       // domain -> mail exchanger host name
}

func (z Zone) handler() dns.Handler {
	answer := z.responder()
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) { _ = w.WriteMsg(answer(req)) })
}

// responder answers a query from the zone.
func (z Zone) responder() func(req *dns.Msg) *dns.Msg {
	hosts := map[string][]netip.Addr{}
	for name, addrs := range z.Hosts {
		hosts[dns.CanonicalName(name)] = addrs
	}
	mx := map[string]string{}
	for domain, host := range z.MX {
		mx[dns.CanonicalName(domain)] = dns.CanonicalName(host)
	}
	return func(req *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		if len(req.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
			return m
		}
		q := req.Question[0]
		name := dns.CanonicalName(q.Name)
		addrs, isHost := hosts[name]
		exchanger, isDomain := mx[name]
		if !isHost && !isDomain {
			m.Rcode = dns.RcodeNameError
		}
		hdr := func(t uint16) dns.RR_Header {
			return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 60}
		}
		switch q.Qtype {
		case dns.TypeA, dns.TypeAAAA:
			for _, a := range addrs {
				if a.Is4() && q.Qtype == dns.TypeA {
					m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: a.AsSlice()})
				}
				if a.Is6() && q.Qtype == dns.TypeAAAA {
					m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: a.AsSlice()})
				}
			}
		case dns.TypeMX:
			if isDomain {
				m.Answer = append(m.Answer, &dns.MX{Hdr: hdr(dns.TypeMX), Preference: 10, Mx: exchanger})
			}
		}
		return m
	}
}

// ServeDNS starts the lab's DNS server for zone.
func (sv *Server) ServeDNS(zone Zone) error {
	sv.zone.Store(zone.responder())
	h := zone.handler()
	for _, a := range netns.DNSServers() {
		// A host's resolver runs as root (or its own user): the lab's answers
		// as its root, whose owner the candidate's rules may match.
		if err := sv.serveDNSOn(netip.AddrPortFrom(a, 53), h); err != nil {
			return err
		}
	}
	return nil
}

func (sv *Server) serveDNSOn(ap netip.AddrPort, h dns.Handler) error {
	in := sv.listenAs(netns.Identity{})
	var pc net.PacketConn
	var ln net.Listener
	err := in(func() (err error) {
		if pc, err = net.ListenPacket("udp", ap.String()); err != nil {
			return err
		}
		ln, err = net.Listen("tcp", ap.String())
		return err
	})
	if err != nil {
		if pc != nil {
			pc.Close()
		}
		return fmt.Errorf("listen for DNS on %s in lab %s: %w", ap, sv.lab.Name(), err)
	}
	if ln, err = sv.acceptAs(ln, netns.Identity{}); err != nil {
		pc.Close()
		return err
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		errc := make(chan error, 1)
		go func() { errc <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			return fmt.Errorf("serve DNS on %s in lab %s: %w", ap, sv.lab.Name(), err)
		}
		sv.lab.OnClose(srv.Shutdown)
	}
	return nil
}
