package serve

import (
	"net"
	"sync"
	"time"
)

// answered records which service saw which client, so a probe knows who
// answered it (a NAT rule may send it somewhere else than it dialled).
type answered struct {
	mu      sync.Mutex
	seen    map[string]Service
	greeted map[string]bool // an SMTP listener wrote its greeting to the client
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

// greet records that the listener wrote its first bytes to client.
func (a *answered) greet(client string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.greeted == nil {
		a.greeted = map[string]bool{}
	}
	a.greeted["tcp "+client] = true
	a.wakeLocked("greeted tcp " + client)
}

// AwaitGreeted waits, until deadline, for the lab's own server to have
// written its first bytes (an SMTP greeting) to the TCP client at
// clientAddr. It tells the lab's own lag (not written yet) from a greeting
// that was sent and never arrived.
func (sv *Server) AwaitGreeted(clientAddr string, deadline time.Time) bool {
	a := &sv.answered
	return a.await("greeted tcp "+clientAddr, deadline, func() bool { return a.greeted["tcp "+clientAddr] })
}

func (a *answered) record(proto string, client net.Addr, s Service) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen == nil {
		a.seen = map[string]Service{}
	}
	key := proto + " " + client.String()
	a.seen[key] = s
	a.wakeLocked(key)
}

// AwaitAnswered is WhoAnswered for a connection whose handshake the kernel
// completed before the listener accepted it: it waits, until deadline, for
// the lab's listener to record the client.
func (sv *Server) AwaitAnswered(proto, clientAddr string, deadline time.Time) (Service, bool) {
	a := &sv.answered
	key := proto + " " + clientAddr
	var s Service
	ok := a.await(key, deadline, func() bool {
		var seen bool
		s, seen = a.seen[key]
		return seen
	})
	return s, ok
}

// WhoAnswered names the service that saw a client at clientAddr ("ip:port").
func (sv *Server) WhoAnswered(proto, clientAddr string) (Service, bool) {
	sv.answered.mu.Lock()
	defer sv.answered.mu.Unlock()
	s, ok := sv.answered.seen[proto+" "+clientAddr]
	return s, ok
}

func (a *answered) forget(proto, client string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.seen, proto+" "+client)
	delete(a.greeted, proto+" "+client)
}

// Serve starts a listener for every service: loopback addresses on the lab's
// lo, every other address in the world, one hop beyond the uplink. SMTP ports
// greet as their host, HTTP, HTTPS and DNS ports answer as such, other TCP
// ports accept, UDP ports echo.
