package report

import (
	"github.com/egresslab/egresslab/scenarios/report/words"

	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/policy"
	"github.com/egresslab/egresslab/scenarios/report/complete"
)

// Result is one probe with what was observed.
type Result struct {
	policy.Probe
	Observed probe.Outcome
	Evidence probe.Evidence // what decided the outcome
	Detail   string         // what answered, or why not (from the prober)
	Decider  *trace.Rule    // the rule that decided, from the lab's trace (nil: none saw the probe)
	// DeciderAt is where the deciding rule was written in the candidate
	// ruleset (nil: not known exactly; rulesource.go says when).
	DeciderAt *RuleSource
	Duration  time.Duration // how long the probe took (zero when not measured)
	// apart holds what few results carry (Source, PolicyFile, the reported
	// evidence), so that a sweep's 131,070 user probes do not pay for it.
	apart *resultApart
}

// resultApart is the part of a Result that most results do without (nil).
type resultApart struct {
	source     netip.Addr
	policyFile string
	// reported is the evidence in the words it was read with, for a result
	// read back from a JSON report (nil: word Evidence).
	reported *jsonEvidence
}

// Source is, for a client's probe, the address its packet left the host
// with, after the candidate's nat (invalid until the lab observes it).
func (r Result) Source() netip.Addr {
	if r.apart == nil {
		return netip.Addr{}
	}
	return r.apart.source
}

// PolicyFile is the policy file the probe came from, for a result that
// travels without its report (Session.Probe's): what its reproduce line
// names. "" in a Report's results, which carry Report.File.
func (r Result) PolicyFile() string {
	if r.apart == nil {
		return ""
	}
	return r.apart.policyFile
}

// WithSource is r with Source a.
func (r Result) WithSource(a netip.Addr) Result {
	if a == r.Source() {
		return r // a user's probe: nothing to keep apart
	}
	r.setApart(func(x *resultApart) { x.source = a })
	return r
}

// WithPolicyFile is r with PolicyFile file.
func (r Result) WithPolicyFile(file string) Result {
	if file == r.PolicyFile() {
		return r
	}
	r.setApart(func(x *resultApart) { x.policyFile = file })
	return r
}

// setApart changes a copy of r's apart part (results share it when copied),
// and drops it when nothing is left in it.
func (r *Result) setApart(change func(*resultApart)) {
	var x resultApart
	if r.apart != nil {
		x = *r.apart
	}
	change(&x)
	if x == (resultApart{}) {
		r.apart = nil
		return
	}
	r.apart = &x
}

// Pass reports whether the observed outcome meets the expectation.
func (r Result) Pass() bool { return r.Kind() == Passed }

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
	Policy   string
	File     string // the policy file, for reproduction commands ("" when unknown)
	Results  []Result
	Duration time.Duration // the whole run, when measured
	Parity   []ParityCell  // cells that failed verify --parity (CheckParity)
	Width    int           // the table's width limit (a terminal's columns); 0: none
	Shard    *Shard        // the plan, when this run is one shard of several (verify --shard)
	// Classes and Completeness: verify --complete's classes (nil without it).
	Classes      []ClassResult
	Completeness *Completeness
}

// Pass reports whether every expectation held, and parity where checked.
func (r *Report) Pass() bool {
	if len(r.Parity) > 0 || r.ClassFailures() > 0 {
		return false
	}
	for _, res := range r.Results {
		if !res.Pass() {
			return false
		}
	}
	return true
}

// Summary counts the results.
func (r *Report) Summary() Summary {
	var s Summary
	for _, res := range r.Results {
		s.add(res)
	}
	return s
}

// The JSON document (docs/commands.md); field order is the key order.
type jsonReport struct {
	Policy  string       `json:"policy"`
	Pass    bool         `json:"pass"`
	Summary Summary      `json:"summary"`
	Probes  []jsonProbe  `json:"probes"`
	Parity  []ParityCell `json:"parity,omitempty"`
	Shard   *Shard       `json:"shard,omitempty"`
	// verify --complete
	Classes      []complete.JSONClass       `json:"classes,omitempty"`
	Completeness *complete.JSONCompleteness `json:"completeness,omitempty"`
}

