package listing

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/egresslab/egresslab/scenarios/classes/space"
)

// Reading iptables-save texts (legacy and nft flavours alike) and ipset save.

// ipset is one set of `ipset save`, as the dimension it holds.
type ipset struct {
	kind   string // "addr", "port", or "" for a set the lab cannot split
	family space.Family
	spans  []space.Span
}

func readIPSets(text []byte) (map[string]*ipset, error) {
	out := map[string]*ipset{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		switch f[0] {
		case "create":
			s := &ipset{family: space.IPv4}
			switch f[2] {
			case "hash:ip", "hash:net", "bitmap:ip":
				s.kind = "addr"
			case "bitmap:port", "hash:port":
				s.kind = "port"
			}
			for i := 3; i+1 < len(f); i++ {
				if f[i] == "family" && f[i+1] == "inet6" {
					s.family = space.IPv6
				}
			}
			out[f[1]] = s
		case "add":
			s, ok := out[f[1]]
			if !ok {
				return nil, fmt.Errorf("ipset save line %d: add to %s, which was not created", n, f[1])
			}
			switch s.kind {
			case "addr":
				v := f[2]
				if a, z, ok := strings.Cut(v, "-"); ok { // bitmap:ip and hash:ip ranges
					_, lo, err1 := parseAddrOrPrefix(a)
					_, hi, err2 := parseAddrOrPrefix(z)
					if err1 != nil || err2 != nil {
						return nil, fmt.Errorf("ipset save line %d: address range %q", n, v)
					}
					s.spans = append(s.spans, space.Span{First: lo.First, Last: hi.Last})
					continue
				}
				_, sp, err := parseAddrOrPrefix(v)
				if err != nil {
					return nil, fmt.Errorf("ipset save line %d: %v", n, err)
				}
				s.spans = append(s.spans, sp)
			case "port":
				sp, err := parsePortRange(strings.TrimPrefix(strings.TrimPrefix(f[2], "tcp:"), "udp:"))
				if err != nil {
					return nil, fmt.Errorf("ipset save line %d: %v", n, err)
				}
				s.spans = append(s.spans, sp)
			}
		}
	}
	return out, sc.Err()
}

