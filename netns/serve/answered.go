package serve

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// answered records which service saw which connection, so a probe knows who
// answered it (a NAT rule may send it somewhere else than it dialled).
// A connection is keyed by both its ends as the service saw them (connKey):
// two probes may share a source address and port when their destinations
// differ (the kernel keeps the 4-tuple unique, not the source), and keyed by
// the client alone one probe's record would name the other's service.
type answered struct {
	mu      sync.Mutex
	seen    map[string]Service
	greeted map[string]bool // an SMTP listener wrote its greeting on the connection
	// waiting holds, by key, a channel that the record of that key closes:
	// each record wakes the one probe waiting for it, not every probe.
	waiting map[string]chan struct{}
}

// wakeLocked wakes whoever waits for key.
func (a *answered) wakeLocked(key string) {
	if ch, ok := a.waiting[key]; ok {
		close(ch)
		delete(a.waiting, key)
	}
}

// await waits, until deadline, for done (read under a.mu) to report key
// recorded.
func (a *answered) await(key string, deadline time.Time, done func() bool) bool {
	var timer *time.Timer
	for {
		a.mu.Lock()
		if done() {
			a.mu.Unlock()
			return true
		}
		if a.waiting == nil {
			a.waiting = map[string]chan struct{}{}
		}
		ch, ok := a.waiting[key]
		if !ok {
			ch = make(chan struct{})
			a.waiting[key] = ch
		}
		a.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			a.mu.Lock()
			if a.waiting[key] == ch {
				delete(a.waiting, key)
			}
			ok := done()
			a.mu.Unlock()
			return ok
		}
	}
}

// connKey names a connection (a UDP client and the address it sent to) by
// its client's address and port and the service's local ones ("ip:port"),
// as the service saw them: the packet's source and destination as they
// arrived, after any NAT of the candidate's.
func connKey(proto, client, local string) string { return proto + " " + client + " " + local }

// endpoint is a socket's address as a probe's flow names it ("ip:port", an
// IPv4 address never in its IPv6-mapped form).
func endpoint(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	return a.String()
}

// greet records that the listener wrote its first bytes on the connection
// from client to local.
func (a *answered) greet(client, local net.Addr) {
	key := connKey("tcp", client.String(), endpoint(local))
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.greeted == nil {
		a.greeted = map[string]bool{}
	}
	a.greeted[key] = true
	a.wakeLocked("greeted " + key)
}

// AwaitGreeted waits, until deadline, for the lab's own server to have
// written its first bytes (an SMTP greeting) on the TCP connection from
// clientAddr to serverAddr (as the server saw it). It tells the lab's own
// lag (not written yet) from a greeting that was sent and never arrived.
func (sv *Server) AwaitGreeted(clientAddr, serverAddr string, deadline time.Time) bool {
	a := &sv.answered
	key := connKey("tcp", clientAddr, serverAddr)
	return a.await("greeted "+key, deadline, func() bool { return a.greeted[key] })
}

// record notes that service s saw a connection from client to local.
func (a *answered) record(proto string, client net.Addr, local string, s Service) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen == nil {
		a.seen = map[string]Service{}
	}
	key := connKey(proto, client.String(), local)
	a.seen[key] = s
	// A new connection of the same ends has greeted no one yet, whatever
	// an earlier one left that nothing forgot (a NATed probe's, see Forget).
	delete(a.greeted, key)
	a.wakeLocked(key)
}

// AwaitAnswered is WhoAnswered for a connection whose handshake the kernel
// completed before the listener accepted it: it waits, until deadline, for
// the lab's listener to record the connection.
func (sv *Server) AwaitAnswered(proto, clientAddr, serverAddr string, deadline time.Time) (Service, bool) {
	a := &sv.answered
	key := connKey(proto, clientAddr, serverAddr)
	var s Service
	ok := a.await(key, deadline, func() bool {
		var seen bool
		s, seen = a.seen[key]
		return seen
	})
	return s, ok
}

// WhoAnswered names the service that saw a connection from clientAddr to
// serverAddr ("ip:port" each, as the service saw them: a probe's source and
// destination after the candidate's NAT). There is no guess from the client
// alone: another probe may share it, and naming no service is better than
// naming the wrong one.
func (sv *Server) WhoAnswered(proto, clientAddr, serverAddr string) (Service, bool) {
	sv.answered.mu.Lock()
	defer sv.answered.mu.Unlock()
	s, ok := sv.answered.seen[connKey(proto, clientAddr, serverAddr)]
	return s, ok
}

func (a *answered) forget(proto, client, server string) {
	key := connKey(proto, client, server)
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.seen, key)
	delete(a.greeted, key)
}

// Serve starts a listener for every service: loopback addresses on the lab's
// lo, every other address in the world, one hop beyond the uplink. SMTP ports
// greet as their host, HTTP, HTTPS and DNS ports answer as such, other TCP
// ports accept, UDP ports echo.
