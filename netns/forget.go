package netns

import (
	"errors"
	"io"
	"sync"
)

// A probe's evidence must be gone before its socket closes: while the
// socket is open, the kernel cannot give its flow to another probe, and once
// it closes, a later probe could be given the same flow and read this one's
// evidence. Removing evidence is an nftables transaction, and transactions
// take the kernel's commit lock one at a time: a probe that waited for its
// own took 11 ms on average in a 1,000-probe matrix.
//
// So a probe hands its flow and its socket over (Release) and has its
// verdict at once. One goroutine per lab removes the evidence of everything
// handed over since its last transaction, in one transaction, and only then
// closes those sockets. A transaction that fails leaves its sockets open
// until the lab closes (their flows are never handed out again) and fails
// the run (ForgetErr).

// maxForgetBatch bounds one transaction: 64 flows of 9 sets is about 60 KB
// of netlink messages, within a netlink socket's default send buffer.
const maxForgetBatch = 64

// maxForgetPending bounds the sockets waiting for their transaction: a probe
// that would go past it waits.
const maxForgetPending = 4096

type forgetRequest struct {
	elems []setElem
	sock  io.Closer
}

// setElem is one element of one of the sentinel's sets.
type setElem struct {
	set string
	key []byte
}

type forgetQueue struct {
	mu      sync.Mutex
	room    *sync.Cond // the queue shrank, or the lab closed
	work    *sync.Cond // the queue grew, or the lab closed
	pending []forgetRequest
	busy    bool        // the forgetter holds a batch it has not finished
	held    []io.Closer // sockets of failed transactions, closed with the lab
	err     error       // the first failure
	closed  bool
	done    chan struct{} // the forgetter has stopped
}

func (q *forgetQueue) init() {
	q.room, q.work = sync.NewCond(&q.mu), sync.NewCond(&q.mu)
	q.done = make(chan struct{})
}

// Release removes everything the lab recorded about f and then closes sock,
// the probe's socket, in the background (see above). With no sentinel, or
// for a flow that left no evidence, closing at once is the caller's choice.
func (l *Lab) Release(f Flow, sock io.Closer) {
	if l.sentinel == nil {
		l.answered.forget(f.Proto, f.Src.String())
		sock.Close()
		return
	}
	key := f.key()
	elems := make([]setElem, 0, len(flowSets)+1)
	elems = append(elems, setElem{f.set(icmpSets[f.Proto]), f.icmpKey()})
	for _, name := range flowSets {
		elems = append(elems, setElem{f.set(name), key})
	}
	l.sentinel.forgets.add(forgetRequest{elems: elems, sock: closeAfter(sock, func() { l.answered.forget(f.Proto, f.Src.String()) })})
}

// closeAfter is sock, closed after fn has run.
func closeAfter(sock io.Closer, fn func()) io.Closer { return afterCloser{sock, fn} }

type afterCloser struct {
	io.Closer
	before func()
}

func (c afterCloser) Close() error { c.before(); return c.Closer.Close() }

// ForgetErr is the first failure to remove a probe's evidence, after every
// flow released so far has been dealt with.
func (l *Lab) ForgetErr() error {
	if l.sentinel == nil {
		return nil
	}
	q := &l.sentinel.forgets
	q.mu.Lock()
	defer q.mu.Unlock()
	for (len(q.pending) > 0 || q.busy) && !q.closed {
		q.room.Wait()
	}
	return q.err
}

func (q *forgetQueue) add(r forgetRequest) {
	q.mu.Lock()
	for len(q.pending) >= maxForgetPending && !q.closed {
		q.room.Wait()
	}
	if q.closed {
		q.mu.Unlock()
		r.sock.Close() // the lab, and every flow of it, is gone
		return
	}
	q.pending = append(q.pending, r)
	q.work.Signal()
	q.mu.Unlock()
}

// run is the forgetter: one transaction for what is queued, then its sockets.
func (q *forgetQueue) run(s *sentinel) {
	defer close(q.done)
	q.mu.Lock()
	for {
		for len(q.pending) == 0 && !q.closed {
			q.work.Wait()
		}
		if q.closed {
			q.mu.Unlock()
			return
		}
		n := min(len(q.pending), maxForgetBatch)
		batch := q.pending[:n:n]
		q.pending = q.pending[n:]
		q.busy = true
		q.mu.Unlock()
		err := s.removeBatch(batch)
		if err == nil {
			for _, r := range batch {
				r.sock.Close()
			}
		}
		q.mu.Lock()
		q.busy = false
		if err != nil {
			q.err = errors.Join(q.err, err)
			for _, r := range batch {
				q.held = append(q.held, r.sock)
			}
		}
		q.room.Broadcast()
	}
}

// close stops the forgetter and closes every socket it still has.
func (q *forgetQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.work.Broadcast()
	q.room.Broadcast()
	q.mu.Unlock()
	<-q.done
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range q.pending {
		r.sock.Close()
	}
	for _, c := range q.held {
		c.Close()
	}
	q.pending, q.held = nil, nil
}
