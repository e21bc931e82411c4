// Package catalogue owns egresslab's built-in catalogue of real IPv6 and
// egress bypass bugs: the entries (embedded, so the binary carries them),
// the check of a run against what an entry documents, reproducing an entry
// in labs of its own, and exporting an entry as ordinary policy files.
//
// Each entry is a folder: scenario.yaml tells the story, names its source and
// lists its variants; each variant is an ordinary policy file (SPEC.md) with
// its rulesets beside it, and documents the cells it gets wrong.
package catalogue

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/egresslab/egresslab/scenarios"
	"github.com/goccy/go-yaml"
)

//go:embed entries
var entriesFS embed.FS

const entriesDir = "entries"

// Scenario is one entry of the catalogue.
type Scenario struct {
	Name     string
	Summary  string // the story in one line
	Story    string
	Source   string
	Client   Client
	Variants []Variant
	dir      string // the entry's folder in the embedded file system
}

// Client is the real client whose view a repro shows: telnet NAME PORT as User.
type Client struct {
	User string `yaml:"user"`
	Name string `yaml:"name"`
	Port uint16 `yaml:"port"`
}

// Variant is one ruleset of a story, with the cells the story says it gets
// wrong: Bypass cells connect although the policy denies them, Broken cells
// are blocked although the policy allows them; nothing else fails. Answered
// cells name the host whose listener answers them (a redirect may send a
// connection elsewhere than it dialled).
type Variant struct {
	Name     string
	Title    string
	File     string // the policy file, relative to the entry's folder
	Policy   *scenarios.Policy
	Bypass   []Cell
	Broken   []Cell
	Answered []Cell
}

type scenarioFile struct {
	Name     string        `yaml:"name"`
	Summary  string        `yaml:"summary"`
	Story    string        `yaml:"story"`
	Source   string        `yaml:"source"`
	Client   Client        `yaml:"client"`
	Variants []variantFile `yaml:"variants"`
}

type variantFile struct {
	Name     string `yaml:"name"`
	Title    string `yaml:"title"`
	Policy   string `yaml:"policy"`
	Bypass   []Cell `yaml:"bypass"`
	Broken   []Cell `yaml:"broken"`
	Answered []Cell `yaml:"answered"`
}

// All returns every entry, by name.
func All() ([]*Scenario, error) {
	dirs, err := fs.ReadDir(entriesFS, entriesDir)
	if err != nil {
		return nil, err
	}
	var out []*Scenario
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		s, err := load(path.Join(entriesDir, d.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Forwarded reports whether the entry's story is traffic the host forwards:
// some variant has networks, whose clients probe through the host's forward
// path.
func (s *Scenario) Forwarded() bool {
	for _, v := range s.Variants {
		if len(v.Policy.Networks) > 0 {
			return true
		}
	}
	return false
}

// Find returns the entry called name. An unknown name is a *NotFoundError.
func Find(name string) (*Scenario, error) {
	all, err := All()
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
	return nil, &NotFoundError{Name: name, Known: names}
}

// NotFoundError names an entry the catalogue does not have.
type NotFoundError struct {
	Name  string
	Known []string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no scenario %q in the catalogue: want one of %s", e.Name, strings.Join(e.Known, ", "))
}

// LoadDir reads an entry from a folder on disk: one that `scenarios
// --export` wrote, edited or not. Its policies are read as verify reads
// them, so that reports name the real files.
func LoadDir(dir string) (*Scenario, error) {
	return loadFrom(dir, os.ReadFile, scenarios.Load)
}

func load(dir string) (*Scenario, error) {
	s, err := loadFrom(dir, entriesFS.ReadFile, func(file string) (*scenarios.Policy, error) {
		return scenarios.LoadFS(entriesFS, file)
	})
	if err == nil && s.Name != path.Base(dir) {
		return nil, fmt.Errorf("%s: name %q is not the folder's name", path.Join(dir, "scenario.yaml"), s.Name)
	}
	return s, err
}

func loadFrom(dir string, read func(string) ([]byte, error), loadPolicy func(string) (*scenarios.Policy, error)) (*Scenario, error) {
	file := path.Join(dir, "scenario.yaml")
	data, err := read(file)
	if err != nil {
		return nil, err
	}
	var sf scenarioFile
	if err := yaml.NewDecoder(bytes.NewReader(data), yaml.DisallowUnknownField()).Decode(&sf); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	s := &Scenario{Name: sf.Name, Summary: sf.Summary, Story: strings.TrimSpace(sf.Story), Source: strings.TrimSpace(sf.Source), Client: sf.Client, dir: dir}
	if s.Summary == "" {
		s.Summary = firstSentence(s.Story)
	}
	for _, vf := range sf.Variants {
		p, err := loadPolicy(path.Join(dir, vf.Policy))
		if err != nil {
			return nil, err
		}
		v := Variant{Name: vf.Name, Title: vf.Title, File: vf.Policy, Policy: p, Bypass: vf.Bypass, Broken: vf.Broken, Answered: vf.Answered}
		if err := v.validate(); err != nil {
			return nil, fmt.Errorf("%s: variant %s: %w", file, vf.Name, err)
		}
		s.Variants = append(s.Variants, v)
	}
	if len(s.Variants) == 0 {
		return nil, fmt.Errorf("%s: no variants", file)
	}
	return s, nil
}

// firstSentence is the story up to its first full stop or semicolon that
// ends a sentence (one followed by a space), for entries without a summary.
func firstSentence(story string) string {
	for i := 0; i+1 < len(story); i++ {
		if (story[i] == '.' || story[i] == ';') && story[i+1] == ' ' {
			return story[:i]
		}
	}
	return story
}
