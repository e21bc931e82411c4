package scenarios

import (
	"context"
	"time"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/probe"
)

// asClient is the bench as one of its clients probes it: sockets in the
// client's namespace, as its root (made on the probing goroutine's thread
// when it has one), and the forward path's evidence.
type asClient struct {
	*LabBench
	client string
	thread *netns.ProbeThread // nil: the lab's own way in
}

var _ probe.ForwardLab = asClient{}

func (c asClient) Socket(_ netns.Identity, family, sotype int) (int, error) {
	if c.thread != nil {
		return c.thread.ClientSocket(c.client, family, sotype)
	}
	return c.LabBench.Lab.ClientSocket(c.client, family, sotype)
}

// clientOf is the prober on as client name.
func (b *LabBench) clientOf(on probe.Lab, name string) asClient {
	c := asClient{LabBench: b, client: name}
	if t, ok := on.(onThread); ok {
		c.thread = t.thread
	}
	return c
}

// dial probes pr from the prober on: as its user, or from its client
// through the host.
func (b *LabBench) dial(ctx context.Context, on probe.Lab, pr Probe, opts RunOptions) (probe.Result, netns.Flow) {
	t := probe.Target{Addr: pr.Address, Port: pr.Port.Number, Proto: pr.Port.Proto}
	if pr.Client != nil {
		return probe.DialClient(ctx, b.clientLab(on, pr.Client), t, opts.Backstop)
	}
	return probe.DialFlow(ctx, on, Identity(pr.User), t, opts.Backstop)
}

// Dial probes one cell of the policy in this lab as ProbeAll does: a user's
// from the host as that user, a client's from the client's namespace as its
// root, through the host's forward path.
func (b *LabBench) Dial(ctx context.Context, pr Probe, backstop time.Duration) probe.Result {
	r, _ := b.dial(ctx, b, pr, RunOptions{Backstop: backstop})
	return r
}
