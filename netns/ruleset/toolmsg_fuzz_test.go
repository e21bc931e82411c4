package ruleset

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The staged paths the seeds name, as the lab would have staged them.
var fuzzStaged = map[string]string{
	"bad.nft": "rules.nft", "/tmp/sx/inc/main.nft": "main.nft", "/tmp/sx/inc/sub.nft": "sub.nft", "/tmp/sx/os.nft": "os.nft",
}

func toolErrorSeeds(f *testing.F) {
	seeds, _ := filepath.Glob("../../testdata/fuzz/tool-errors/*.txt")
	if len(seeds) == 0 {
		f.Fatal("no seeds in testdata/fuzz/tool-errors")
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzToolErrors: whatever a tool prints, the place found is a file the
// policy names with a line > 0 (or the ruleset itself with none), and what is
// shown is bounded, printable, and names no staged path.
func FuzzToolErrors(f *testing.F) {
	toolErrorSeeds(f)
	f.Fuzz(func(t *testing.T, out []byte) {
		if line := iptablesErrorLine(out); line < 0 {
			t.Fatalf("iptables line %d", line)
		}
		file, line := nftErrorPlace(out, fuzzStaged, "rules.nft")
		named := file == "rules.nft"
		for _, name := range fuzzStaged {
			named = named || file == name
		}
		if !named || line < 0 || (file != "rules.nft" && line == 0) {
			t.Fatalf("place %s:%d is no file the policy names", file, line)
		}
		for _, shown := range []string{showToolOutput(out, fuzzStaged), showScriptOutput(out, fuzzStaged), showToolOutput(out, nil)} {
			lines := strings.Split(shown, "\n")
			if len(lines) > maxShownLines+2 {
				t.Fatalf("%d lines shown", len(lines))
			}
			for _, ln := range lines {
				if len(ln) > 4*maxShownLine+4 {
					t.Fatalf("a line of %d bytes shown", len(ln))
				}
				if strings.ContainsFunc(ln, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
					t.Fatalf("control character shown: %q", ln)
				}
			}
		}
	})
}

// An nft error in a file the policy does not name is reported without the
// line nft echoes from it.
func TestToolOutputHidesFilesThePolicyDoesNotName(t *testing.T) {
	out, err := os.ReadFile("../../testdata/fuzz/tool-errors/nft-include-outside.txt")
	if err != nil {
		t.Fatal(err)
	}
	shown := showToolOutput(out, fuzzStaged)
	if strings.Contains(shown, "PRETTY_NAME") || strings.Contains(shown, "NAME=") {
		t.Fatalf("an unnamed file's line is shown:\n%s", shown)
	}
	if !strings.Contains(shown, "In file included from os.nft:1:1-26:") {
		t.Fatalf("the place in the policy's file is not shown:\n%s", shown)
	}
}
