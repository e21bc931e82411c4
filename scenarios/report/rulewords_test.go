package report_test

import (
	"bytes"
	"encoding/json"
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/policy"
	"github.com/egresslab/egresslab/scenarios/report"
	"github.com/egresslab/egresslab/scenarios/report/words"
)

var _ = Describe("the deciding rule in the report's words", func() {
	DescribeTable("its verdict, from the kernel's traced verdict and the probe's outcome",
		func(traced string, observed probe.Outcome, want string) {
			Expect(words.RuleVerdict(traced, observed)).To(Equal(want))
		},
		Entry("a reject rule answered with a reset or port unreachable", "drop", probe.Refused, "reject"),
		Entry("a reject rule answered with another unreachable", "drop", probe.Rejected, "reject"),
		Entry("a drop rule: nothing answered", "drop", probe.Dropped, "drop"),
		Entry("a drop the probe could not see", "drop", probe.Error, "drop"),
		Entry("an accept, whatever the world answered", "accept", probe.Refused, "accept"),
		Entry("a merged shard's verdict stays as written", "reject", probe.Refused, "reject"),
	)

	// One REJECT rule decides both probes: the trace shares one *trace.Rule
	// (the kernel's drop), and each probe's JSON says what it saw.
	It("writes each probe's rule verdict into the JSON, leaving the shared traced rule as the kernel reported it", func() {
		rule := &trace.Rule{Family: "inet", Table: "filter", Chain: "output", Position: 4, Handle: 9,
			Text: "ip daddr 192.0.2.25 tcp dport 25 reject", Verdict: "drop", Packet: "request"}
		u := policy.User{Name: "www-data", UID: 33, GID: 33}
		cell := func(outcome probe.Outcome) report.Result {
			return report.Result{
				Probe:    policy.Probe{User: u, Host: "mx.example.test", Address: netip.MustParseAddr("192.0.2.25"), Port: policy.Port{Number: 25, Proto: "tcp"}, Expect: policy.Reject, Line: 3},
				Observed: outcome, Decider: rule,
			}
		}
		r := &report.Report{Policy: "p", Results: []report.Result{cell(probe.Refused), cell(probe.Dropped)}}
		var b bytes.Buffer
		Expect(r.WriteJSON(&b)).To(Succeed())
		var doc struct {
			Probes []struct {
				Rule map[string]any `json:"rule"`
			} `json:"probes"`
		}
		Expect(json.Unmarshal(b.Bytes(), &doc)).To(Succeed())
		Expect(doc.Probes).To(HaveLen(2))
		Expect(doc.Probes[0].Rule).To(HaveKeyWithValue("verdict", "reject"))
		Expect(doc.Probes[1].Rule).To(HaveKeyWithValue("verdict", "drop"))
		Expect(doc.Probes[0].Rule).To(HaveKeyWithValue("note", "an IPv4-only match in an inet table: IPv6 packets pass this rule by"))
		Expect(rule.Verdict).To(Equal("drop"), "the trace's rule is shared: the report must not write into it")
		Expect(words.DecidedBy(rule)).To(Equal("inet filter output rule 4: ip daddr 192.0.2.25 tcp dport 25 reject — an IPv4-only match in an inet table: IPv6 packets pass this rule by"))
	})
})
