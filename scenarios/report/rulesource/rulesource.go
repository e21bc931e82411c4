package rulesource

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/egresslab/egresslab/netns/trace"
	"github.com/egresslab/egresslab/scenarios/policy"
)

// Source is where a rule was written: a file of the candidate ruleset and
// its line.
type Source struct {
	File string `json:"file"` // as the user can open it: the policy's directory joined with the ruleset path
	Line int    `json:"line"` // 1-based
	text string // the statement written there, to check it against the kernel's rule
}

func (s Source) String() string { return s.File + ":" + strconv.Itoa(s.Line) }

// Sources maps "family table chain" to where each rule of the chain was
// written, by its 1-based position (index 0 is the chain's policy line).
type Sources map[string][]Source

// Read replays the policy's ruleset files. A chain whose order the
// replay cannot know exactly is left out.
func Read(p *policy.Policy) Sources {
	src := Sources{}
	if p.Ruleset.Script != nil {
		return src // a script may do anything, in any order
	}
	dir := filepath.Dir(p.File)
	if rs := p.Ruleset.IPTables; rs != nil {
		replayRestore(src, "ip", filepath.Join(dir, rs.Path), rs.Data)
	}
	if rs := p.Ruleset.IP6Tables; rs != nil {
		replayRestore(src, "ip6", filepath.Join(dir, rs.Path), rs.Data)
	}
	if rs := p.Ruleset.NFT; rs != nil {
		replayNFT(src, filepath.Join(dir, rs.Path), rs.Data)
	}
	return src
}

// of is where r was written, when known exactly. The line found must
// carry the rule's verdict (accept, drop, reject) or, for a chain's policy,
// be its policy line: otherwise the replay and the kernel disagree, and no
// line beats a wrong one.
func (s Sources) Of(r *trace.Rule) (Source, bool) {
	if r == nil || r.Untraced != "" {
		return Source{}, false
	}
	lines, ok := s[r.Family+" "+r.Table+" "+r.Chain]
	pos := r.Position
	if r.Policy {
		pos = 0
	}
	if !ok || (pos == 0 && !r.Policy) || pos >= len(lines) || lines[pos].Line == 0 {
		return Source{}, false
	}
	at := lines[pos]
	if v := r.Verdict; v != "" && !carries(strings.ToLower(at.text), v) {
		return Source{}, false
	}
	return at, true
}

// carries reports whether a line of the ruleset can give the verdict the
// kernel traced: a reject rule's is the drop that follows its answer.
func carries(line, verdict string) bool {
	return strings.Contains(line, verdict) || verdict == "drop" && strings.Contains(line, "reject")
}

// replayRestore follows an iptables-restore file: each table it names is
// flushed and rebuilt, in line order.
func replayRestore(src Sources, family, file string, data []byte) {
	table := ""
	key := func(chain string) string { return family + " " + table + " " + chain }
	for i, ln := range strings.Split(string(data), "\n") {
		at := Source{File: file, Line: i + 1, text: ln}
		f := strings.Fields(ln)
		if len(f) > 0 && strings.HasPrefix(f[0], "[") { // -c counters: [packets:bytes] -A ...
			f = f[1:]
		}
		switch {
		case len(f) == 0 || strings.HasPrefix(f[0], "#") || f[0] == "COMMIT":
		case strings.HasPrefix(f[0], "*"):
			table = f[0][1:]
		case strings.HasPrefix(f[0], ":"):
			src[key(f[0][1:])] = []Source{at} // the chain's policy line
			if len(f) > 1 && f[1] == "-" {
				src[key(f[0][1:])][0] = Source{} // a user chain has none
			}
		case len(f) < 2:
		case src[key(f[1])] == nil:
			// a chain the file did not declare, or whose order is lost
		case f[0] == "-A" || f[0] == "--append":
			src[key(f[1])] = append(src[key(f[1])], at)
		case f[0] == "-I" || f[0] == "--insert":
			rules, n := src[key(f[1])], 1
			if len(f) > 2 {
				if v, err := strconv.Atoi(f[2]); err == nil {
					n = v
				}
			}
			if n < 1 || n > len(rules) {
				delete(src, key(f[1]))
				continue
			}
			src[key(f[1])] = append(rules[:n], append([]Source{at}, rules[n:]...)...)
		case f[0] == "-F" || f[0] == "--flush":
			src[key(f[1])] = src[key(f[1])][:1]
		case (f[0] == "-R" || f[0] == "--replace") && len(f) > 2:
			rules := src[key(f[1])]
			if n, err := strconv.Atoi(f[2]); err == nil && n >= 1 && n < len(rules) {
				rules[n] = at
				continue
			}
			delete(src, key(f[1]))
		default: // -D by rule text, -X, -E ...: the order is no longer known
			delete(src, key(f[1]))
		}
	}
}