// saveWords splits a save line as the shell would: iptables-save quotes
// comments and strings.
func saveWords(line string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			inQuote, have = !inQuote, true
		case (c == ' ' || c == '\t') && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// readSave adds the rules of an iptables-save text; tool names its flavour
// and family ("iptables-legacy", "ip6tables-nft"). It returns the tables the
// text holds.
func (rs *Ruleset) readSave(tool string, fam space.Family, text []byte, ipsets map[string]*ipset) ([]string, error) {
	type line struct {
		n     int
		chain string
		words []string
		text  string
	}
	var tables []string
	var table string
	var rules []line
	jumps := map[[3]string][][3]string{}
	dirs := map[[3]string]direction{}
	base := map[[3]string]bool{}
	family := "ip"
	if fam == space.IPv6 {
		family = "ip6"
	}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	flush := func() {
		for _, l := range rules {
			ck := [3]string{family, table, l.chain}
			ref := RuleRef{Tool: tool, Family: family, Table: table, Chain: l.chain, Line: l.n, Text: l.text}
			for _, d := range directions {
				if dirs[ck]&d != 0 {
					b := newRuleBuilder(ref, fam, d)
					b.saveArgs(l.words, ipsets)
					rs.add(b)
				}
			}
		}
		rules = nil
	}
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		switch {
		case text == "" || strings.HasPrefix(text, "#"):
		case strings.HasPrefix(text, "*"):
			table = text[1:]
			tables = append(tables, table)
		case strings.HasPrefix(text, ":"):
			name := strings.Fields(text[1:])[0]
			if d, ok := hookDirection(strings.ToLower(name)); ok {
				k := [3]string{family, table, name}
				base[k] = true
				dirs[k] = d
			}
		case text == "COMMIT":
			dirs = chainDirections(dirs, base, jumps)
			flush()
			jumps, dirs, base = map[[3]string][][3]string{}, map[[3]string]direction{}, map[[3]string]bool{}
		case strings.HasPrefix(text, "-A "):
			w := saveWords(text)
			if len(w) < 2 {
				return nil, fmt.Errorf("%s-save line %d: -A without a chain", tool, n)
			}
			rules = append(rules, line{n: n, chain: w[1], words: w[2:], text: text})
			for i := 2; i+1 < len(w); i++ {
				if w[i] == "-j" || w[i] == "-g" || w[i] == "--jump" || w[i] == "--goto" {
					from := [3]string{family, table, w[1]}
					jumps[from] = append(jumps[from], [3]string{family, table, w[i+1]})
				}
			}
		default:
			return nil, fmt.Errorf("%s-save line %d: unexpected %q (want *table, :chain, -A or COMMIT)", tool, n, text)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s-save: %w", tool, err)
	}
	if len(rules) > 0 {
		return nil, fmt.Errorf("%s-save: table %s has no COMMIT", tool, table)
	}
	return tables, nil
}

// Modules whose matches are the same for every probe of a class: the first
// packet of a connection, a SYN, a socket that exists, a comment.
var neutralModules = map[string]bool{"tcp": true, "udp": true, "state": true, "comment": true, "owner": true, "multiport": true, "set": true, "iprange": true, "conntrack": true}

// saveArgs reads the words of a rule after "-A CHAIN".
func (b *ruleBuilder) saveArgs(w []string, ipsets map[string]*ipset) {
	negate := false
	module := ""
	arg := func(i int) string {
		if i < len(w) {
			return w[i]
		}
		return ""
	}
	for i := 0; i < len(w); i++ {
		word := w[i]
		if word == "!" {
			negate = true
			continue
		}
		switch word {
		case "-j", "--jump", "-g", "--goto":
			return // the target's options follow: they match nothing
		case "-p", "--protocol":
			b.protos(arg(i+1), negate)
			i++
		case "-d", "--destination", "-s", "--source":
			for _, a := range strings.Split(arg(i+1), ",") {
				f, sp, err := parseAddrOrPrefix(a)
				if err != nil {
					b.unsplit(word + " " + err.Error())
					continue
				}
				b.addrs(f, space.Set{sp}, negate, word == "-d" || word == "--destination", word+" "+a)
			}
			i++
		case "-o", "--out-interface", "-i", "--in-interface":
			neg := ""
			if negate {
				neg = "! "
			}
			b.ifaceName(word == "-i" || word == "--in-interface", arg(i+1), negate, neg+word+" "+arg(i+1))
			i++
		case "-f", "--fragment":
			b.unsplit("-f")
		case "-m", "--match":
			module = arg(i + 1)
			if !neutralModules[module] {
				b.unsplit("-m " + module)
			}
			i++
		case "--dport", "--destination-port", "--sport", "--source-port", "--dports", "--destination-ports", "--sports", "--source-ports", "--ports":
			var spans []space.Span
			for _, p := range strings.Split(arg(i+1), ",") {
				sp, err := parsePortRange(p)
				if err != nil {
					b.unsplit(word + " " + err.Error())
					continue
				}
				spans = append(spans, sp)
			}
			dst := strings.HasPrefix(word, "--d")
			if word == "--ports" {
				b.unsplit("-m multiport --ports (either port)")
				dst = true
			}
			b.port(space.Normalize(spans), negate, dst, word)
			i++
		case "--uid-owner", "--gid-owner":
			s, err := parseIDRange(arg(i + 1))
			if err != nil {
				b.unsplit(word + " " + err.Error())
			} else if word == "--uid-owner" {
				b.uids(s, negate)
			} else {
				b.gids(s, negate)
			}
			i++
		case "--suppl-groups":
			b.rule.SupplGroups = true
		case "--match-set":
			name, flags := arg(i+1), arg(i+2)
			b.matchSet(name, flags, negate, ipsets)
			i += 2
		case "--dst-range", "--src-range":
			a, z, _ := strings.Cut(arg(i+1), "-")
			f, lo, err1 := parseAddrOrPrefix(a)
			_, hi, err2 := parseAddrOrPrefix(z)
			if err1 != nil || err2 != nil {
				b.unsplit(word + " " + arg(i+1))
			} else {
				b.addrs(f, space.Set{{First: lo.First, Last: hi.Last}}, negate, word == "--dst-range", word)
			}
			i++
		case "--state", "--ctstate", "--tcp-flags", "--syn", "--comment", "--socket-exists", "--ctdir":
			// the same for every probe's first packet and every answer
			if word == "--tcp-flags" {
				i += 2
			} else if word != "--syn" && word != "--socket-exists" {
				i++
			}
		default:
			if neutralModules[module] && strings.HasPrefix(word, "--") {
				b.unsplit("-m " + module + " " + word)
			}
			// an unsplit module's own options: already named by its -m
		}
		negate = false
	}
}

// matchSet reads `-m set --match-set NAME dst` against ipset save.
func (b *ruleBuilder) matchSet(name, flags string, negate bool, ipsets map[string]*ipset) {
	s, ok := ipsets[name]
	what := "-m set --match-set " + name + " " + flags
	switch {
	case !ok:
		b.unsplit(what + " (no ipset save names it)")
		return
	case s.kind == "" || strings.Contains(flags, ","):
		b.unsplit(what + " (a set of several dimensions)")
		return
	}
	dst := flags == "dst"
	if s.kind == "addr" {
		b.addrs(s.family, space.Normalize(s.spans), negate, dst, what)
	} else {
		b.port(space.Normalize(s.spans), negate, dst, what)
	}
}
