package scenarios_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
)

// go test ./scenarios/ -update (or UPDATE_GOLDEN=1) rewrites the golden files.
var update = flag.Bool("update", false, "rewrite testdata/golden")

const golden = "../testdata/golden"

// goldenReport is the seed story: IPv6 lets www-data reach the MX on port
// 25, and one probe could not run.
func goldenReport() *scenarios.Report {
	GinkgoHelper()
	p, err := scenarios.Load(filepath.Join(golden, "mail.yaml"))
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
		{probe.Dropped, probe.Evidence{Kind: probe.Egress, Where: "output"}, "syn dropped in the lab, nothing answered"},
		{probe.Refused, reset, "tcp reset from 127.0.0.1"},
		{probe.Error, probe.Evidence{Kind: probe.Failure}, "socket as uid 33: operation not permitted"},
	}
	matrix := p.Matrix()
	Expect(matrix).To(HaveLen(len(observed)))
	r := &scenarios.Report{Policy: p.Name}
	for i, pr := range matrix {
		r.Results = append(r.Results, scenarios.Result{Probe: pr, Observed: observed[i].outcome, Evidence: observed[i].evidence, Detail: observed[i].detail})
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
	var r *scenarios.Report
	BeforeEach(func() { r = goldenReport() })

	It("counts an error as a failure too", func() {
		Expect(r.Summary()).To(Equal(scenarios.Summary{Probes: 12, Passed: 10, Failed: 2, Errors: 1}))
		Expect(r.Pass()).To(BeFalse())
		Expect(r.Results[8].Pass()).To(BeFalse())
		Expect(r.Results[9].Pass()).To(BeTrue())
	})

	It("passes when every expectation held, and when there is nothing to check", func() {
		r.Results = r.Results[:6]
		Expect(r.Pass()).To(BeTrue())
		Expect(r.Summary()).To(Equal(scenarios.Summary{Probes: 6, Passed: 6}))
		Expect((&scenarios.Report{}).Pass()).To(BeTrue())
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
		for _, pr := range doc.Probes {
			Expect(keys(pr)).To(Equal([]string{"user", "uid", "host", "address", "family", "port", "proto",
				"expected", "observed", "pass", "line", "detail", "evidence", "rule"}))
		}
		Expect(string(doc.Probes[8])).To(MatchJSON(`{"user": "www-data", "uid": 33, "host": "mx.example.test",
			"address": "2001:db8::25", "family": "ipv6", "port": 25, "proto": "tcp",
			"expected": "deny", "observed": "connected", "pass": false, "line": 32,
			"detail": "220 mx.example.test ESMTP <postmaster@example.test>\r\n",
			"evidence": {"kind": "handshake"}, "rule": null}`))
	})

	It("writes an empty list of probes, not null", func() {
		var b bytes.Buffer
		Expect((&scenarios.Report{Policy: "empty"}).WriteJSON(&b)).To(Succeed())
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
		Expect(c.Classname).To(Equal("mail-egress"))
		Expect(c.Name).To(Equal("www-data -> mx.example.test [2001:db8::25]:25/tcp (ipv6)"))
		Expect(c.Failure).NotTo(BeNil())
		Expect(doc.Suite.Cases[11].Error).To(HaveValue(Equal("socket as uid 33: operation not permitted")))
		Expect(b.String()).To(ContainSubstring(`<failure message="expected deny, observed connected">`))
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
