package github

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/egresslab/egresslab/scenarios/report"
	"github.com/egresslab/egresslab/scenarios/report/words"
)

// githubData escapes a workflow command's message.
func githubData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// githubProperty escapes a workflow command's property value.
func githubProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// Annotation is one workflow command; File and Line are left out
// when not known.
type Annotation struct {
	Level   string // error, warning or notice
	File    string
	Line    int
	Title   string
	Message string
}

func (a Annotation) String() string {
	var props []string
	if a.File != "" {
		props = append(props, "file="+githubProperty(a.File))
		if a.Line > 0 {
			props = append(props, fmt.Sprintf("line=%d", a.Line))
		}
	}
	if a.Title != "" {
		props = append(props, "title="+githubProperty(a.Title))
	}
	cmd := "::" + a.Level
	if len(props) > 0 {
		cmd += " " + strings.Join(props, ",")
	}
	return cmd + "::" + githubData(a.Message)
}

// Annotations are the report's failed probes, one error each, pointing at
// the ruleset line that decided where it is known exactly (rulesource.go),
// else at the policy line of the expectation that failed.
func Annotations(r *report.Report) []Annotation {
	var out []Annotation
	for _, g := range report.FailureKinds() {
		for _, res := range r.Results {
			if res.Kind() != g {
				continue
			}
			a := Annotation{Level: "error", Title: "egresslab " + g.String() + ": " + res.Probe.String()}
			msg := []string{res.Verdict()}
			if d := report.OneLine(res.Detail); d != "" {
				msg = append(msg, "answered: "+d)
			}
			if res.Decider != nil {
				msg = append(msg, "decided by "+words.DecidedBy(res.Decider))
			}
			if res.Line > 0 {
				msg = append(msg, fmt.Sprintf("policy %s line %d", r.File, res.Line))
			}
			msg = append(msg, "reproduce: "+res.ExecCommand(r.File))
			a.Message = strings.Join(msg, "\n")
			switch {
			case res.DeciderAt != nil:
				a.File, a.Line = res.DeciderAt.File, res.DeciderAt.Line
			case r.File != "":
				a.File, a.Line = r.File, res.Line
			}
			out = append(out, a)
		}
	}
	for _, c := range r.Parity {
		out = append(out, Annotation{Level: "error", File: r.File, Line: c.Line, Title: "egresslab parity", Message: c.String()})
	}
	return out
}

// Write writes the truth table, inside ::stop-commands:: so that
// nothing in it is read as a command, then one annotation per failure and
// a notice with the summary.
func Write(w io.Writer, r *report.Report) error {
	var b bytes.Buffer
	token := stopToken()
	fmt.Fprintf(&b, "::stop-commands::%s\n", token)
	if err := r.WriteTable(&b, false); err != nil {
		return err
	}
	fmt.Fprintf(&b, "::%s::\n", token)
	for _, a := range Annotations(r) {
		b.WriteString(a.String() + "\n")
	}
	s := r.Summary()
	level := "notice"
	if !r.Pass() {
		level = "error"
	}
	b.WriteString(Annotation{Level: level, File: r.File, Title: "egresslab " + r.Policy,
		Message: fmt.Sprintf("%s: %d passed, %d failed, %s", report.Plural(s.Probes, "probe"), s.Passed, s.Failed, report.Plural(s.Errors, "error"))}.String() + "\n")
	_, err := w.Write(b.Bytes())
	return err
}

// stopToken is a fresh ::stop-commands:: token: one a pull request cannot
// know in advance, so cannot print to turn commands back on.
func stopToken() string {
	var t [16]byte
	_, _ = rand.Read(t[:])
	return "egresslab-" + hex.EncodeToString(t[:])
}

// WriteSummary writes the Markdown that a job's summary page shows
// ($GITHUB_STEP_SUMMARY): the verdict, the counts, the failures in a table
// with the ruleset line that decided each, and the truth table.
func WriteSummary(w io.Writer, r *report.Report) error {
	var b bytes.Buffer
	s := r.Summary()
	verdict := "✅ every expectation held"
	if !r.Pass() {
		verdict = "❌ the ruleset does not do what the policy says"
	}
	fmt.Fprintf(&b, "## egresslab: %s\n\n%s: %s, %d passed, %d failed, %s\n\n",
		markdownText(r.Policy), verdict, report.Plural(s.Probes, "probe"), s.Passed, s.Failed, report.Plural(s.Errors, "error"))
	if s.Failed > 0 {
		b.WriteString("| failure | probe | expected, observed | decided by | written at |\n| --- | --- | --- | --- | --- |\n")
		for _, g := range report.FailureKinds() {
			for _, res := range r.Results {
				if res.Kind() != g {
					continue
				}
				decider, at := "", ""
				if res.Decider != nil {
					decider = words.DecidedBy(res.Decider)
				}
				if res.DeciderAt != nil {
					at = res.DeciderAt.String()
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", g.String(), markdownCell(res.Probe.String()),
					markdownCell(res.Verdict()), markdownCell(decider), markdownCell(at))
			}
		}
		b.WriteString("\n")
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table, false); err != nil {
		return err
	}
	b.WriteString("<details><summary>truth table</summary>\n\n```text\n" + strings.ReplaceAll(table.String(), "```", "'''") + "```\n\n</details>\n\n")
	_, err := w.Write(b.Bytes())
	return err
}

// WriteError is a run that ended without a report: one error
// annotation, at the file and line the error names when it names one.
func WriteError(w io.Writer, policy, file string, line int, e report.RunError) error {
	a := Annotation{Level: "error", File: file, Line: line, Title: fmt.Sprintf("egresslab %s: exit status %d", policy, e.Status), Message: e.Message}
	_, err := io.WriteString(w, a.String()+"\n")
	return err
}

// WriteErrorSummary is WriteSummary for a run without a report.
func WriteErrorSummary(w io.Writer, policy string, e report.RunError) error {
	_, err := fmt.Fprintf(w, "## egresslab: %s\n\n❌ no report (exit status %d): %s\n\n", markdownText(policy), e.Status, markdownText(e.Message))
	return err
}

// markdownText keeps text from a policy from becoming markup.
func markdownText(s string) string {
	return strings.NewReplacer("\\", "\\\\", "`", "\\`", "*", "\\*", "_", "\\_", "<", "&lt;", ">", "&gt;", "[", "\\[", "]", "\\]", "|", "\\|", "\n", " ").Replace(s)
}

// markdownCell is markdownText inside a table cell.
func markdownCell(s string) string { return markdownText(report.OneLine(s)) }
