package ruleset

import (
	"bytes"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/egresslab/egresslab/netns"
)

// What a tool prints is shown to whoever runs egresslab, often a CI log that
// strangers read. So it is cut (maxShownLines lines of at most maxShownLine
// characters), stripped of control characters, staged paths become the
// policy's names, and nft's echo of a source line is kept only for files the
// policy names: nothing else read may be echoed.
const (
	maxShownLines = 20
	maxShownLine  = 240
)

// nftPlace is nft's "FILE:LINE:COL[-COL]: Error|Warning: ..." line.
var nftPlace = regexp.MustCompile(`^(.*?):(\d+):\d+(?:-\d+)?: (?:Error|Warning)`)

// showToolOutput returns the start of out as it may be shown: a tool's first
// error is the one that counts. staged maps paths inside the lab to the
// policy's names for them; a nil map means the tool echoes no source files
// (iptables-restore).
func showToolOutput(out []byte, staged map[string]string) string {
	lines := shownLines(out, staged)
	if len(lines) > maxShownLines {
		more := len(lines) - maxShownLines
		lines = append(lines[:maxShownLines], fmt.Sprintf("(%d more lines not shown)", more))
	}
	return strings.Join(lines, "\n")
}

// showScriptOutput returns the end of a script's output as it may be shown:
// a script fails at its end.
func showScriptOutput(out []byte, staged map[string]string) string {
	lines := shownLines(out, staged)
	if len(lines) > maxShownLines {
		earlier := len(lines) - maxShownLines
		lines = append([]string{fmt.Sprintf("(%d earlier lines not shown)", earlier)}, lines[earlier:]...)
	}
	if len(out) >= netns.MaxToolOutput {
		lines = append(lines, fmt.Sprintf("(output past %d MiB discarded)", netns.MaxToolOutput>>20))
	}
	return strings.Join(lines, "\n")
}

func shownLines(out []byte, staged map[string]string) []string {
	var lines []string
	hidden := false // inside an nft error about a file the policy does not name
	byLength := slices.Collect(maps.Keys(staged))
	slices.SortFunc(byLength, func(a, b string) int { return len(b) - len(a) }) // "/dev/fd/30" before "/dev/fd/3"
	for _, ln := range strings.Split(string(out), "\n") {
		ln = strings.TrimRight(printable(ln), " \t")
		if m := nftPlace.FindStringSubmatch(ln); m != nil && staged != nil {
			_, named := staged[m[1]]
			hidden = !named
		} else if strings.HasPrefix(ln, "In file included from ") {
			hidden = false
		} else if hidden {
			continue // a source line or caret marker from a file outside the policy
		}
		for _, inLab := range byLength {
			ln = strings.ReplaceAll(ln, inLab, staged[inLab])
		}
		if ln == "" {
			continue
		}
		if r := []rune(ln); len(r) > maxShownLine {
			ln = string(r[:maxShownLine]) + " ..."
		}
		lines = append(lines, ln)
	}
	return lines
}

// printable replaces control characters and invalid UTF-8, which could
// rewrite a terminal or a log, with '?'.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || (unicode.IsPrint(r) && r != unicode.ReplacementChar) {
			return r
		}
		return '?'
	}, s)
}

// NFTError is what may be shown of nft's refusal of a ruleset (out, its
// output) when nft ran outside a lab (lint's sandbox): staged maps the paths
// nft read to the names the user gave them. It returns the file and line of
// the first error (fallback and 0 when nft named none) and the message, cut
// and cleaned as a lab's tool output is.
func NFTError(out []byte, staged map[string]string, fallback string) (file string, line int, msg string) {
	file, line = nftErrorPlace(out, staged, fallback)
	return file, line, showToolOutput(out, staged)
}

// nftErrorPlace finds the file (the policy's name for it) and line of nft's
// first error in a file the policy names.
func nftErrorPlace(out []byte, staged map[string]string, fallback string) (string, int) {
	for _, ln := range bytes.Split(out, []byte("\n")) {
		m := nftPlace.FindSubmatch(ln)
		if m == nil || !bytes.Contains(ln, []byte(": Error")) {
			continue
		}
		if name, ok := staged[string(m[1])]; ok {
			if line, err := strconv.Atoi(string(m[2])); err == nil && line > 0 {
				return name, line
			}
		}
	}
	return fallback, 0
}

var iptablesLine = regexp.MustCompile(`(?i)line:? (\d+)`)

// iptablesErrorLine is the line iptables-restore names in its error, or 0.
func iptablesErrorLine(out []byte) int {
	if m := iptablesLine.FindSubmatch(out); m != nil {
		if line, err := strconv.Atoi(string(m[1])); err == nil && line > 0 {
			return line
		}
	}
	return 0
}
