package report_test

import (
	"bytes"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/report"
)

// sweepReport is a sweep of every TCP port of one host's two addresses, as
// if the ruleset let 25 and 80 through, reset the rest of 1-1023 and dropped
// everything else; on IPv6, port 80 leaks nothing but 8080 connects.
func sweepReport() *report.Report {
	GinkgoHelper()
	if sweepResults == nil {
		sweepResults = sweepRun()
	}
	return &report.Report{Policy: "sweep", Results: slices.Clone(sweepResults)}
}

// sweepResults is sweepReport's, made once: 262,140 results take a while.
var sweepResults []report.Result

func sweepRun() []report.Result {
	GinkgoHelper()
	p := load(`version: 1
users: {www-data: {uid: 33}, postfix: {uid: 107}}
hosts:
  sweep.example.test: {addresses: [198.51.100.7, "2001:db8:5::7"], ports: [1-65535/tcp]}
expect:
  - allow: {port: [25, 80]}
  - reject: {port: 1-1023}
  - drop: {}
`)
	results := make([]report.Result, 0, p.Size())
	for pr := range p.Probes() {
		n, v6 := pr.Port.Number, pr.Family() == "ipv6"
		o := probe.Dropped
		switch {
		case n == 25, n == 80 && !v6, n == 8080 && v6:
			o = probe.Connected
		case n < 1024:
			o = probe.Refused
		}
		results = append(results, report.Result{Probe: pr, Observed: o})
	}
	return results
}

var _ = Describe("The truth table", func() {
	It("folds neighbouring ports with the same cells into one column", func() {
		var b bytes.Buffer
		Expect(sweepReport().WriteTable(&b, false)).To(Succeed())
		matchGolden("sweep.table", b.Bytes())
		Expect(b.String()).To(ContainSubstring("1-24/tcp  25/tcp  26-79/tcp  80/tcp  81-1023/tcp  1024-65535/tcp"))
		Expect(b.String()).To(ContainSubstring("1-24/tcp  25/tcp  26-79/tcp  80/tcp  81-1023/tcp  1024-8079/tcp  8080/tcp  8081-65535/tcp"))
	})

	It("keeps columns apart when any user's cell differs", func() {
		r := sweepReport()
		for i := range r.Results {
			if res := &r.Results[i]; res.User.Name == "postfix" && res.Port.Number == 30000 && res.Family() == "ipv4" {
				res.Observed = probe.Connected
			}
		}
		var b bytes.Buffer
		Expect(r.WriteTable(&b, false)).To(Succeed())
		Expect(b.String()).To(ContainSubstring("1024-29999/tcp  30000/tcp  30001-65535/tcp"))
		Expect(b.String()).To(MatchRegexp(`postfix +(\S+ +){6}x\.! +xX`))
	})

	It("wraps into blocks that fit the width, each with the users, every column once", func() {
		r := sweepReport()
		var wide, narrow bytes.Buffer
		Expect(r.WriteTable(&wide, false)).To(Succeed())
		r.Width = 80
		Expect(r.WriteTable(&narrow, false)).To(Succeed())
		table := func(s string) []string { // the table's lines, before the legend
			head, _, _ := strings.Cut(s, "\ncells:")
			return strings.Split(strings.TrimSpace(head), "\n")[1:]
		}
		longest := 0
		for _, line := range table(wide.String()) {
			longest = max(longest, len([]rune(line)))
		}
		Expect(longest).To(BeNumerically(">", 80), "the test needs a table wider than the limit")
		users, ports := 0, []string{}
		for _, line := range table(narrow.String()) {
			Expect(len([]rune(line))).To(BeNumerically("<=", 80), "line %q", line)
			if strings.HasPrefix(line, "www-data ") {
				users++
			}
			if strings.Contains(line, "/tcp") {
				ports = append(ports, strings.Fields(line)...)
			}
		}
		Expect(users).To(BeNumerically(">", 1), "more than one block")
		Expect(ports).To(HaveLen(14))
		Expect(ports).To(ContainElements("1-24/tcp", "1024-65535/tcp", "8081-65535/tcp"))
		matchGolden("sweep-80.table", narrow.Bytes())
	})

	It("marks a cell no probe filled", func() {
		r := sweepReport()
		r.Results = r.Results[:len(r.Results)-1]
		var b bytes.Buffer
		Expect(r.WriteTable(&b, false)).To(Succeed())
		Expect(b.String()).To(ContainSubstring("- not probed"))
		Expect(b.String()).To(ContainSubstring("65535/tcp"))
	})
})
