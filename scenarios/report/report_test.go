package report_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/policy"
	"github.com/egresslab/egresslab/scenarios/report"
)

// go test ./scenarios/ -update (or UPDATE_GOLDEN=1) rewrites the golden files.
var update = flag.Bool("update", false, "rewrite testdata/golden")

const golden = "../../testdata/golden"

// goldenReport is the seed story: IPv6 lets www-data reach the MX on port
// 25, and one probe could not run.
func goldenReport() *report.Report {
	GinkgoHelper()
	p, err := policy.Load(filepath.Join(golden, "mail.yaml"))
	Expect(err).NotTo(HaveOccurred())
	handshake := probe.Evidence{Kind: probe.Handshake}
	reset := probe.Evidence{Kind: probe.Reset}
	observed := []struct {
		outcome  probe.Outcome
		evidence probe.Evidence
		detail   string
	}{
		{probe.Connected, handshake, "220 mx.example.test ESMTP"},
		{probe.Connected, handshake, "220 mx.example.test ESMTP"},
		{probe.Connected, handshake, "220 mx.example.test ESMTP"},
		{probe.Connected, handshake, "220 mx.example.test ESMTP"},
		{probe.Connected, handshake, "220 relay.localhost ESMTP"},
		{probe.Connected, handshake, "220 relay.localhost ESMTP"},
		{probe.Refused, reset, "tcp reset from 192.0.2.25"},
		{probe.Refused, reset, "tcp reset from 192.0.2.25"},
		{probe.Connected, handshake, "220 mx.example.test ESMTP <postmaster@example.test>\r\n"},
		{probe.Dropped, probe.Evidence{Kind: probe.Egress, Where: probe.Output}, "syn dropped in the lab, nothing answered"},
		{probe.Refused, reset, "tcp reset from 127.0.0.1"},
		{probe.Error, probe.Evidence{Kind: probe.Failure}, "socket as uid 33: operation not permitted"},
	}
	matrix := p.Matrix()
	Expect(matrix).To(HaveLen(len(observed)))
	r := &report.Report{Policy: p.Name}
	for i, pr := range matrix {
		r.Results = append(r.Results, report.Result{Probe: pr, Observed: observed[i].outcome, Evidence: observed[i].evidence, Detail: observed[i].detail})
	}
	return r
}

// matchGolden compares output with a golden file, or rewrites it.
func matchGolden(name string, got []byte) {
	GinkgoHelper()
	file := filepath.Join(golden, name)
	if *update || os.Getenv("UPDATE_GOLDEN") == "1" {
		// A golden test never compares a file with what it just wrote.
		Expect(os.WriteFile(file, got, 0o644)).To(Succeed())
		Fail(fmt.Sprintf("rewrote %s: check the diff and run again without -update", file))
	}
	want, err := os.ReadFile(file)
	Expect(err).NotTo(HaveOccurred(), "missing golden file: run go test ./scenarios/ -update")
	Expect(string(got)).To(Equal(string(want)), "output differs from %s (go test ./scenarios/ -update rewrites it)", file)
}

