package sentinel

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/egresslab/egresslab/netns"
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
//
// One exception to "while the socket is open": a TCP flow that a reset or
// an ICMP error ended is over in the kernel at once (tcp_done unhashes the
// socket and, since connect() picked its port, puts the port back), while
// our socket is still open. The kernel may give that very flow to the next
// probe to the same destination port, and the first probe's evidence, or its
// removal, would then decide the second's verdict. So every request is
// numbered: a probe notes how far removal had got before it dialled
// (ForgetMark), and a flow with a request that was not done by then
// (Recycled) is not its own: the probe hands it over again, waits for its
// removal (AwaitForgotten) and dials afresh.

// maxForgetBatch bounds one transaction: 64 flows of 9 sets is about 60 KB
// of netlink messages, within a netlink socket's default send buffer.
const maxForgetBatch = 64

// maxForgetPending bounds the sockets waiting for their transaction: a probe
// that would go past it waits.
const maxForgetPending = 4096

// recentForgets is how many requests past the last one done are remembered
// by flow. A probe whose mark is older than that cannot be told it is clear,
// and dials again: a connect() that outlasted this many removals.
const recentForgets = 2 * maxForgetPending

type forgetRequest struct {
	key   string // the flow's key
	seq   uint64 // its number, in order of Release
	elems []setElem
	sock  io.Closer
}

// setElem is one element of one of the sentinel's sets.
type setElem struct {
	set string
	key []byte
}

type recentForget struct {
	key string
	seq uint64
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

	queued    uint64        // requests numbered so far
	forgotten atomic.Uint64 // every request up to this one is done; written under mu
	// Every probe asks about its flow: a lock of its own, for readers.
	flows  sync.RWMutex
	latest map[string]uint64 // a flow's latest request, while recent
	recent []recentForget    // requests by number, for pruning latest
}

func (q *forgetQueue) init() {
	q.room, q.work = sync.NewCond(&q.mu), sync.NewCond(&q.mu)
	q.done = make(chan struct{})
	q.latest = map[string]uint64{}
}

// ForgetMark is how far the removal of released flows' evidence has got: a
// probe notes it before it dials, for Recycled.
func (s *Sentinel) ForgetMark() uint64 {
	if s == nil {
		return 0
	}
	return s.forgets.forgotten.Load()
}

// Recycled reports whether f still had an earlier probe's evidence, or its
// removal pending, when a probe that noted mark dialled: the kernel gave that
// probe a flow that is not yet clean, and its evidence cannot decide.
func (s *Sentinel) Recycled(f netns.Flow, mark uint64) bool {
	if s == nil {
		return false
	}
	q := &s.forgets
	q.flows.RLock()
	defer q.flows.RUnlock()
	if mark+recentForgets < q.forgotten.Load() {
		return true // too old to tell
	}
	var key [flowKeyMax]byte
	return q.latest[string(appendFlowKey(key[:0], f))] > mark
}

// AwaitHeldPorts waits until the sockets of every flow released so far are
// closed, and reports whether any were still held when a probe that noted
// mark dialled (else a probe that found no free source port found the
// kernel's own answer).
func (s *Sentinel) AwaitHeldPorts(mark uint64) (bool, error) {
	if s == nil {
		return false, nil
	}
	q := &s.forgets
	q.mu.Lock()
	defer q.mu.Unlock()
	held := q.queued > mark
	upTo := q.queued
	for q.forgotten.Load() < upTo && !q.closed {
		q.room.Wait()
	}
	if q.closed {
		return held, netns.ErrClosed
	}
	return held, q.err
}

// AwaitForgotten waits until every request to remove f's evidence is done.
func (s *Sentinel) AwaitForgotten(f netns.Flow) error {
	if s == nil {
		return nil
	}
	q := &s.forgets
	key := string(flowKey(f))
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.latestOf(key) > q.forgotten.Load() && !q.closed {
		q.room.Wait()
	}
	if q.closed {
		return netns.ErrClosed
	}
	return q.err
}

// Release removes everything the lab recorded about f and then closes sock,
// the probe's socket, in the background (see above). With no sentinel, or
// for a flow that left no evidence, closing at once is the caller's choice.
func (s *Sentinel) Release(f netns.Flow, sock io.Closer) {
	if s == nil {
		sock.Close()
		return
	}
	key := flowKey(f)
	elems := make([]setElem, 0, len(flowSets)+3)
	elems = append(elems, setElem{setOf(f, icmpSets[f.Proto]), icmpKey(f)}, setElem{setOf(f, "nat_dst"), key}, setElem{setOf(f, "nat_src"), key})
	for _, name := range flowSets {
		elems = append(elems, setElem{setOf(f, name), key})
	}
	if s.lab.Forwarding() {
		for _, name := range forwardSets {
			elems = append(elems, setElem{setOf(f, name), key})
		}
		elems = append(elems, setElem{setOf(f, "fwd_src"), key})
	}
	s.forgets.add(forgetRequest{key: string(key), elems: elems, sock: sock})
}

// ForgetErr is the first failure to remove a probe's evidence, after every
// flow released so far has been dealt with.
func (s *Sentinel) ForgetErr() error {
	if s == nil {
		return nil
	}
	q := &s.forgets
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
	q.queued++
	r.seq = q.queued
	q.flows.Lock()
	q.latest[r.key] = r.seq
	q.recent = append(q.recent, recentForget{r.key, r.seq})
	q.flows.Unlock()
	q.pending = append(q.pending, r)
	q.work.Signal()
	q.mu.Unlock()
}

// run is the forgetter: one transaction for what is queued, then its sockets.
func (q *forgetQueue) run(s *Sentinel) {
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
		q.forgotten.Store(batch[len(batch)-1].seq)
		q.prune()
		if err != nil {
			q.err = errors.Join(q.err, err)
			for _, r := range batch {
				q.held = append(q.held, r.sock)
			}
		}
		q.room.Broadcast()
	}
}

func (q *forgetQueue) latestOf(key string) uint64 {
	q.flows.RLock()
	defer q.flows.RUnlock()
	return q.latest[key]
}

// prune forgets the flows of requests done long enough ago (recentForgets).
func (q *forgetQueue) prune() {
	q.flows.Lock()
	defer q.flows.Unlock()
	n := 0
	for n < len(q.recent) && q.recent[n].seq+recentForgets < q.forgotten.Load() {
		r := q.recent[n]
		if q.latest[r.key] == r.seq {
			delete(q.latest, r.key)
		}
		n++
	}
	q.recent = q.recent[n:]
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
