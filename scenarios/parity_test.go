package scenarios_test

import (
	"github.com/egresslab/egresslab/internal/catalogue"
	"testing/fstest"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/report"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const parityPolicy = `version: 1
users:
  alice: {uid: 1000}
hosts:
  mx.example.test:
    addresses: [192.0.2.25, "2001:db8::25", "2001:db8::26"]
    ports: [25/tcp]
  v4only.example.test:
    addresses: [192.0.2.80]
    ports: [80/tcp]
  web.example.test:
    addresses: [192.0.2.81, "2001:db8::81"]
    ports: [443/tcp]
expect:
  - deny: {host: web.example.test, family: ipv6}
  - deny: {}
`

var _ = Describe("verify --parity", func() {
	var p *scenarios.Policy
	BeforeEach(func() {
		var err error
		p, err = scenarios.LoadFS(fstest.MapFS{"parity.yaml": {Data: []byte(parityPolicy)}}, "parity.yaml")
		Expect(err).NotTo(HaveOccurred())
	})
	// observe gives every probe its outcome by address.
	observe := func(by map[string]probe.Outcome) *scenarios.Report {
		rep := &scenarios.Report{Policy: p.Name}
		for _, pr := range p.Matrix() {
			o, ok := by[pr.Address.String()]
			if !ok {
				o = probe.Dropped
			}
			rep.Results = append(rep.Results, scenarios.Result{Probe: pr, Observed: o})
		}
		return rep
	}

	It("passes when each cell's families agree", func() {
		Expect(report.CheckParity(p, observe(nil))).To(BeEmpty())
	})

	It("fails a cell whose IPv6 outcome differs, though both meet the policy", func() {
		rep := observe(map[string]probe.Outcome{"2001:db8::26": probe.Refused})
		Expect(rep.Pass()).To(BeTrue())
		cells := report.CheckParity(p, rep)
		Expect(cells).To(HaveLen(1))
		Expect(cells[0].String()).To(Equal("alice -> mx.example.test 25/tcp: ipv4 dropped, ipv6 refused+dropped"))
		Expect(cells[0].Line).To(Equal(16))
		rep.Parity = cells
		Expect(rep.Pass()).To(BeFalse())
	})

	It("leaves alone a cell whose expectation names a family, and a host of one family", func() {
		rep := observe(map[string]probe.Outcome{"2001:db8::81": probe.Connected, "192.0.2.80": probe.Connected})
		Expect(report.CheckParity(p, rep)).To(BeEmpty())
	})

	Describe("on telnet-surprise, in labs", Label("lab"), func() {
		run := func(ctx SpecContext, variant string) []scenarios.ParityCell {
			s, err := catalogue.Find("telnet-surprise")
			Expect(err).NotTo(HaveOccurred())
			for _, v := range s.Variants {
				if v.Name == variant {
					rep, err := scenarios.Run(ctx, v.Policy, scenarios.RunOptions{})
					Expect(err).NotTo(HaveOccurred())
					return report.CheckParity(v.Policy, rep)
				}
			}
			Fail("no variant " + variant)
			return nil
		}
		It("fails the ipv4-only variant on every cell IPv6 lets through", func(ctx SpecContext) {
			var cells []string
			for _, c := range run(ctx, "ipv4-only") {
				cells = append(cells, c.String())
			}
			Expect(cells).To(ConsistOf(
				"www-data -> mx.example.test 25/tcp: ipv4 dropped, ipv6 connected",
				"www-data -> relay.localhost 25/tcp: ipv4 dropped, ipv6 connected",
				"postfix -> relay.localhost 25/tcp: ipv4 dropped, ipv6 connected",
			))
		})
		It("passes the fixed variant", func(ctx SpecContext) {
			Expect(run(ctx, "with-nd")).To(BeEmpty())
		})
	})
})
