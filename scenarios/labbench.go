package scenarios

import (
	"context"
	"fmt"
	"io"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/sentinel"
	"github.com/egresslab/egresslab/netns/serve"
	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/probe"
)

// LabBench is a policy's lab with its instruments: the namespaces and their
// processes (netns.Lab), the destinations served in them (serve.Server), the
// drop sentinel's evidence (sentinel.Sentinel) and the trace table installed
// with it.
// It is what probes run against (it implements probe.Lab); Close tears all
// of it down.
type LabBench struct {
	*netns.Lab
	*serve.Server
	*sentinel.Sentinel // nil until the lab is started (startPlanned)
	// traceTable went in with the sentinel, for the next StartTrace.
	traceTable *trace.Table
}

var _ probe.ClientLab = (*LabBench)(nil)

// newLabBench puts lab's instruments around it; they close with it.
func newLabBench(lab *netns.Lab) *LabBench {
	return &LabBench{Lab: lab, Server: serve.New(lab)}
}

// StartTrace starts following the probes' packets to dsts through the
// candidate's rules (see trace.Start).
func (b *LabBench) StartTrace(ctx context.Context, dsts []trace.Destination) (*trace.Trace, error) {
	tb := b.traceTable
	b.traceTable = nil // one use: the next trace installs its own
	return trace.Start(ctx, b.Lab, dsts, tb)
}

// Close tears the lab down, its instruments first.
func (b *LabBench) Close() error { return b.Lab.Close() }

// CheckHarness verifies that the lab's own machinery, which a real host does
// not have, survived the candidate: the drop sentinel, the listeners and the
// world beyond the uplink. Call it after the candidate loads and after
// probing; a *netns.TamperError means no verdict of this lab can be trusted.
// What the candidate did to the host itself (an interface down, IPv6 off,
// routes) is not tampering: probes meet it as a real host would.
func (b *LabBench) CheckHarness() error {
	if err := b.Sentinel.Check(); err != nil {
		return err
	}
	if what, lost := b.Server.Lost(); lost {
		return &netns.TamperError{Lab: b.Name(), What: "its listener " + what + " (closed under it)"}
	}
	return b.Lab.CheckWorld()
}

// Release removes everything the lab recorded about f (the sentinel's
// evidence, who answered it) and then closes sock, the probe's socket, in the
// background.
func (b *LabBench) Release(f netns.Flow, sock io.Closer) {
	b.Sentinel.Release(f, closeAfter(sock, func() { b.Server.Forget(f.Proto, f.Src.String(), f.Dst.String()) }))
}

// onThread is the bench with sockets made on a probing goroutine's own thread
// in the lab (netns.ProbeThread).
type onThread struct {
	*LabBench
	thread *netns.ProbeThread
}

func (t onThread) Socket(id netns.Identity, family, sotype int) (int, error) {
	return t.thread.Socket(id, family, sotype)
}

// prober is what a probing goroutine dials on: a thread of its own in the
// lab, or else the lab's shared socket workers (slower, the same verdicts).
// Call leave on the same goroutine when done.
func (b *LabBench) prober() (on probe.Lab, leave func()) {
	t, err := b.Lab.ProbeThread()
	if err != nil {
		return b, func() {}
	}
	return onThread{b, t}, t.Leave
}

// closeAfter is sock, closed after fn has run.
func closeAfter(sock io.Closer, fn func()) io.Closer { return afterCloser{sock, fn} }

type afterCloser struct {
	io.Closer
	before func()
}

func (c afterCloser) Close() error { c.before(); return c.Closer.Close() }

// evidenceErr is the lab's failure to remove its probes' evidence, unless
// the candidate removed or changed the sentinel itself: then that is the
// error (a TamperError naming what changed), not the netlink answer it
// caused ("no such file or directory" for a table that is gone).
func (b *LabBench) evidenceErr() error {
	err := b.ForgetErr()
	if err == nil {
		return nil
	}
	if herr := b.CheckHarness(); herr != nil {
		return fmt.Errorf("after probing: %w", herr)
	}
	return err
}
