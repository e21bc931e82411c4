package scenarios

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/egresslab/egresslab/probe"
	"github.com/goccy/go-yaml"
)

// The catalogue of real bypass stories, embedded so the binary carries it.
// Each scenario is a folder: scenario.yaml tells the story and names its
// variants, each an ordinary policy file (SPEC.md) with its rulesets beside it.
//
//go:embed catalogue
var catalogueFS embed.FS

// Scenario is one story of the catalogue.
type Scenario struct {
	Name     string
	Story    string
	Source   string
	Client   ClientSpec
	Variants []Variant
}

// ClientSpec is the real client whose view a repro shows (telnet NAME PORT as USER).
type ClientSpec struct {
	User string `yaml:"user"`
	Name string `yaml:"name"`
	Port uint16 `yaml:"port"`
}

// Variant is one ruleset of a story, with the cells the story says it gets
// wrong: Bypass cells connect although the policy denies them, Broken cells
// are blocked although the policy allows them. None: the ruleset is right.
type Variant struct {
	Name   string
	Title  string
	Policy *Policy
	Bypass []Cell
	Broken []Cell
}

// Cell names the probes of one user, host and address family.
type Cell struct {
	User   string `yaml:"user"`
	Host   string `yaml:"host"`
	Family string `yaml:"family"`
}

func (c Cell) matches(p Probe) bool {
	return c.User == p.User.Name && c.Host == p.Host && c.Family == p.Family()
}

func (c Cell) String() string { return fmt.Sprintf("%s -> %s over %s", c.User, c.Host, c.Family) }

type scenarioFile struct {
	Name     string     `yaml:"name"`
	Story    string     `yaml:"story"`
	Source   string     `yaml:"source"`
	Client   ClientSpec `yaml:"client"`
	Variants []struct {
		Name   string `yaml:"name"`
		Title  string `yaml:"title"`
		Policy string `yaml:"policy"`
		Bypass []Cell `yaml:"bypass"`
		Broken []Cell `yaml:"broken"`
	} `yaml:"variants"`
}

// Catalogue returns every scenario, by name.
func Catalogue() ([]*Scenario, error) {
	dirs, err := fs.ReadDir(catalogueFS, "catalogue")
	if err != nil {
		return nil, err
	}
	var out []*Scenario
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		s, err := loadScenario(path.Join("catalogue", d.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// FindScenario returns the catalogue's scenario called name.
func FindScenario(name string) (*Scenario, error) {
	all, err := Catalogue()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range all {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return nil, fmt.Errorf("no scenario %q in the catalogue: want one of %s", name, strings.Join(names, ", "))
}

func loadScenario(dir string) (*Scenario, error) {
	file := path.Join(dir, "scenario.yaml")
	data, err := catalogueFS.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var sf scenarioFile
	if err := yaml.NewDecoder(bytes.NewReader(data), yaml.DisallowUnknownField()).Decode(&sf); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	s := &Scenario{Name: sf.Name, Story: strings.TrimSpace(sf.Story), Source: sf.Source, Client: sf.Client}
	for _, v := range sf.Variants {
		p, err := LoadFS(catalogueFS, path.Join(dir, v.Policy))
		if err != nil {
			return nil, err
		}
		s.Variants = append(s.Variants, Variant{Name: v.Name, Title: v.Title, Policy: p, Bypass: v.Bypass, Broken: v.Broken})
	}
	return s, nil
}

// Check compares a variant's report with its story, both ways: every probe
// of a documented cell fails its expectation in the documented way (a
// bypass connects, a broken cell is blocked), every other probe passes, and
// nothing errors. It returns what differs; none means the story holds.
func (v Variant) Check(r *Report) []string {
	var problems []string
	type documented struct {
		cells []Cell
		hit   []bool
		ok    func(Result) bool
		what  string
	}
	docs := []*documented{
		{v.Bypass, make([]bool, len(v.Bypass)), func(r Result) bool { return r.Observed == probe.Connected }, "connects (a bypass)"},
		{v.Broken, make([]bool, len(v.Broken)), func(r Result) bool { return r.Observed.Blocked() }, "is blocked (broken)"},
	}
	for _, res := range r.Results {
		var doc *documented
		for _, d := range docs {
			for i, c := range d.cells {
				if c.matches(res.Probe) {
					doc, d.hit[i] = d, true
				}
			}
		}
		switch {
		case res.Observed == probe.Error:
			problems = append(problems, fmt.Sprintf("%s: probe error: %s", res.Probe, res.Detail))
		case doc != nil && (res.Pass() || !doc.ok(res)):
			problems = append(problems, fmt.Sprintf("%s: the story says it fails its expectation (%s %s), observed %s", res.Probe, res.Expect, doc.what, res.Observed))
		case doc == nil && !res.Pass():
			problems = append(problems, fmt.Sprintf("%s: expected %s, observed %s", res.Probe, res.Expect, res.Observed))
		}
	}
	for _, d := range docs {
		for i, c := range d.cells {
			if !d.hit[i] {
				problems = append(problems, fmt.Sprintf("documented cell %s matches no probe", c))
			}
		}
	}
	return problems
}
