package rulesetfile

import (
	"slices"
	"strings"
)

// The tools resolve an owner match's user or group name through the lab's
// /etc/passwd and /etc/group, which hold the policy's users and groups only.
// A name the policy lacks gets iptables-restore's bare "Bad value for
// --uid-owner" or nft's "Could not resolve user name"; so names are checked
// here first, and the error says which name and what to add.

// OwnerName is a user or group name (not a number) an owner match gives.
type OwnerName struct {
	Name   string
	Group  bool   // --gid-owner or skgid
	Option string // as written: --uid-owner, --gid-owner, skuid or skgid
	Line   int
	Column int
}

var ownerOptions = map[string]bool{"--uid-owner": false, "--gid-owner": true, "skuid": false, "skgid": true}

// OwnerNames finds the names that owner matches give in a ruleset's text:
// iptables' --uid-owner and --gid-owner, nft's skuid and skgid (a name, a
// quoted name or a { set }). Numbers, ranges and variables ($x, @set) are
// left alone: nothing resolves them through passwd.
func OwnerNames(data []byte) []OwnerName {
	var found []OwnerName
	for i, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		toks := ownerTokens(line)
		for t := 0; t < len(toks); t++ {
			group, ok := ownerOptions[toks[t].text]
			if !ok {
				continue
			}
			option := toks[t].text
			t++
			for t < len(toks) && slices.Contains([]string{"!", "!=", "==", "eq", "ne"}, toks[t].text) {
				t++
			}
			values := toks[min(t, len(toks)):min(t+1, len(toks))]
			if t < len(toks) && toks[t].text == "{" {
				end := t + 1
				for end < len(toks) && toks[end].text != "}" {
					end++
				}
				values, t = toks[t+1:end], end
			}
			for _, v := range values {
				if name := strings.Trim(v.text, `"'`); isOwnerName(name) {
					found = append(found, OwnerName{Name: name, Group: group, Option: option, Line: i + 1, Column: v.col})
				}
			}
		}
	}
	return found
}

type ownerToken struct {
	text string
	col  int // 1-based, in bytes
}

// ownerTokens splits a line at blanks, commas and semicolons, with braces
// as tokens of their own.
func ownerTokens(line string) []ownerToken {
	var toks []ownerToken
	start := -1
	flush := func(end int) {
		if start >= 0 {
			toks = append(toks, ownerToken{line[start:end], start + 1})
			start = -1
		}
	}
	for i := 0; i < len(line); i++ {
		switch c := line[i]; c {
		case ' ', '\t', '\r', ',', ';':
			flush(i)
		case '{', '}':
			flush(i)
			toks = append(toks, ownerToken{string(c), i + 1})
		default:
			if start < 0 {
				start = i
			}
		}
	}
	flush(len(line))
	return toks
}

// isOwnerName is a word passwd would have to resolve: not a number or a
// range of numbers, not a variable or set reference.
func isOwnerName(s string) bool {
	if s == "" || strings.ContainsAny(s, "$@`(){}[]\\") {
		return false
	}
	return strings.Trim(s, "0123456789-") != ""
}