var _ = Describe("Report", func() {
	var r *report.Report
	BeforeEach(func() { r = goldenReport() })

	It("counts an error as a failure too", func() {
		Expect(r.Summary()).To(Equal(report.Summary{Probes: 12, Passed: 10, Failed: 2, Errors: 1}))
		Expect(r.Pass()).To(BeFalse())
		Expect(r.Results[8].Pass()).To(BeFalse())
		Expect(r.Results[9].Pass()).To(BeTrue())
	})

	It("passes when every expectation held, and when there is nothing to check", func() {
		r.Results = r.Results[:6]
		Expect(r.Pass()).To(BeTrue())
		Expect(r.Summary()).To(Equal(report.Summary{Probes: 6, Passed: 6}))
		Expect((&report.Report{}).Pass()).To(BeTrue())
	})

	It("renders the truth table", func() {
		var b bytes.Buffer
		Expect(r.WriteTable(&b, false)).To(Succeed())
		Expect(b.String()).NotTo(ContainSubstring("\x1b"))
		matchGolden("mail.table", b.Bytes())
	})

	It("colours the table only when asked", func() {
		var plain, colored bytes.Buffer
		Expect(r.WriteTable(&plain, false)).To(Succeed())
		Expect(r.WriteTable(&colored, true)).To(Succeed())
		Expect(colored.String()).To(ContainSubstring("\x1b[1;31md.!\x1b[0m"))
		Expect(colored.String()).To(ContainSubstring("\x1b[32mdX\x1b[0m"))
		stripped := strings.NewReplacer("\x1b[1;31m", "", "\x1b[32m", "", "\x1b[0m", "").Replace(colored.String())
		Expect(stripped).To(Equal(plain.String()))
	})

	It("writes SPEC.md's JSON document", func() {
		var b bytes.Buffer
		Expect(r.WriteJSON(&b)).To(Succeed())
		matchGolden("mail.json", b.Bytes())

		Expect(keys(b.Bytes())).To(Equal([]string{"policy", "pass", "summary", "probes"}))
		var doc struct {
			Summary json.RawMessage
			Probes  []json.RawMessage
		}
		Expect(json.Unmarshal(b.Bytes(), &doc)).To(Succeed())
		Expect(keys(doc.Summary)).To(Equal([]string{"probes", "passed", "failed", "errors"}))
		Expect(doc.Probes).To(HaveLen(12))
		for i, pr := range doc.Probes {
			want := []string{"user", "uid", "host", "address", "family", "port", "proto",
				"expected", "observed", "pass", "line", "detail", "evidence", "rule"}
			if !r.Results[i].Pass() { // a failed probe says which kind of failure
				want = slices.Insert(want, 10, "failure")
			}
			Expect(keys(pr)).To(Equal(want))
		}
		Expect(string(doc.Probes[8])).To(MatchJSON(`{"user": "www-data", "uid": 33, "host": "mx.example.test",
			"address": "2001:db8::25", "family": "ipv6", "port": 25, "proto": "tcp",
			"expected": "deny", "observed": "connected", "pass": false, "failure": "bypass", "line": 32,
			"detail": "220 mx.example.test ESMTP <postmaster@example.test>\r\n",
			"evidence": {"kind": "handshake"}, "rule": null}`))
	})

	It("writes an empty list of probes, not null", func() {
		var b bytes.Buffer
		Expect((&report.Report{Policy: "empty"}).WriteJSON(&b)).To(Succeed())
		Expect(b.String()).To(ContainSubstring(`"probes": []`))
	})

	It("writes one JUnit test case per probe", func() {
		var b bytes.Buffer
		Expect(r.WriteJUnit(&b)).To(Succeed())
		matchGolden("mail.junit.xml", b.Bytes())

		var doc struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Errors   int `xml:"errors,attr"`
			Suite    struct {
				Name  string `xml:"name,attr"`
				Cases []struct {
					Classname string  `xml:"classname,attr"`
					Name      string  `xml:"name,attr"`
					Time      string  `xml:"time,attr"`
					Failure   *string `xml:"failure"`
					Error     *string `xml:"error"`
				} `xml:"testcase"`
			} `xml:"testsuite"`
		}
		Expect(xml.Unmarshal(b.Bytes(), &doc)).To(Succeed())
		Expect([]int{doc.Tests, doc.Failures, doc.Errors}).To(Equal([]int{12, 1, 1}))
		Expect(doc.Suite.Name).To(Equal("mail-egress"))
		Expect(doc.Suite.Cases).To(HaveLen(12))
		c := doc.Suite.Cases[8]
		Expect(c.Classname).To(Equal("mail-egress.www-data.ipv6"), "classnames group by policy, user and family")
		Expect(c.Name).To(Equal("www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6)"))
		names := map[string]bool{}
		for _, c := range doc.Suite.Cases {
			names[c.Name] = true
		}
		Expect(names).To(HaveLen(12), "one name per probe: users, hosts, addresses and ports apart")
		Expect(c.Time).To(Equal("0.000"))
		Expect(c.Failure).To(HaveValue(ContainSubstring(
			"reproduce: egresslab exec -f egresslab.yaml --user www-data -- nc -vz -n -w 3 2001:db8::25 25")))
		Expect(doc.Suite.Cases[11].Error).To(HaveValue(HavePrefix("socket as uid 33: operation not permitted\npolicy line 32\n")))
		Expect(b.String()).To(ContainSubstring(`<failure message="expected deny, observed connected" type="bypass">`))
	})

	It("gives each JUnit test case the probe's time", func() {
		r.Results[0].Duration = 1500 * time.Microsecond
		r.Duration = 2 * time.Second
		var b bytes.Buffer
		Expect(r.WriteJUnit(&b)).To(Succeed())
		Expect(b.String()).To(ContainSubstring(`name="postfix -&gt; mx.example.test [192.0.2.25]:25/tcp (ipv4)" time="0.002"`))
		Expect(b.String()).To(ContainSubstring(`<testsuite name="mail-egress" tests="12" failures="1" errors="1" time="2.000">`))
	})

	It("writes a run that could not happen as one failing JUnit test case saying why", func() {
		var b bytes.Buffer
		Expect(report.WriteJUnitNotRun(&b, "mail-egress", "bad input", "mail.yaml:3:5: unknown key \"hostz\"")).To(Succeed())
		var doc struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Suite    struct {
				Cases []struct {
					Classname string `xml:"classname,attr"`
					Time      string `xml:"time,attr"`
					Failure   struct {
						Message string `xml:"message,attr"`
						Text    string `xml:",chardata"`
					} `xml:"failure"`
				} `xml:"testcase"`
			} `xml:"testsuite"`
		}
		Expect(xml.Unmarshal(b.Bytes(), &doc)).To(Succeed())
		Expect([]int{doc.Tests, doc.Failures}).To(Equal([]int{1, 1}))
		Expect(doc.Suite.Cases).To(HaveLen(1))
		Expect(doc.Suite.Cases[0].Classname).To(Equal("mail-egress"))
		Expect(doc.Suite.Cases[0].Time).To(Equal("0.000"))
		Expect(doc.Suite.Cases[0].Failure.Message).To(Equal("bad input"))
		Expect(doc.Suite.Cases[0].Failure.Text).To(ContainSubstring(`unknown key "hostz"`))
	})

	It("lists bypasses first, then breakage, then the wrong way of failing, with a line per family", func() {
		// 21 probes that fail the wrong way must not bury one bypass.
		p := r.Results[0].Probe
		var results []report.Result
		for i := range 21 {
			q := p
			q.Port = policy.Port{Number: uint16(1000 + i), Proto: "tcp"}
			q.Expect = policy.Drop
			results = append(results, report.Result{Probe: q, Observed: probe.Rejected})
		}
		broken := p
		broken.Expect = policy.Allow
		results = append(results, report.Result{Probe: broken, Observed: probe.Dropped})
		leak := r.Results[8]
		results = append(results, leak)
		var b bytes.Buffer
		Expect((&report.Report{Policy: "ranked", Results: results}).WriteTable(&b, false)).To(Succeed())
		out := b.String()
		bypassAt := strings.Index(out, "BYPASS: 1 probe connected although the policy forbids it\n  www-data -> mx.example.test [2001:db8::25]:25/tcp")
		breakAt := strings.Index(out, "BREAKAGE: 1 probe the policy allows was blocked\n  postfix -> mx.example.test [192.0.2.25]:25/tcp (ipv4): expected allow, observed dropped")
		wrongAt := strings.Index(out, "WRONG WAY OF FAILING: 21 probes were blocked, but not as the policy says")
		Expect([]int{bypassAt, breakAt, wrongAt}).To(HaveEach(BeNumerically(">", 0)), out)
		Expect(bypassAt).To(BeNumerically("<", breakAt))
		Expect(breakAt).To(BeNumerically("<", wrongAt))
		Expect(out).To(HaveSuffix("\nipv4: 22 probes, 0 passed, 22 failed (1 blocked, 21 wrong way)\n" +
			"ipv6: 1 probe, 0 passed, 1 failed (1 bypass)\n" +
			"23 probes: 0 passed, 23 failed, 0 errors\n"))
	})

	It("says how to replay a probe with a real client", func() {
		Expect(r.Results[8].ExecCommand("my policies/mail.yaml")).To(Equal(
			"egresslab exec -f 'my policies/mail.yaml' --user www-data -- nc -vz -n -w 3 2001:db8::25 25"))
	})
})

// keys lists a JSON object's keys in document order.
func keys(obj []byte) []string {
	GinkgoHelper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	tok, err := dec.Token()
	Expect(err).NotTo(HaveOccurred())
	Expect(tok).To(Equal(json.Delim('{')))
	var out []string
	for dec.More() {
		tok, err := dec.Token()
		Expect(err).NotTo(HaveOccurred())
		out = append(out, tok.(string))
		var skip json.RawMessage
		Expect(dec.Decode(&skip)).To(Succeed())
	}
	return out
}
