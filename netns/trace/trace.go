package trace

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns"
)

// Tracing names the rule that decided a probe. The lab's own table
// egresslab_trace, added after the candidate's rules, sets nftrace on the
// probes' packets only: requests to the matrix's destinations (a TCP SYN or a
// UDP datagram) and the answers from them (SYN-ACK, reset, UDP reply), on
// output and on prerouting. The kernel then reports, as `nft monitor trace`
// shows it, each base chain such a packet enters (with its headers) and each
// rule or policy that gave it a verdict (with the rule's handle). The lab
// reads those reports itself, on a netlink socket in its network namespace
// with a receive buffer large enough for a whole matrix: nft's own monitor,
// reading into a default buffer and looking each rule up as it prints it,
// lost reports on 1,000 probes. A probe's flow picks its own packets out.
// The iptables-legacy flavour's rules are not nf_tables rules and cannot be
// traced: the lab says so rather than guess.

const traceTable = "egresslab_trace"

// marker is where the lab sends a datagram that its trace table drops at
// once: when the monitor prints it, every trace before it has been read.
var markerDst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 127, 127, 127}), 7)

// Rule is what decided a probe, as the kernel's trace named it.
type Rule struct {
	Family   string `json:"family,omitempty"` // ip, ip6, inet
	Table    string `json:"table,omitempty"`
	Chain    string `json:"chain,omitempty"`
	Position int    `json:"position,omitempty"` // 1-based in its chain; 0 for the chain's policy
	Handle   int    `json:"handle,omitempty"`
	// Text is the rule as nft prints it, or iptables-save's line for a rule of
	// iptables-nft; "policy drop" when no rule matched.
	Text string `json:"text,omitempty"`
	// Verdict is the kernel's verdict on the packet as the trace reported it
	// (accept, drop, ...). A reject rule's is drop: the kernel reports the
	// drop that follows its answer. The report says what a reader calls it.
	Verdict string `json:"verdict,omitempty"`
	Policy  bool   `json:"policy,omitempty"` // the chain's policy decided: no rule matched
	Packet  string `json:"packet,omitempty"` // "request", "answer" or "neighbour-discovery": the packet it decided
	// Untraced says why no rule can be named; every other field is empty.
	Untraced string `json:"untraced,omitempty"`
}

func (r *Rule) String() string {
	if r.Untraced != "" {
		return "rule not traced: " + r.Untraced
	}
	where := fmt.Sprintf("%s %s %s", r.Family, r.Table, r.Chain)
	s := fmt.Sprintf("%s rule %d: %s", where, r.Position, r.Text)
	if r.Policy {
		s = fmt.Sprintf("%s policy %s (no rule matched)", where, r.Verdict)
	}
	switch r.Packet {
	case "answer":
		s += " (on the answer)"
	case "neighbour-discovery":
		s += " (on neighbour discovery)"
	}
	return s
}

// Trace follows the probes' packets through the candidate's rules.
type Trace struct {
	lab       *netns.Lab
	untraced  string // set when the lab cannot trace at all
	positions map[string]int
	listing   *ruleListing
	index     ruleIndex // from positions and listing, once Stop has read both
	sock      int       // the trace group's socket; -1 once closed
	stop      int       // an eventfd that ends the reader

	made map[ruleKey]*Rule // DecideAll's rules, one per verdict met

	backlog atomic.Int64 // bytes of reports the kernel holds for the reader
	paceMu  sync.Mutex
	paced   *sync.Cond // the backlog fell below traceLowWater

	mu      sync.Mutex
	events  map[traceKey]flowTrace // by the packet's direction of its flow
	met     []*traceEvent          // every verdict met, once: what events refer to
	ndDrops []*traceEvent          // the verdicts that dropped neighbour discovery
	markers map[uint16]chan struct{}
	lost    bool // the kernel dropped reports: the socket's buffer overflowed
	done    chan struct{}
}

// traceEvent is one verdict a traced packet met. A sweep meets a handful,
// each kept once and shared by its probes, and the chain's names once.
type traceEvent struct {
	where   *traceChain
	handle  int
	verdict string // accept, drop, jump, continue, return ...
	policy  bool
}

// traceChain names a chain: one copy per chain of the lab.
type traceChain struct{ family, table, chain string }

// Destination is an address and a range of ports that probes go to.
type Destination struct {
	Addr        netip.Addr
	First, Last uint16
}

// Table is the trace table for some destinations, queued in a netlink batch
// that another part of the lab's (the sentinel) shares: the caller flushes
// the batch once, then calls Installed.
type Table struct {
	dsts    []Destination
	rest    []traceElems // the elements one batch cannot hold
	listing *ruleListing
}

// Queue adds the trace table for dsts to c's batch; nothing is sent until the
// caller flushes c.
func Queue(c *nftables.Conn, dsts []Destination) (*Table, error) {
	rest, err := buildTrace(c, dsts)
	if err != nil {
		return nil, err
	}
	return &Table{dsts: dsts, rest: rest}, nil
}

// Installed finishes the table once the caller has flushed its batch (the
// elements that did not fit in it) and starts listing the candidate's rules
// in the lab: the next Start for the same destinations uses both.
func (tb *Table) Installed(ctx context.Context, l *netns.Lab, c *nftables.Conn) error {
	if err := addTraceElems(c, tb.rest); err != nil {
		return err
	}
	tb.rest = nil
	// After the batch, not beside it: the listing is wanted only once
	// probing ends, and on two cores it would slow the run that is. Not ctx
	// itself: the listing serves traces long after the caller that
	// installed the table (a Session's Open) has returned.
	tb.listing = listRules(context.WithoutCancel(ctx), l)
	return nil
}

