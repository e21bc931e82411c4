package lint

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// iptables files keep their lines through the real tool by riding on a
// comment: every rule line gets "-m comment --comment egresslab-line:N"
// appended, and the save tool gives each rule back with the line it came
// from; lint takes the comment off again. A line that the tool expands into
// several rules (-s a,b) gives each of them the same line. No line is added
// or removed, so the tool's own error messages keep their line numbers.
// (Packet counters, `restore -c`, would carry them too, but ip6tables-nft
// 1.8.9 drops them.)

const lineTag = "egresslab-line:"

var counterPrefix = regexp.MustCompile(`^\s*\[\d+:\d+\]\s*`)

var lineComment = regexp.MustCompile(` ?-m comment --comment "?` + lineTag + `(\d+)"?`)

// numberRuleLines tags each rule line with its number.
func numberRuleLines(data []byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if isRuleCommand(counterPrefix.ReplaceAllString(line, "")) {
			line = fmt.Sprintf("%s -m comment --comment %s%d", strings.TrimRight(line, " \t\r"), lineTag, n)
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes()
}

func isRuleCommand(s string) bool {
	f := strings.Fields(s)
	if len(f) == 0 {
		return false
	}
	switch f[0] {
	case "-A", "--append", "-I", "--insert", "-R", "--replace":
		return true
	}
	return false
}

// ipRule is one rule as iptables-save prints it.
type ipRule struct {
	Table, Chain string
	Line         int      // of the source line that made it
	Args         []string // the words after "-A CHAIN"
}

// Text is the rule as iptables-save prints it.
func (r ipRule) Text() string { return "-A " + r.Chain + " " + strings.Join(r.Args, " ") }

// ipChain is a chain with its policy ("-" for a user chain) and rules in order.
type ipChain struct {
	Table, Name, Policy string
	Line                int // of its ":NAME POLICY" line in the source, 0 if none
	Rules               []ipRule
}

// ipRuleset is one family's iptables ruleset, read back.
type ipRuleset struct {
	File   string
	IPv6   bool
	Chains []*ipChain // in save order
}

func (rs *ipRuleset) chain(table, name string) *ipChain {
	for _, c := range rs.Chains {
		if c.Table == table && c.Name == name {
			return c
		}
	}
	return nil
}

// loadIPTables loads one file with the real restore tool in a sandbox and
// reads it back with the matching save tool.
func loadIPTables(ctx context.Context, sb sandbox, src Source, backend string) (*ipRuleset, error) {
	name := "iptables"
	if src.Kind == IP6Tables {
		name = "ip6tables"
	}
	script := fmt.Sprintf("%[1]s-%[2]s-restore && exec %[1]s-%[2]s-save", name, backend)
	out, err := sb.run(ctx, numberRuleLines(src.Data), "sh", "-c", script)
	if err != nil {
		return nil, rulesetError(err, src, name+"-restore")
	}
	rs := parseSave(out, src.Kind == IP6Tables)
	rs.File = src.Path
	declared := chainLines(src.Data)
	for _, c := range rs.Chains {
		c.Line = declared[c.Table+"/"+c.Name]
	}
	return rs, nil
}

var toolLine = regexp.MustCompile(`(?i)line:? (\d+)`)

// rulesetError turns a tool's refusal into a RulesetError naming the file.
func rulesetError(err error, src Source, tool string) error {
	te, ok := err.(*toolError)
	if !ok {
		return err
	}
	line := 0
	if m := toolLine.FindStringSubmatch(te.Out); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	if m := nftLine.FindStringSubmatch(te.Out); m != nil && tool == "nft" {
		line, _ = strconv.Atoi(m[1])
	}
	if os.Geteuid() != 0 && strings.Contains(te.Out, "RULE_APPEND failed (Invalid argument)") && ownerLine(src.Data, line) {
		// Not the file's fault: without root the sandbox maps only the
		// caller's uid, and the kernel refuses owner matches on any other.
		return &UnavailableError{What: "root to load " + src.Path + " line " + strconv.Itoa(line),
			Fix: "an iptables owner match on another uid only loads where that uid is mapped: run egresslab lint as root"}
	}
	return &RulesetError{File: src.Path, Line: line, Tool: tool, Msg: strings.ReplaceAll(te.Out, "/dev/stdin", src.Path)}
}

func ownerLine(data []byte, line int) bool {
	lines := strings.Split(string(data), "\n")
	return line > 0 && line <= len(lines) && strings.Contains(lines[line-1], "-owner")
}

// parseSave reads iptables-save output.
func parseSave(out []byte, ipv6 bool) *ipRuleset {
	rs := &ipRuleset{IPv6: ipv6}
	table := ""
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) >= 2 {
				rs.Chains = append(rs.Chains, &ipChain{Table: table, Name: f[0], Policy: f[1]})
			}
		case strings.HasPrefix(line, "-A "):
			n := 0
			if m := lineComment.FindStringSubmatch(line); m != nil {
				n, _ = strconv.Atoi(m[1])
				line = strings.Replace(line, m[0], "", 1)
			}
			words := splitWords(line)
			if len(words) < 2 || words[0] != "-A" {
				continue
			}
			r := ipRule{Table: table, Chain: words[1], Line: n, Args: words[2:]}
			if c := rs.chain(table, r.Chain); c != nil {
				c.Rules = append(c.Rules, r)
			}
		}
	}
	return rs
}

// chainLines finds each ":CHAIN" declaration's line, by table.
func chainLines(data []byte) map[string]int {
	lines := map[string]int{}
	table := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			table = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, ":"):
			if f := strings.Fields(line[1:]); len(f) > 0 {
				lines[table+"/"+f[0]] = i + 1
			}
		}
	}
	return lines
}

// splitWords splits a saved rule into words, keeping "quoted strings" whole.
func splitWords(s string) []string {
	var words []string
	var cur strings.Builder
	quoted, inWord := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && quoted && i+1 < len(s):
			cur.WriteByte(c)
			cur.WriteByte(s[i+1])
			i++
		case c == '"':
			quoted, inWord = !quoted, true
			cur.WriteByte(c)
		case (c == ' ' || c == '\t') && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
