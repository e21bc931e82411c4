package scenarios_test

import (
	"errors"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("a closed session", func() {
	It("answers the one ErrClosed from Probe, ProbeAll and Command, and a command made before Close cannot start after it", func(ctx SpecContext) {
		Expect(errors.Is(scenarios.ErrClosed, netns.ErrClosed)).To(BeTrue())
		p, err := scenarios.Load("../testdata/rule/nft.yaml")
		Expect(err).NotTo(HaveOccurred())
		s, err := scenarios.Open(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		cmd, err := s.Command(ctx, "root", "true")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Close()).To(Succeed())
		// Its pid would name no lab now (or another process's).
		Expect(cmd.Start()).To(MatchError(ContainSubstring("context canceled")))
		_, err = s.Command(ctx, "root", "true")
		Expect(err).To(MatchError(netns.ErrClosed))
		_, err = s.ProbeAll(ctx)
		Expect(err).To(MatchError(netns.ErrClosed))
		h := p.Hosts[0]
		_, err = s.Probe(ctx, p.Users[0].Name, h.Name, h.Ports[0].String())
		Expect(err).To(MatchError(netns.ErrClosed))
	})
})
