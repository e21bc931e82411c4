package suites_test

import (
	"bytes"
	"errors"
	"github.com/egresslab/egresslab/internal/catalogue"
	"os/exec"
	"strings"
	"time"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/report/words"
	"github.com/egresslab/egresslab/suites/matchers"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const (
	connected = probe.Connected
	dropped   = probe.Dropped
)

var _ = Describe("the telnet surprise", Label("catalogue", "nft"), func() {
	var s *catalogue.Scenario
	BeforeEach(func() {
		var err error
		s, err = catalogue.Find("telnet-surprise")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Variants).To(HaveLen(3))
	})

	It("(a) with the seed's rules in IPv4 only, www-data is dropped over A and connects over AAAA", func(ctx SpecContext) {
		v := s.Variants[0]
		rep, err := scenarios.Run(ctx, v.Policy, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rep).To(matchers.HaveOutcomes(
			matchers.Cell{User: "postfix", Host: "mx.example.test", Outcome: connected},
			// postfix -> relay over IPv4 too: -A OUTPUT -j DROP drops the relay's
			// SYN-ACK (loopback replies pass OUTPUT as well)
			matchers.Cell{Family: "ipv4", Outcome: dropped},
			matchers.Cell{Family: "ipv6", Outcome: connected}, // the bypass
		))
		Expect(v.Check(rep)).To(BeEmpty())
	})

	It("(b) with the same rules in both families, www-data is dropped on both, and postfix loses IPv6 too: its neighbour discovery is dropped", func(ctx SpecContext) {
		v := s.Variants[1]
		rep, err := scenarios.Run(ctx, v.Policy, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rep).To(matchers.HaveOutcomes(
			matchers.Cell{User: "postfix", Host: "mx.example.test", Family: "ipv4", Outcome: connected},
			matchers.Cell{Outcome: dropped},
		))
		nd := 0
		for _, r := range rep.Results {
			if r.User.Name == "postfix" && r.Host == "mx.example.test" && r.Family() == "ipv6" {
				Expect(r.Evidence).To(Equal(probe.Evidence{Kind: probe.NeighbourDiscovery, Where: probe.Output, Packet: probe.Solicitation, Neighbour: "2001:db8:1::1"}))
				nd++
			}
		}
		Expect(nd).To(Equal(1))
		Expect(rep.Pass()).To(BeFalse())
		Expect(v.Check(rep)).To(BeEmpty())

		By("a real client as postfix, in the same lab, gets no further than the probe: the gateway stays unresolved")
		lab, err := scenarios.StartLab(ctx, v.Policy)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		u, _ := v.Policy.User("postfix")
		dial := lab.CommandAs(ctx, scenarios.Identity(u), "timeout", "2", "bash", "-c", "exec 3<>/dev/tcp/2001:db8::25/25")
		Expect(dial.Run()).To(MatchError(ContainSubstring("exit status 124")), "bash /dev/tcp as postfix must hang, as a dropped SYN does")
		neigh, err := lab.Command(ctx, "ip", "-6", "neigh", "show", "2001:db8:1::1").CombinedOutput()
		Expect(err).NotTo(HaveOccurred())
		Expect(string(neigh)).To(MatchRegexp(`INCOMPLETE|FAILED`))
	})

	It("(c) with ICMPv6 accepted before the DROP, every expectation holds on both families", func(ctx SpecContext) {
		v := s.Variants[2]
		rep, err := scenarios.Run(ctx, v.Policy, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rep).To(matchers.HaveOutcomes(
			matchers.Cell{User: "postfix", Host: "mx.example.test", Outcome: connected},
			matchers.Cell{Outcome: dropped},
		))
		Expect(rep.Pass()).To(BeTrue())
		Expect(v.Check(rep)).To(BeEmpty())
	})

	It("checks a variant's documented cells both ways: an undocumented failure and a documented cell that passes are both problems", func(ctx SpecContext) {
		rep, err := scenarios.Run(ctx, s.Variants[0].Policy, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())
		missing := s.Variants[0]
		missing.Bypass = missing.Bypass[1:]
		Expect(missing.Check(rep)).To(ConsistOf(ContainSubstring("expected deny, observed connected")))
		extra := s.Variants[0]
		extra.Broken = []catalogue.Cell{{User: "postfix", Host: "mx.example.test", Family: "ipv4"}}
		Expect(extra.Check(rep)).To(ConsistOf(ContainSubstring("documented as failing its expectation")))
	})

	It("decides an egress drop from the sentinel, without waiting for a timeout", func(ctx SpecContext) {
		rep, err := scenarios.Run(ctx, s.Variants[0].Policy, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())
		seen := 0
		for _, r := range rep.Results {
			if r.User.Name == "www-data" && r.Family() == "ipv4" {
				Expect(r.Observed).To(Equal(dropped))
				Expect(r.Evidence).To(Equal(probe.Evidence{Kind: probe.Egress, Where: probe.Output}))
				seen++
			}
		}
		Expect(seen).To(Equal(2))
	})

	It("names where a return-path drop happened, from the sentinel's evidence, without waiting out the backstop", func(ctx SpecContext) {
		rep, err := scenarios.Run(ctx, s.Variants[1].Policy, scenarios.RunOptions{Backstop: time.Hour})
		Expect(err).NotTo(HaveOccurred())
		seen := 0
		for _, r := range rep.Results {
			if r.User.Name == "postfix" && r.Host == "relay.localhost" {
				Expect(r.Observed).To(Equal(dropped))
				Expect(r.Evidence).To(Equal(probe.Evidence{Kind: probe.ReturnPath, Where: probe.Output, Packet: probe.Answer}))
				seen++
			}
		}
		Expect(seen).To(Equal(2))
	}, SpecTimeout(time.Minute))

	It("shows the client's view: telnet tries the AAAA address first and gets through", func(ctx SpecContext) {
		v := s.Variants[0]
		lab, err := scenarios.StartLab(ctx, v.Policy)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		u, ok := v.Policy.User("www-data")
		Expect(ok).To(BeTrue())
		view, err := probe.Client(ctx, lab, scenarios.Identity(u), "mx.example.test", 25, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(view.Attempts).To(HaveLen(1))
		Expect(view.Attempts[0].Addr.String()).To(Equal("2001:db8::25"))
		Expect(view.Attempts[0].Result.Outcome).To(Equal(connected))
		var out bytes.Buffer
		words.WriteTelnet(&out, view)
		Expect(out.String()).To(HavePrefix("Trying 2001:db8::25...\nConnected to mx.example.test.\n"))
		Expect(out.String()).To(ContainSubstring("220 mx.example.test ESMTP"))

		By("resolving a mail domain through its MX, as a mail client does")
		host, addrs, err := probe.Resolve(ctx, lab, scenarios.Identity(u), "example.test", 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(host).To(Equal("mx.example.test"))
		Expect(addrs).To(HaveLen(2))
		Expect(addrs[0].String()).To(Equal("2001:db8::25"))
	})

	It("lets a real telnet, run as www-data inside the lab, connect over IPv6 with the IPv4-only rules", Label("real-client"), func(ctx SpecContext) {
		lab, err := scenarios.StartLab(ctx, s.Variants[0].Policy)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		u, _ := s.Variants[0].Policy.User("www-data")
		// telnet reads QUIT from stdin; its resolver uses the lab's DNS
		// through the lab's own rules (127.0.0.53 is dropped, ::1 is not).
		cmd := lab.CommandAs(ctx, scenarios.Identity(u), "telnet", "mx.example.test", "25")
		cmd.Stdin = strings.NewReader("QUIT\r\n")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			Fail("telnet did not run: " + err.Error())
		}
		Expect(string(out)).To(ContainSubstring("Trying 2001:db8::25..."))
		Expect(string(out)).To(ContainSubstring("Connected to mx.example.test."))
	})
})
