package netns

import "sync"

// Removing a flow's evidence is an nftables transaction, and transactions
// take the kernel's commit lock one at a time: at one transaction per probe
// they were 40% of a 131,070-probe sweep's CPU and its ceiling. Probes that
// finish while a transaction is under way queue their flows, and the next
// transaction takes them all ("group commit"). Each caller still returns only
// once its own flow is gone, before its socket closes, as Forget promises.

// maxForgetBatch bounds one transaction: 32 flows of 9 sets is about 30 KB
// of netlink messages.
const maxForgetBatch = 32

type forgetRequest struct {
	elems []setElem
	done  chan error
}

// setElem is one element of one of the sentinel's sets.
type setElem struct {
	set string
	key []byte
}

type forgetQueue struct {
	mu       sync.Mutex
	pending  []forgetRequest
	flushing bool // a caller is sending transactions for the queue
}

// remove takes each element out of its set. The caller that finds no
// transaction under way sends one for everything queued, and goes on while
// more queues.
func (s *sentinel) remove(elems []setElem) error {
	q := &s.forgets
	done := make(chan error, 1)
	q.mu.Lock()
	q.pending = append(q.pending, forgetRequest{elems: elems, done: done})
	if q.flushing {
		q.mu.Unlock()
		return <-done
	}
	q.flushing = true
	for len(q.pending) > 0 {
		n := min(len(q.pending), maxForgetBatch)
		batch := q.pending[:n:n]
		q.pending = q.pending[n:]
		q.mu.Unlock()
		err := s.removeBatch(batch)
		for _, r := range batch {
			r.done <- err
		}
		q.mu.Lock()
	}
	q.flushing = false
	q.mu.Unlock()
	return <-done
}