// A user's probe has user and uid; a client's has client, network and
// source in their place, so a user's probe reads as it always has.
type jsonProbe struct {
	User     string        `json:"user,omitempty"`
	UID      *uint32       `json:"uid,omitempty"`
	Client   string        `json:"client,omitempty"`
	Network  string        `json:"network,omitempty"`
	Host     string        `json:"host"`
	Address  string        `json:"address"`
	Source   string        `json:"source,omitempty"` // a client's: the address its packet left the host with
	Family   string        `json:"family"`
	Port     uint16        `json:"port"`
	Proto    string        `json:"proto"`
	Expected policy.Verb   `json:"expected"`
	Observed probe.Outcome `json:"observed"`
	Pass     bool          `json:"pass"`
	Failure  string        `json:"failure,omitempty"` // bypass, breakage, wrong-way, probe-error, not-covered
	Line     int           `json:"line"`
	Detail   string        `json:"detail"`
	Evidence jsonEvidence  `json:"evidence"`
	Rule     *jsonRule     `json:"rule"` // the deciding rule, where the kernel can say it
}

// jsonRule is the deciding rule, its verdict as a reader names it, what it
// matched that a reader may not expect, and, where known exactly, the file
// and line of the candidate ruleset that wrote it.
type jsonRule struct {
	*trace.Rule
	Note string `json:"note,omitempty"`
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
}

// WriteJSON writes the JSON document of docs/commands.md, indented, with a final newline.
// The probes are written one at a time (jsonProbes), so a sweep's document
// never sits in memory whole.
func (r *Report) WriteJSON(w io.Writer) error {
	doc := jsonReport{Policy: r.Policy, Pass: r.Pass(), Summary: r.Summary(), Probes: []jsonProbe{}, Parity: r.Parity, Shard: r.Shard}
	doc.Classes, doc.Completeness = r.jsonClasses()
	var head bytes.Buffer
	enc := json.NewEncoder(&head)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // an SMTP greeting's <...> stays readable
	if err := enc.Encode(doc); err != nil {
		return err
	}
	return writeProbesInto(w, head.Bytes(), r.Results)
}

func toJSONProbe(res Result) jsonProbe {
	jp := jsonProbe{
		Host:    res.Host,
		Address: res.Address.String(), Family: res.Family(),
		Port: res.Port.Number, Proto: res.Port.Proto,
		Expected: res.Expect, Observed: res.Observed, Pass: res.Pass(), Failure: kindName(res.Kind()),
		Line: res.Line, Detail: res.Detail, Evidence: evidenceJSON(res), Rule: ruleOf(res),
	}
	if c := res.Client; c != nil {
		jp.Client, jp.Network = c.Name, c.Network
		if src := res.Source(); src.IsValid() {
			jp.Source = src.String()
		}
		return jp
	}
	uid := res.User.UID
	jp.User, jp.UID = res.User.Name, &uid
	return jp
}

func ruleOf(res Result) *jsonRule {
	if res.Decider == nil {
		return nil
	}
	rule := *res.Decider // shared by the probes it decided: the verdict is this probe's
	rule.Verdict = words.RuleVerdict(rule.Verdict, res.Observed)
	r := &jsonRule{Rule: &rule, Note: words.RuleNote(res.Decider)}
	if at := res.DeciderAt; at != nil {
		r.File, r.Line = at.File, at.Line
	}
	return r
}

// RunError is a run that ended without a report (bad input, a lab that
// could not run, an interruption): its exit status and why.
type RunError struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// WriteJSONError writes the JSON document of a run that ended without a
// report: the report's keys, no probes, pass false, and the error.
func WriteJSONError(w io.Writer, policy string, e RunError) error {
	doc := struct {
		jsonReport
		Error RunError `json:"error"`
	}{jsonReport{Policy: policy, Probes: []jsonProbe{}}, e}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}

// Verdict is "expected deny, observed connected".
func (r Result) Verdict() string {
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
// host, then family and address, then port (runs of ports with the same
// cells share a column, table.go). A cell is the expected verb's letter and
// the observed glyph; a mismatch carries a '!'. The mismatches follow in
// full, grouped by kind (failures.go), then the summary lines.
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
	r.writeFailures(&b, paint)
	r.writeParity(&b, paint)
	r.writeClasses(&b, paint)
	r.writeSummary(&b, paint)
	_, err := w.Write(b.Bytes())
	return err
}

// Plural is "1 probe" or "3 probes".
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// OneLine keeps a prober's detail on one line and free of terminal escapes:
// it may be whatever a server sent.
func OneLine(s string) string {
	s = strings.TrimSpace(s)
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