// replayNFT follows an nft file's blocks and commands. A rule is a
// statement of a chain block (one that spans lines, a multi-line set say,
// is its first line), or an `add rule` command; `insert rule` puts one
// first. Anything that places or removes rules otherwise (position, index,
// handle, delete, replace, flush of less than the ruleset), or an include,
// leaves every chain inexact.
func replayNFT(into Sources, file string, data []byte) {
	src := Sources{}
	type block struct{ kind, family, name string }
	var stack []block
	top := func() block {
		if len(stack) == 0 {
			return block{}
		}
		return stack[len(stack)-1]
	}
	inexact := false
	chainKey := func() string {
		t, c := stack[len(stack)-2], stack[len(stack)-1]
		return t.family + " " + t.name + " " + c.name
	}
	emit := func(stmt string, at Source) {
		at.text = stmt
		f := strings.Fields(stmt)
		if len(f) == 0 {
			return
		}
		if top().kind == "chain" {
			k := chainKey()
			switch f[0] {
			case "type", "comment", "devices", "device":
			case "policy":
				src[k][0] = at
			default:
				src[k] = append(src[k], at)
			}
			return
		}
		if len(stack) > 0 {
			return // a set's or map's insides
		}
		switch {
		case (f[0] == "add" || f[0] == "insert") && len(f) > 4 && f[1] == "rule":
			fam, tab, ch, rest := "ip", f[2], f[3], f[4:]
			if len(f) > 5 && isNFTFamily(f[2]) {
				fam, tab, ch, rest = f[2], f[3], f[4], f[5:]
			}
			k := fam + " " + tab + " " + ch
			if rest[0] == "position" || rest[0] == "index" || rest[0] == "handle" {
				inexact = true
				return
			}
			if len(src[k]) == 0 {
				src[k] = []Source{{}}
			}
			if f[0] == "insert" {
				src[k] = append(src[k][:1], append([]Source{at}, src[k][1:]...)...)
			} else {
				src[k] = append(src[k], at)
			}
		case f[0] == "flush" && len(f) > 1 && f[1] == "ruleset":
			clear(src)
			clear(into) // the iptables files' rules too: they live in the same kernel tables
		case f[0] == "include" || f[0] == "delete" || f[0] == "destroy" || f[0] == "replace" || f[0] == "flush":
			inexact = true
		}
	}
	// header opens a block: a table or chain (with add or create before
	// it), or anything else (a set, a map) whose insides are not rules.
	header := func(h string) block {
		f := strings.Fields(h)
		if len(f) > 0 && (f[0] == "add" || f[0] == "create") {
			f = f[1:]
		}
		switch {
		case len(stack) == 0 && len(f) >= 1 && f[0] == "chain":
			inexact = true // a chain block outside its table: not followed
		case len(stack) == 0 && len(f) >= 2 && f[0] == "table":
			if len(f) >= 3 && isNFTFamily(f[1]) {
				return block{"table", f[1], f[2]}
			}
			return block{"table", "ip", f[1]}
		case top().kind == "table" && len(f) >= 2 && f[0] == "chain":
			return block{"chain", "", f[len(f)-1]}
		}
		return block{kind: "other"}
	}
	var cur strings.Builder
	var start Source
	depth := 0 // braces open inside the statement (an anonymous set)
	for i, ln := range strings.Split(string(data), "\n") {
		if j := strings.IndexByte(ln, '#'); j >= 0 && !strings.Contains(ln[:j], `"`) {
			ln = ln[:j]
		}
		ln, continued := strings.CutSuffix(strings.TrimRight(ln, " \t"), "\\")
		for _, c := range ln {
			if strings.TrimSpace(cur.String()) == "" && c != ' ' && c != '\t' {
				start = Source{File: file, Line: i + 1}
			}
			switch {
			case c == '{' && depth == 0 && top().kind != "chain":
				b := header(cur.String())
				stack = append(stack, b)
				if k := ""; b.kind == "chain" {
					if k = chainKey(); src[k] == nil {
						src[k] = []Source{{}}
					}
				}
				cur.Reset()
			case c == '{':
				depth++
				cur.WriteRune(c)
			case c == '}' && depth > 0:
				depth--
				cur.WriteRune(c)
			case c == '}':
				emit(cur.String(), start)
				cur.Reset()
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
			case c == ';' && depth == 0:
				emit(cur.String(), start)
				cur.Reset()
			default:
				cur.WriteRune(c)
			}
		}
		if depth == 0 && !continued {
			emit(cur.String(), start)
			cur.Reset()
		} else {
			cur.WriteRune(' ')
		}
	}
	if inexact {
		clear(into) // what the nft file did to the iptables files' chains is not known either
		return
	}
	for k, v := range src {
		if into[k] != nil {
			delete(into, k) // a chain both files wrote: which order, the trace alone knows
			continue
		}
		into[k] = v
	}
}

func isNFTFamily(s string) bool {
	switch s {
	case "ip", "ip6", "inet", "arp", "bridge", "netdev":
		return true
	}
	return false
}
