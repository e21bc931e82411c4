package catalogue

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/report"
)

// Cell names the probes of one source (a user, or a client of a network),
// host and address family, and optionally one port ("443/udp"; a bare number
// is tcp). A broken cell may name how its probes are blocked (Observed:
// dropped, rejected or refused); an answered cell names the host whose
// listener answers them (By).
type Cell struct {
	User     string `yaml:"user"`
	Client   string `yaml:"client"`
	Host     string `yaml:"host"`
	Family   string `yaml:"family"`
	Port     string `yaml:"port"`
	Observed string `yaml:"observed"`
	By       string `yaml:"by"`
}

func (c Cell) String() string {
	if c.Port != "" {
		return fmt.Sprintf("%s -> %s %s over %s", c.source(), c.Host, c.port(), c.Family)
	}
	return fmt.Sprintf("%s -> %s over %s", c.source(), c.Host, c.Family)
}

// source is who dials: the user, or "client NAME".
func (c Cell) source() string {
	if c.Client != "" {
		return "client " + c.Client
	}
	return c.User
}

// port is the cell's port as reports write it ("25/tcp"), "" for any.
func (c Cell) port() string {
	if c.Port == "" || strings.Contains(c.Port, "/") {
		return c.Port
	}
	return c.Port + "/tcp"
}

func (c Cell) matches(p scenarios.Probe) bool {
	if c.Client != "" {
		if p.Client == nil || p.Client.Name != c.Client {
			return false
		}
	} else if p.Client != nil || c.User != p.User.Name {
		return false
	}
	return c.Host == p.Host && c.Family == p.Family() &&
		(c.Port == "" || c.port() == p.Port.String())
}

// documented is one kind of documented cell: its cells, what their probes
// must observe, and how a report says it.
type documented struct {
	cells []Cell
	ok    func(Cell, scenarios.Result) bool
	what  func(Cell) string
}

func (v Variant) documented() []documented {
	return []documented{
		{v.Bypass, func(_ Cell, r scenarios.Result) bool { return r.Kind() == report.Bypass },
			func(Cell) string { return "connects (a bypass)" }},
		{v.Broken, func(c Cell, r scenarios.Result) bool {
			k := r.Kind()
			return (k == report.Breakage || k == report.WrongWay) && (c.Observed == "" || c.Observed == r.Observed.String())
		}, func(c Cell) string {
			if c.Observed != "" {
				return "is " + c.Observed + " (broken)"
			}
			return "is blocked (broken)"
		}},
	}
}

// validate checks a variant's cells against its policy, so that a typo in an
// entry is a loading error, not a story that silently checks nothing.
func (v Variant) validate() error {
	var errs []error
	for _, c := range v.Bypass {
		if err := v.validCell(c); err != nil {
			errs = append(errs, fmt.Errorf("bypass cell %s: %w", c, err))
		} else if c.Observed != "" || c.By != "" {
			errs = append(errs, fmt.Errorf("bypass cell %s: a bypass connects: no observed or by", c))
		}
	}
	for _, c := range v.Broken {
		var o probe.Outcome
		if err := v.validCell(c); err != nil {
			errs = append(errs, fmt.Errorf("broken cell %s: %w", c, err))
		} else if c.Observed != "" && (o.UnmarshalText([]byte(c.Observed)) != nil || !o.Blocked()) {
			errs = append(errs, fmt.Errorf("broken cell %s: observed %q: want dropped, rejected or refused", c, c.Observed))
		} else if c.By != "" {
			errs = append(errs, fmt.Errorf("broken cell %s: nothing answers a broken cell: no by", c))
		}
	}
	for _, c := range v.Answered {
		if err := v.validCell(c); err != nil {
			errs = append(errs, fmt.Errorf("answered cell %s: %w", c, err))
		} else if !slices.ContainsFunc(v.Policy.Hosts, func(h scenarios.Host) bool { return h.Name == c.By }) {
			errs = append(errs, fmt.Errorf("answered cell %s: by %q is no host of %s", c, c.By, v.File))
		}
	}
	return errors.Join(errs...)
}

func (v Variant) validCell(c Cell) error {
	if (c.User == "") == (c.Client == "") {
		return errors.New("want one of user and client")
	}
	if c.Family != "ipv4" && c.Family != "ipv6" {
		return fmt.Errorf("family %q: want ipv4 or ipv6", c.Family)
	}
	if c.Port != "" {
		num, proto, _ := strings.Cut(c.port(), "/")
		if n, err := strconv.ParseUint(num, 10, 16); err != nil || n == 0 || (proto != "tcp" && proto != "udp") {
			return fmt.Errorf("port %q: want N, N/tcp or N/udp", c.Port)
		}
	}
	if !slices.ContainsFunc(v.Policy.Matrix(), c.matches) {
		return fmt.Errorf("matches no probe of %s", v.File)
	}
	return nil
}

// Check compares a variant's report with what its entry documents, both
// ways: every probe of a documented cell fails its expectation in the
// documented way, every other probe passes, every answered cell was answered
// by the host it names, and nothing errors. It returns what differs; none
// means the variant behaves exactly as documented.
func (v Variant) Check(r *scenarios.Report) []string {
	var problems []string
	docs := v.documented()
	for _, res := range r.Results {
		var doc *documented
		var cell Cell
		for i := range docs {
			if j := slices.IndexFunc(docs[i].cells, func(c Cell) bool { return c.matches(res.Probe) }); j >= 0 {
				doc, cell = &docs[i], docs[i].cells[j]
				break
			}
		}
		switch {
		case res.Kind() == report.ProbeError:
			problems = append(problems, fmt.Sprintf("%s: probe error: %s", res.Probe, res.Detail))
			continue
		case doc != nil && !doc.ok(cell, res):
			problems = append(problems, fmt.Sprintf("%s: documented as failing its expectation (%s %s), observed %s",
				res.Probe, res.Expect, doc.what(cell), res.Observed))
		case doc == nil && !res.Pass():
			problems = append(problems, fmt.Sprintf("%s: expected %s, observed %s (not documented)", res.Probe, res.Expect, res.Observed))
		}
		if j := slices.IndexFunc(v.Answered, func(c Cell) bool { return c.matches(res.Probe) }); j >= 0 {
			if by := answeredBy(res.Evidence); by != v.Answered[j].By {
				problems = append(problems, fmt.Sprintf("%s: documented as answered by %s, answered by %s",
					res.Probe, v.Answered[j].By, orNobody(by)))
			}
		}
	}
	return problems
}

// answeredBy is the host name of the service that answered, "" for none.
func answeredBy(e probe.Evidence) string {
	if e.AnsweredBy == nil {
		return ""
	}
	return e.AnsweredBy.Host
}

func orNobody(host string) string {
	if host == "" {
		return "none of the lab's services"
	}
	return host
}
