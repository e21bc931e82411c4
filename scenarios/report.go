package scenarios

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/egresslab/egresslab/probe"
)

// Result is one probe with what was observed.
type Result struct {
	Probe
	Observed probe.Outcome
	Evidence probe.Evidence // what decided the outcome
	Detail   string         // what answered, or why not (from the prober)
}

// Pass reports whether the observed outcome meets the expectation.
func (r Result) Pass() bool { return r.Expect.Met(r.Observed) }

// Summary counts results. An error is also a failure: Passed+Failed == Probes.
type Summary struct {
	Probes int `json:"probes"`
	Passed int `json:"passed"`
	Failed int `json:"failed"`
	Errors int `json:"errors"` // Observed == probe.Error
}

// Report is the outcome of verifying one policy. Results are expected in
// Matrix order; the table keeps the order it is given.
type Report struct {
	Policy  string
	Results []Result
	Width   int // the table's width limit (a terminal's columns); 0: none
}

// Pass reports whether every expectation held.
func (r *Report) Pass() bool {
	for _, res := range r.Results {
		if !res.Pass() {
			return false
		}
	}
	return true
}

// Summary counts the results.
func (r *Report) Summary() Summary {
	s := Summary{Probes: len(r.Results)}
	for _, res := range r.Results {
		if res.Pass() {
			s.Passed++
		} else {
			s.Failed++
		}
		if res.Observed == probe.Error {
			s.Errors++
		}
	}
	return s
}

// The JSON document of SPEC.md; field order is the key order.
type jsonReport struct {
	Policy  string      `json:"policy"`
	Pass    bool        `json:"pass"`
	Summary Summary     `json:"summary"`
	Probes  []jsonProbe `json:"probes"`
}

type jsonProbe struct {
	User     string         `json:"user"`
	UID      uint32         `json:"uid"`
	Host     string         `json:"host"`
	Address  string         `json:"address"`
	Family   string         `json:"family"`
	Port     uint16         `json:"port"`
	Proto    string         `json:"proto"`
	Expected Verb           `json:"expected"`
	Observed probe.Outcome  `json:"observed"`
	Pass     bool           `json:"pass"`
	Line     int            `json:"line"`
	Detail   string         `json:"detail"`
	Evidence probe.Evidence `json:"evidence"`
	Rule     *string        `json:"rule"` // the deciding rule, where the kernel can say it
}

// WriteJSON writes SPEC.md's JSON document, indented, with a final newline.
func (r *Report) WriteJSON(w io.Writer) error {
	doc := jsonReport{Policy: r.Policy, Pass: r.Pass(), Summary: r.Summary(), Probes: []jsonProbe{}}
	for _, res := range r.Results {
		doc.Probes = append(doc.Probes, jsonProbe{
			User: res.User.Name, UID: res.User.UID, Host: res.Host,
			Address: res.Address.String(), Family: res.Family(),
			Port: res.Port.Number, Proto: res.Port.Proto,
			Expected: res.Expect, Observed: res.Observed, Pass: res.Pass(), Line: res.Line,
			Detail: res.Detail, Evidence: res.Evidence,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // an SMTP greeting's <...> stays readable
	return enc.Encode(doc)
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes one test case per probe. JUnit counts an error apart
// from a failure, so failures here are the failed probes that did run.
func (r *Report) WriteJUnit(w io.Writer) error {
	s := r.Summary()
	suite := junitSuite{Name: r.Policy, Tests: s.Probes, Failures: s.Failed - s.Errors, Errors: s.Errors}
	for _, res := range r.Results {
		c := junitCase{Classname: r.Policy, Name: res.Probe.String()}
		msg := &junitMessage{Message: res.verdict(), Text: res.Detail}
		switch {
		case res.Observed == probe.Error:
			c.Error = msg
		case !res.Pass():
			c.Failure = msg
		}
		suite.Cases = append(suite.Cases, c)
	}
	doc := junitSuites{Name: "egresslab", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors, Suites: []junitSuite{suite}}
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	_, err = io.WriteString(w, xml.Header+string(out)+"\n")
	return err
}

// verdict is "expected deny, observed connected".
func (r Result) verdict() string {
	expected := string(r.Expect)
	if expected == "" {
		expected = "nothing"
	}
	return fmt.Sprintf("expected %s, observed %s", expected, r.Observed)
}

// ANSI colours, used only when asked for.
const (
	green = "\x1b[32m"
	red   = "\x1b[1;31m"
	reset = "\x1b[0m"
)

// WriteTable writes the truth table: users down the side; across the top
// host, then family and address, then port, so each column is one probe.
// One glyph per cell; a mismatch carries a '!'. The mismatches follow in
// full, each with the policy line that decided it, then the summary.
func (r *Report) WriteTable(w io.Writer, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + reset
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "policy %s\n", r.Policy)
	t := newTable(r.Results)
	if len(r.Results) > 0 {
		b.WriteString("\n")
		t.write(&b, paint, r.Width)
		b.WriteString("\n" + t.legend() + "\n")
	}
	var failed []string
	for _, res := range r.Results {
		if res.Pass() {
			continue
		}
		line := res.Probe.String() + ": " + res.verdict()
		if d := oneLine(res.Detail); d != "" {
			line += " — " + d
		}
		if res.Line > 0 {
			line += fmt.Sprintf(" (policy line %d)", res.Line)
		}
		failed = append(failed, paint(red, line))
	}
	if len(failed) > 0 {
		b.WriteString("\n" + strings.Join(failed, "\n") + "\n")
	}
	s := r.Summary()
	summary := fmt.Sprintf("%s: %d passed, %d failed, %s", plural(s.Probes, "probe"), s.Passed, s.Failed, plural(s.Errors, "error"))
	if s.Failed > 0 {
		summary = paint(red, summary)
	} else {
		summary = paint(green, summary)
	}
	b.WriteString("\n" + summary + "\n")
	_, err := w.Write(b.Bytes())
	return err
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// oneLine keeps a prober's detail on one line and free of terminal escapes:
// it may be whatever a server sent.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
