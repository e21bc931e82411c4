package report_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/scenarios/report"
	"github.com/egresslab/egresslab/scenarios/report/github"
)

// workflowCommand is one line as GitHub's runner reads it
// (docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands):
// ::name key=value,key=value::message, properties and message unescaped as
// actions/toolkit's command.ts escapes them.
type workflowCommand struct {
	name    string
	props   map[string]string
	message string
}

var commandLine = regexp.MustCompile(`^::([a-z-]+)(?: ([^:]*))?::(.*)$`)

func parseCommand(line string) (workflowCommand, bool) {
	m := commandLine.FindStringSubmatch(line)
	if m == nil {
		return workflowCommand{}, false
	}
	unescape := strings.NewReplacer("%0D", "\r", "%0A", "\n", "%3A", ":", "%2C", ",", "%25", "%")
	c := workflowCommand{name: m[1], props: map[string]string{}, message: unescape.Replace(m[3])}
	if m[2] != "" {
		for _, kv := range strings.Split(m[2], ",") {
			k, v, ok := strings.Cut(kv, "=")
			Expect(ok).To(BeTrue(), "property %q of %q", kv, line)
			c.props[k] = unescape.Replace(v)
		}
	}
	return c, true
}

var _ = Describe("GitHub Actions output (--format github)", func() {
	It("escapes as GitHub documents: %25 %0D %0A in the message, and %3A %2C in properties too", func() {
		a := github.Annotation{Level: "error", File: "ci/a,b:c.v6", Line: 7, Title: "bypass: x, y", Message: "50% \r\n::warning::injected"}
		Expect(a.String()).To(Equal("::error file=ci/a%2Cb%3Ac.v6,line=7,title=bypass%3A x%2C y::50%25 %0D%0A::warning::injected"))
		c, ok := parseCommand(a.String())
		Expect(ok).To(BeTrue())
		Expect(c).To(Equal(workflowCommand{name: "error", message: a.Message,
			props: map[string]string{"file": a.File, "line": "7", "title": a.Title}}))
	})

	It("points each failure at the ruleset line that decided it, else at the policy's expectation", func() {
		r := goldenReport()
		r.File = "ci/mail.yaml"
		r.Results[8].Decider = &trace.Rule{Family: "ip6", Table: "filter", Chain: "OUTPUT", Position: 2, Text: "-A OUTPUT -p tcp -m tcp --dport 587 -j DROP", Verdict: "drop"}
		r.Results[8].DeciderAt = &report.RuleSource{File: "ci/rules.v6", Line: 6}
		var b bytes.Buffer
		Expect(github.Write(&b, r)).To(Succeed())

		var commands []workflowCommand
		stopped := ""
		for _, ln := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
			if stopped != "" { // the table: nothing in it is a command until the token ends it
				if ln == "::"+stopped+"::" {
					stopped = ""
				}
				continue
			}
			c, ok := parseCommand(ln)
			Expect(ok).To(BeTrue(), "every line outside ::stop-commands:: is a workflow command: %q", ln)
			if c.name == "stop-commands" {
				stopped = c.message
				Expect(stopped).To(MatchRegexp(`^egresslab-[0-9a-f]{32}$`))
				continue
			}
			commands = append(commands, c)
		}
		Expect(commands).To(HaveLen(3)) // the bypass, the probe error, the summary
		bypass := commands[0]
		Expect(bypass.name).To(Equal("error"))
		Expect(bypass.props).To(Equal(map[string]string{"file": "ci/rules.v6", "line": "6",
			"title": "egresslab bypass: www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6)"}))
		Expect(bypass.message).To(HavePrefix("expected deny, observed connected\n"))
		Expect(bypass.message).To(ContainSubstring("\nreproduce: egresslab exec -f ci/mail.yaml --user www-data -- nc -vz -n -w 3 2001:db8::25 25"))
		Expect(commands[1].props).To(HaveKeyWithValue("file", "ci/mail.yaml"))
		Expect(commands[1].props).To(HaveKeyWithValue("line", "32"))
		Expect(commands[2].props).To(HaveKeyWithValue("title", "egresslab mail-egress"))
		Expect(commands[2].message).To(Equal("12 probes: 10 passed, 2 failed, 1 error"))
	})

	It("writes a Markdown summary for $GITHUB_STEP_SUMMARY, its cells safe from markup", func() {
		r := goldenReport()
		r.Results[8].DeciderAt = &report.RuleSource{File: "rules.v6", Line: 6}
		r.Results[8].Detail = "a | b"
		var b bytes.Buffer
		Expect(github.WriteSummary(&b, r)).To(Succeed())
		Expect(b.String()).To(HavePrefix("## egresslab: mail-egress\n\n❌ the ruleset does not do what the policy says: 12 probes, 10 passed, 2 failed, 1 error\n"))
		Expect(b.String()).To(ContainSubstring("| bypass | www-data -&gt; mx.example.test \\[2001:db8::25\\]:25/tcp (ipv6) | expected deny, observed connected |  | rules.v6:6 |\n"))
		Expect(b.String()).To(ContainSubstring("```text\npolicy mail-egress\n"))
	})
})

var _ = Describe("a run that ended without a report", func() {
	It("is one JSON document with the report's keys, pass false and the error", func() {
		var b bytes.Buffer
		Expect(report.WriteJSONError(&b, "mail-egress", report.RunError{Status: 3, Message: "the lab needs nft: install nftables"})).To(Succeed())
		Expect(keys(b.Bytes())).To(Equal([]string{"policy", "pass", "summary", "probes", "error"}))
		Expect(b.String()).To(MatchJSON(`{"policy": "mail-egress", "pass": false,
			"summary": {"probes": 0, "passed": 0, "failed": 0, "errors": 0}, "probes": [],
			"error": {"status": 3, "message": "the lab needs nft: install nftables"}}`))
		Expect(json.Valid(b.Bytes())).To(BeTrue())
	})
})
