package suites_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The Go API keeps time honestly (issue 16).
var _ = Describe("the Go API under a deadline", Label("determinism"), Ordered, func() {
	var s *scenarios.Session
	BeforeAll(func(ctx SpecContext) {
		p, err := scenarios.Load(filepath.Join(determinismDir, "reject-burst.yaml"))
		Expect(err).NotTo(HaveOccurred())
		s, err = scenarios.Open(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(s.Close)
	})

	// The clock starts a sweep here, so the spec asserts no progress by
	// then: on a loaded machine the lab may not have decided a probe in
	// 20 ms. Every cell is either decided as the kernel says or never ran.
	It("returns a sweep cancelled after 20 ms within 100 ms, with ctx.Err() and the results it has", func(ctx SpecContext) {
		sweep, cancel := context.WithCancel(ctx)
		time.AfterFunc(20*time.Millisecond, cancel)
		start := time.Now()
		rep, err := s.ProbeAll(sweep)
		Expect(time.Since(start)).To(BeNumerically("<", 120*time.Millisecond))
		Expect(err).To(MatchError(context.Canceled))
		Expect(rep).NotTo(BeNil())
		done := 0
		for _, r := range rep.Results {
			if r.Duration == 0 {
				continue // never ran
			}
			if r.Observed == probe.Rejected {
				done++
				continue
			}
			// a probe the cancellation interrupted is an error, never blocked
			Expect(r.Observed).To(Equal(probe.Error), "%s: %s", r.Probe, r.Detail)
		}
		Expect(done).To(BeNumerically("<", 2000))
	})

	// Cancelled on a real signal (the tenth decided probe), the results it
	// has are kept, and it returns at once.
	It("keeps the results a sweep cancelled mid-way has, and returns within 100 ms of the cancel", func(ctx SpecContext) {
		p, err := scenarios.Load(filepath.Join(determinismDir, "reject-burst.yaml"))
		Expect(err).NotTo(HaveOccurred())
		lab, err := scenarios.StartLab(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		sweep, cancel := context.WithCancel(ctx)
		defer cancel()
		var cancelled atomic.Int64
		rep, err := scenarios.ProbeAll(sweep, lab, p, scenarios.RunOptions{Progress: func(done, _ int) {
			if done == 10 {
				cancelled.Store(time.Now().UnixNano())
				cancel()
			}
		}})
		returned := time.Now()
		Expect(err).To(MatchError(context.Canceled))
		Expect(cancelled.Load()).NotTo(BeZero())
		Expect(returned.Sub(time.Unix(0, cancelled.Load()))).To(BeNumerically("<", 100*time.Millisecond))
		rejected := 0
		for _, r := range rep.Results {
			if r.Observed == probe.Rejected {
				rejected++
			}
		}
		Expect(rejected).To(BeNumerically(">=", 10))
		Expect(rejected).To(BeNumerically("<", 2000))
	})

	It("probes after the context it was opened with has ended, with evidence as ProbeAll gives", func(ctx SpecContext) {
		results, err := s.Probe(ctx, "alice", "burst.example.test", "20000/tcp")
		Expect(err).NotTo(HaveOccurred())
		Expect(results).To(HaveLen(2))
		for _, r := range results {
			Expect(r.Observed).To(Equal(probe.Rejected), r.Detail)
			Expect(r.Evidence.Kind).To(Equal(probe.ICMPError), r.Detail)
		}
	})
})

var _ = Describe("Session.Probe", Label("determinism"), func() {
	It("names the deciding rule as ProbeAll does, on a port the policy does not serve too", func(ctx SpecContext) {
		p, err := scenarios.Load(filepath.Join(determinismDir, "port-reuse.yaml"))
		Expect(err).NotTo(HaveOccurred())
		s, err := scenarios.Open(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(s.Close)
		for _, port := range []string{"80/tcp", "8080/tcp"} {
			results, err := s.Probe(ctx, "refused", "www.example.test", port)
			Expect(err).NotTo(HaveOccurred())
			Expect(results).To(HaveLen(2))
			for _, r := range results {
				Expect(r.Observed).To(Equal(probe.Refused), r.Detail)
				Expect(r.Decider).NotTo(BeNil(), "%s", r.Probe)
				Expect(r.Decider.Untraced).To(BeEmpty())
				Expect(r.Decider.Text).To(Equal("-A OUTPUT -p tcp -m owner --uid-owner 1000 -j REJECT --reject-with tcp-reset"), "%s", r.Probe)
			}
		}
	})
})
