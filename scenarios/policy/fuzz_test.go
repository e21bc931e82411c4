package policy_test

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"unicode"

	"github.com/egresslab/egresslab/scenarios/policy"
)

// The fuzz targets: no input makes Load panic, every failure is a positioned
// *Error, and what is accepted makes a matrix. go test runs the seeds (from
// testdata); go test -fuzz=NAME ./scenarios/policy/ explores, and make test does so
// briefly for each.

// loadFuzzed loads a policy from data beside a small ruleset, and checks
// what every load must satisfy.
func loadFuzzed(t *testing.T, data []byte) *policy.Policy {
	fsys := fstest.MapFS{
		"p.yaml":    {Data: data},
		"rules.v4":  {Data: []byte("*filter\nCOMMIT\n")},
		"rules.nft": {Data: []byte("table inet t {\n\tinclude \"inc.nft\"\n}\n")},
		"inc.nft":   {Data: []byte("chain c {\n}\n")},
	}
	p, err := policy.LoadFS(fsys, "p.yaml")
	var perr *policy.Error
	switch {
	case err == nil:
		if len(p.Matrix()) == 0 {
			t.Fatal("a policy accepted with nothing to probe")
		}
	case !errors.As(err, &perr) || perr.Line <= 0:
		t.Fatalf("want a positioned *policy.Error, got %v", err)
	}
	return p
}

func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("../../testdata/bad/*.yaml")
	seeds = append(seeds, "../../testdata/golden/mail.yaml", "../../testdata/golden/full.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// Shapes a hostile file takes: deep flow nesting, compact lists, indentation.
	f.Add([]byte("version: 1\nname: " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\n"))
	f.Add([]byte(strings.Repeat("- ", 40) + "x\n"))
	f.Add([]byte("version: 1\nusers:\n" + strings.Repeat(" ", 200) + "a: 1\n"))
	f.Add([]byte("version: 1\nruleset: {nft: rules.nft}\n"))
	f.Fuzz(func(t *testing.T, data []byte) { loadFuzzed(t, data) })
}

// policyWith puts a value, single-quoted, where a policy names a port or an
// address.
func policyWith(port, addr string) []byte {
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	return []byte("version: 1\nusers: {a: {uid: 1}}\nhosts:\n  h.test:\n    addresses: [" + q(addr) + "]\n    ports: [" + q(port) +
		"]\nexpect:\n  - deny: {port: " + q(port) + "}\n  - allow: {}\n")
}

// quotable is a value a single-quoted YAML scalar can hold on one line.
func quotable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == unicode.ReplacementChar })
}

func lineSeeds(f *testing.F, file string) []string {
	fh, err := os.Open(file)
	if err != nil {
		f.Fatal(err)
	}
	defer fh.Close()
	var lines []string
	for sc := bufio.NewScanner(fh); sc.Scan(); {
		lines = append(lines, sc.Text())
	}
	if len(lines) == 0 {
		f.Fatalf("no seeds in %s", file)
	}
	return lines
}

func FuzzPort(f *testing.F) {
	for _, s := range lineSeeds(f, "../../testdata/fuzz/ports.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, port string) {
		if !quotable(port) {
			t.Skip()
		}
		loadFuzzed(t, policyWith(port, "192.0.2.1"))
	})
}

func FuzzAddress(f *testing.F) {
	for _, s := range lineSeeds(f, "../../testdata/fuzz/addresses.txt") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if !quotable(addr) {
			t.Skip()
		}
		if p := loadFuzzed(t, policyWith("25/tcp", addr)); p != nil {
			for _, pr := range p.Matrix() {
				if !pr.Address.IsValid() || pr.Address.Zone() != "" || pr.Address.Is4In6() {
					t.Fatalf("accepted address %q probes %v", addr, pr.Address)
				}
			}
		}
	})
}
