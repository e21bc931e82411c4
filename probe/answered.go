package probe

import "fmt"

// Who answered a probe: the lab's service that saw its connection, looked up
// by both ends as the service saw them (after the candidate's NAT).

// seenAs is the probe's address and port as the lab's services see it: a
// client's after the host's nat.
func (p *dialer) seenAs() string {
	if p.fwd != nil {
		if p.readLeftAs(); p.f.LeftAs.IsValid() {
			return p.f.LeftAs.String()
		}
	}
	return p.flow.Src.String()
}

// connEnds is the probe's connection as the lab's services see it: its
// source and destination after the candidate's nat (the sentinel's record
// of what the nat rewrote). ok is false when the sentinel could not be read
// (p failed).
func (p *dialer) connEnds() (client, server string, ok bool) {
	after, err := p.lab.AfterNAT(p.flow)
	if err != nil {
		p.fail(fmt.Errorf("read what the candidate's nat made of the probe: %w", err))
		return "", "", false
	}
	client = p.seenAs()
	if p.fwd == nil {
		client = after.Src.String()
	}
	return client, after.Dst.String(), true
}

// answeredBy names the lab's service that saw this probe, if it was one of
// them: the one that saw this very connection, both its ends, since another
// probe may share its source. A UDP echo is recorded before it is sent; a
// TCP handshake completes in the kernel before the listener accepts, so that
// record is awaited. Most probes reach the address they dialled from the
// one they were given, so those are asked first, and the sentinel only when
// they found nothing.
func (p *dialer) answeredBy() *Service {
	client, server := p.seenAs(), p.flow.Dst.String()
	s, ok := p.lab.WhoAnswered(p.t.Proto, client, server)
	if !ok {
		c, sv, known := p.connEnds()
		if !known {
			return nil
		}
		if c != client || sv != server {
			client, server = c, sv
			s, ok = p.lab.WhoAnswered(p.t.Proto, client, server)
		}
	}
	if !ok && p.t.Proto == "tcp" {
		s, ok = p.lab.AwaitAnswered(p.t.Proto, client, server, p.deadline)
	}
	if !ok {
		return nil
	}
	return &Service{Host: s.Host, Addr: s.Addr, Port: s.Port, Proto: s.Proto}
}
