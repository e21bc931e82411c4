package scenarios_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
)

var _ = Describe("Met", func() {
	DescribeTable("every verb against every outcome",
		func(v scenarios.Verb, o probe.Outcome, met bool) {
			Expect(scenarios.Met(v, o)).To(Equal(met))
		},
		Entry(nil, scenarios.Allow, probe.Connected, true),
		Entry(nil, scenarios.Allow, probe.Refused, false),
		Entry(nil, scenarios.Allow, probe.Rejected, false),
		Entry(nil, scenarios.Allow, probe.Dropped, false),
		Entry(nil, scenarios.Allow, probe.Error, false),

		Entry(nil, scenarios.Deny, probe.Connected, false),
		Entry(nil, scenarios.Deny, probe.Refused, true),
		Entry(nil, scenarios.Deny, probe.Rejected, true),
		Entry(nil, scenarios.Deny, probe.Dropped, true),
		Entry(nil, scenarios.Deny, probe.Error, false),

		Entry(nil, scenarios.Drop, probe.Connected, false),
		Entry(nil, scenarios.Drop, probe.Refused, false),
		Entry(nil, scenarios.Drop, probe.Rejected, false),
		Entry(nil, scenarios.Drop, probe.Dropped, true),
		Entry(nil, scenarios.Drop, probe.Error, false),

		Entry(nil, scenarios.Reject, probe.Connected, false),
		Entry(nil, scenarios.Reject, probe.Refused, true),
		Entry(nil, scenarios.Reject, probe.Rejected, true),
		Entry(nil, scenarios.Reject, probe.Dropped, false),
		Entry(nil, scenarios.Reject, probe.Error, false),

		Entry("an unknown verb meets nothing", scenarios.Verb("permit"), probe.Connected, false),
		Entry("no verb meets nothing", scenarios.Verb(""), probe.Dropped, false),
	)
})
