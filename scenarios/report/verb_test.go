package report_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/policy"
	"github.com/egresslab/egresslab/scenarios/report"
)

var _ = Describe("Judge", func() {
	DescribeTable("every verb against every outcome",
		func(v policy.Verb, o probe.Outcome, met bool) {
			Expect(report.Judge(v, o) == report.Passed).To(Equal(met))
		},
		Entry(nil, policy.Allow, probe.Connected, true),
		Entry(nil, policy.Allow, probe.Refused, false),
		Entry(nil, policy.Allow, probe.Rejected, false),
		Entry(nil, policy.Allow, probe.Dropped, false),
		Entry(nil, policy.Allow, probe.Error, false),

		Entry(nil, policy.Deny, probe.Connected, false),
		Entry(nil, policy.Deny, probe.Refused, true),
		Entry(nil, policy.Deny, probe.Rejected, true),
		Entry(nil, policy.Deny, probe.Dropped, true),
		Entry(nil, policy.Deny, probe.Error, false),

		Entry(nil, policy.Drop, probe.Connected, false),
		Entry(nil, policy.Drop, probe.Refused, false),
		Entry(nil, policy.Drop, probe.Rejected, false),
		Entry(nil, policy.Drop, probe.Dropped, true),
		Entry(nil, policy.Drop, probe.Error, false),

		Entry(nil, policy.Reject, probe.Connected, false),
		Entry(nil, policy.Reject, probe.Refused, true),
		Entry(nil, policy.Reject, probe.Rejected, true),
		Entry(nil, policy.Reject, probe.Dropped, false),
		Entry(nil, policy.Reject, probe.Error, false),

		Entry("an unknown verb meets nothing", policy.Verb("permit"), probe.Connected, false),
		Entry("no verb meets nothing", policy.Verb(""), probe.Dropped, false),
	)
})