// Start installs the lab's trace table for the given destinations and
// starts reading the kernel's trace reports; call it after the candidate's
// ruleset has loaded. With installed (a Table queued and Installed for the
// same destinations, or nil) it uses that table instead of adding one.
func Start(ctx context.Context, l *netns.Lab, dsts []Destination, installed *Table) (*Trace, error) {
	t := &Trace{lab: l, sock: -1, stop: -1, events: map[traceKey]flowTrace{}, markers: map[uint16]chan struct{}{}, done: make(chan struct{})}
	t.paced = sync.NewCond(&t.paceMu)
	if l.Backend() == "legacy" {
		t.untraced = "the iptables-legacy flavour cannot be traced (its rules are not nf_tables rules)"
		close(t.done)
		return t, nil
	}
	if installed != nil && installed.listing != nil && slices.Equal(installed.dsts, dsts) {
		t.listing = installed.listing
	} else {
		t.listing = listRules(ctx, l)
		c, err := nftables.New(nftables.WithNetNSFd(l.NetNSFD()))
		var tb *Table
		if err == nil {
			tb, err = Queue(c, dsts)
		}
		if err == nil {
			err = c.Flush()
		}
		if err == nil {
			err = addTraceElems(c, tb.rest)
		}
		if err != nil {
			return nil, fmt.Errorf("install the trace table in lab %s: %w", l.Name(), err)
		}
	}
	var err error
	if t.positions, err = rulePositions(l); err != nil {
		return nil, err
	}
	if t.sock, err = traceSocket(l); err != nil {
		return nil, err
	}
	if t.stop, err = unix.Eventfd(0, unix.EFD_CLOEXEC); err != nil {
		unix.Close(t.sock)
		t.sock = -1
		return nil, fmt.Errorf("trace of lab %s: %w", l.Name(), err)
	}
	go t.read()
	if err := t.sync(ctx); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// mergeDestinations sorts dsts and joins overlapping or adjacent port
// ranges of one address: an interval set refuses overlapping elements.
func mergeDestinations(dsts []Destination) []Destination {
	sorted := slices.Clone(dsts)
	slices.SortFunc(sorted, func(a, b Destination) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return int(a.First) - int(b.First)
	})
	var out []Destination
	for _, d := range sorted {
		if n := len(out); n > 0 && out[n-1].Addr == d.Addr && int(d.First) <= int(out[n-1].Last)+1 {
			out[n-1].Last = max(out[n-1].Last, d.Last)
			continue
		}
		out = append(out, d)
	}
	return out
}

// sync sends a marker and waits until the reader has taken its report: every
// report before it has been read too (a netlink socket keeps their order).
func (t *Trace) sync(ctx context.Context) error {
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	seen := make(chan struct{})
	if err := t.sendMarker(seen); err != nil {
		return err
	}
	select {
	case <-seen:
		return nil
	case <-t.done:
		return fmt.Errorf("the trace reader of lab %s stopped before its marker came", t.lab.Name())
	case <-ctx.Done():
		return ctx.Err()
	case <-timeout.C:
		return fmt.Errorf("the trace of lab %s lost its marker (reports dropped: %v)", t.lab.Name(), t.lostReports())
	}
}

func (t *Trace) lostReports() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lost
}

// sendMarker sends one marker datagram; seen is closed when it is printed.
func (t *Trace) sendMarker(seen chan struct{}) error {
	var port uint16
	err := t.lab.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return err
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return err
		}
		port = uint16(sa.(*unix.SockaddrInet4).Port)
		t.mu.Lock()
		t.markers[port] = seen
		t.mu.Unlock()

		// Our own trace chain drops it (EPERM): that is the point.
		_ = unix.Sendto(fd, []byte("egresslab trace marker"), 0, &unix.SockaddrInet4{Addr: markerDst.Addr().As4(), Port: int(markerDst.Port())})
		return nil
	})
	if err != nil {
		return fmt.Errorf("send a trace marker in lab %s: %w", t.lab.Name(), err)
	}
	return nil
}

// Stop reads every trace up to now and closes the socket. Decide works after.
func (t *Trace) Stop() error {
	if t.sock < 0 {
		return nil
	}
	// A trace that lost reports names no rule (it could name a wrong one);
	// the verdicts stand without it.
	err := t.sync(context.Background())
	t.Close()
	if t.lostReports() {
		t.untraced = "the kernel dropped some of the trace's reports (the lab's reader fell behind)"
	} else if err != nil {
		t.untraced = err.Error()
	}
	<-t.listing.done
	if t.listing.err != nil && t.untraced == "" {
		t.untraced = "the lab could not list its rules: " + t.listing.err.Error()
	}
	t.index = t.listing.index(t.positions)
	return nil
}

// Close ends the trace at once, unread reports and all (a run that stops
// early). Closing a closed trace does nothing.
func (t *Trace) Close() error {
	if t.sock < 0 {
		return nil
	}
	_, err := unix.Write(t.stop, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	<-t.done
	unix.Close(t.sock)
	unix.Close(t.stop)
	t.sock, t.stop = -1, -1
	return err
}
