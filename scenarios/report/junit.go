package report

import (
	"github.com/egresslab/egresslab/scenarios/report/words"

	"encoding/xml"
	"fmt"
	"io"
	"time"

	"github.com/egresslab/egresslab/probe"
)

// JUnit as CI systems read it (GitLab, Jenkins, GitHub test reporters): one
// test case per probe, its classname "policy.user.family" so that viewers
// group the cells of one user and family together, and its time the probe's.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes one test case per probe. JUnit counts an error apart
// from a failure, so failures here are the failed probes that did run. A
// failure's type is its kind (bypass, breakage, wrong-way), and its text
// says what answered, the policy line, and the command that replays it.
func (r *Report) WriteJUnit(w io.Writer) error {
	if r.Shard != nil && len(r.Results) == 0 {
		return writeEmptyJUnit(w, r.Shard)
	}
	s := r.Summary()
	suite := junitSuite{Name: r.Policy, Tests: s.Probes, Failures: s.Failed - s.Errors, Errors: s.Errors, Time: seconds(r.Duration)}
	for _, res := range r.Results {
		c := junitCase{
			Classname: fmt.Sprintf("%s.%s.%s", r.Policy, res.SourceName(), res.Family()),
			Name:      res.Probe.String(), // distinct per user, not only per destination
			Time:      seconds(res.Duration),
		}
		if k := res.Kind(); k != Passed {
			text := OneLine(res.Detail)
			if res.Line > 0 {
				text += fmt.Sprintf("\npolicy line %d", res.Line)
			}
			if res.Decider != nil {
				text += "\ndecided by " + words.DecidedBy(res.Decider)
			}
			if res.DeciderAt != nil {
				text += "\nwritten at " + res.DeciderAt.String()
			}
			text += "\nreproduce: " + res.ExecCommand(r.File) + "\n"
			msg := &junitMessage{Message: res.Verdict(), Type: kindName(k), Text: text}
			if res.Observed == probe.Error {
				c.Error = msg
			} else {
				c.Failure = msg
			}
		}
		suite.Cases = append(suite.Cases, c)
	}
	cases, failures, errors := r.junitClasses()
	suite.Cases, suite.Tests = append(suite.Cases, cases...), suite.Tests+len(cases)
	suite.Failures, suite.Errors = suite.Failures+failures, suite.Errors+errors
	return writeJUnit(w, suite)
}

// WriteJUnitNotRun writes the report of a run that could not happen: one
// failing test case, named after the policy, whose message says why (bad
// input, a lab that could not run, an interruption). CI then has a report
// to show on every exit status.
func WriteJUnitNotRun(w io.Writer, policy, kind, why string) error {
	suite := junitSuite{Name: policy, Tests: 1, Failures: 1, Time: seconds(0), Cases: []junitCase{{
		Classname: policy,
		Name:      "verify " + policy,
		Time:      seconds(0),
		Failure:   &junitMessage{Message: kind, Type: "not-run", Text: why + "\n"},
	}}}
	return writeJUnit(w, suite)
}

func writeJUnit(w io.Writer, suite junitSuite) error {
	doc := junitSuites{Name: "egresslab", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors,
		Time: suite.Time, Suites: []junitSuite{suite}}
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	_, err = io.WriteString(w, xml.Header+string(out)+"\n")
	return err
}

// kindName is a failure kind's name in JUnit and JSON ("" for a pass).
func kindName(k Kind) string {
	for _, g := range failureGroups {
		if g.kind == k {
			return g.junitType
		}
	}
	return ""
}

// seconds is JUnit's time attribute: seconds with millisecond precision.
func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// String is the kind's name in JUnit and JSON, "passed" for a pass.
func (k Kind) String() string {
	if k == Passed {
		return "passed"
	}
	return kindName(k)
}

// writeEmptyJUnit is the JUnit report of a shard that holds no cells: one
// skipped test case that says so, never a green run of 0 tests that a reader
// would take for a shard that proved something.
func writeEmptyJUnit(w io.Writer, s *Shard) error {
	name := fmt.Sprintf("shard %s of %s", s.Spec(), s.Policy)
	why := fmt.Sprintf("shard %s holds none of the run's %d cells: the other shards probe them all; merge the shards' JSON reports (egresslab merge) for the run's report", s.Spec(), s.Cells)
	suite := junitSuite{Name: s.Policy, Tests: 1, Time: seconds(0), Cases: []junitCase{{
		Classname: s.Policy, Name: name, Time: seconds(0),
		Skipped: &junitMessage{Message: "no cells in this shard", Text: why + "\n"},
	}}}
	return writeJUnit(w, suite)
}
