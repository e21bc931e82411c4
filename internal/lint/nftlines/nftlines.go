package nftlines

import (
	"strings"
)

// Table is an nft table, by family and name.
type Table struct{ Family, Name string }

// Lines is where an nft file's tables, chains and rule statements start.
type Lines struct {
	Rules  map[Table][]int     // each table's rule statements, in file order
	Tables map[Table]int       // first line that names the table
	Chains map[[3]string][]int // family, table, chain -> lines that declare it
}

type token struct {
	Text string
	Line int
}

// tokens splits nft input into words, strings, braces and statement ends
// (";" and newlines, returned as ";").
func tokens(src string) []token {
	var out []token
	line := 1
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\\' && i+1 < len(src) && src[i+1] == '\n':
			i += 2
			line++
		case c == '\n':
			out = append(out, token{";", line})
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			out = append(out, token{string(c), line})
			i++
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' && src[j] != '\n' {
				j++
			}
			out = append(out, token{src[i:min(j+1, len(src))], line})
			i = j + 1
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\r\n;{}#\"", rune(src[j])) {
				j++
			}
			out = append(out, token{src[i:j], line})
			i = j
		}
	}
	return out
}

var nftFamilies = map[string]bool{"ip": true, "ip6": true, "inet": true, "arp": true, "bridge": true, "netdev": true}

// statement is the tokens up to the next ";" at depth zero; a "{ ... }"
// block that ends it is returned apart.
type statement struct {
	Words []token
	Block []token // inside the braces, when the statement opens a block
}

func statements(ts []token) []statement {
	var out []statement
	for i := 0; i < len(ts); {
		var st statement
		for i < len(ts) && ts[i].Text != ";" && ts[i].Text != "{" && ts[i].Text != "}" {
			st.Words = append(st.Words, ts[i])
			i++
		}
		if i < len(ts) && ts[i].Text == "{" {
			depth, start := 1, i+1
			for i++; i < len(ts) && depth > 0; i++ {
				switch ts[i].Text {
				case "{":
					depth++
				case "}":
					depth--
				}
			}
			st.Block = ts[start:max(start, i-1)]
			// A rule may go on after an anonymous set: { 22, 80 } accept.
			for i < len(ts) && ts[i].Text != ";" && ts[i].Text != "}" {
				if ts[i].Text == "{" {
					break
				}
				st.Words = append(st.Words, ts[i])
				i++
			}
		} else if i < len(ts) {
			i++
		}
		if len(st.Words) > 0 || st.Block != nil {
			out = append(out, st)
		}
	}
	return out
}

// Find finds the tables, chains and rule statements of an nft file.
func Find(src string) Lines {
	s := Lines{Rules: map[Table][]int{}, Tables: map[Table]int{}, Chains: map[[3]string][]int{}}
	for _, st := range statements(tokens(src)) {
		w := words(st.Words)
		if len(w) == 0 {
			continue
		}
		verb := w[0]
		if verb == "add" || verb == "create" || verb == "insert" {
			w = w[1:]
		}
		if len(w) == 0 {
			continue
		}
		switch w[0] {
		case "table":
			t, _ := familyName(w[1:])
			s.table(t, st.Words[0].Line)
			s.tableBlock(t, st.Block)
		case "chain":
			t, rest := familyName(w[1:])
			s.table(t, st.Words[0].Line)
			if len(rest) > 0 {
				s.chainBlock(t, rest[0], st.Words[0].Line, st.Block)
			}
		case "rule":
			t, _ := familyName(w[1:])
			s.table(t, st.Words[0].Line)
			s.Rules[t] = append(s.Rules[t], st.Words[0].Line)
		}
	}
	return s
}

func (s Lines) table(t Table, line int) {
	if _, ok := s.Tables[t]; !ok {
		s.Tables[t] = line
	}
}

func (s Lines) tableBlock(t Table, block []token) {
	for _, st := range statements(block) {
		w := words(st.Words)
		if len(w) >= 2 && w[0] == "chain" {
			s.chainBlock(t, w[1], st.Words[0].Line, st.Block)
		}
	}
}

// chainBlock records a chain's declaration and its rules: every statement
// but the chain's own settings.
func (s Lines) chainBlock(t Table, chain string, line int, block []token) {
	key := [3]string{t.Family, t.Name, chain}
	s.Chains[key] = append(s.Chains[key], line)
	for _, st := range statements(block) {
		w := words(st.Words)
		if len(w) == 0 {
			continue
		}
		switch w[0] {
		case "type", "policy", "comment", "devices", "device", "flags":
			continue
		}
		s.Rules[t] = append(s.Rules[t], st.Words[0].Line)
	}
}

// familyName reads "[family] name" and returns what follows.
func familyName(w []string) (Table, []string) {
	if len(w) >= 2 && nftFamilies[w[0]] {
		return Table{w[0], w[1]}, w[2:]
	}
	if len(w) >= 1 {
		return Table{"ip", w[0]}, w[1:] // nft's default family
	}
	return Table{}, nil
}

func words(ts []token) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Text
	}
	return out
}
