package lint

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/egresslab/egresslab/internal/lint/nftlines"
	"github.com/egresslab/egresslab/internal/nftlist"
	"github.com/egresslab/egresslab/netns/ruleset"
	"github.com/egresslab/egresslab/netns/ruleset/nftinclude"
	"golang.org/x/sys/unix"
)

// nftRule is one rule as nft reads it back: its expressions (JSON) for the
// checks, its text for people.
type nftRule struct {
	Family, Table, Chain string
	Handle               int
	Expr                 []any
	Text                 string
	Line                 int
}

// nftChain is a chain; base chains have a hook and a policy.
type nftChain struct {
	Family, Table, Name string
	Hook, Policy        string
	Line                int
	Rules               []*nftRule
}

type nftRuleset struct {
	File   string
	Chains []*nftChain
}

// loadNFT loads one file with `nft -f` in a sandbox and reads it back twice:
// `nft -j list ruleset` (one line of JSON) for the checks and `nft -a -s
// list ruleset` for the rule text (without counters), joined by handle.
// nft would look for included files in the host's /etc first, so each
// include it may read is handed over as an anonymous file (/dev/fd/N) and
// every include statement is rewritten to name one of them.
func loadNFT(ctx context.Context, sb sandbox, src Source) (*nftRuleset, error) {
	shown := map[string]string{"/dev/stdin": src.Path} // what nft reads -> the user's name for it
	fdOf := map[string]string{}
	var extra []*os.File
	defer func() {
		for _, f := range extra {
			f.Close()
		}
	}()
	for i, inc := range src.Includes {
		fd := fmt.Sprintf("/dev/fd/%d", 3+i)
		fdOf[path.Clean(inc.Path)] = fd
		shown[fd] = filepath.Join(filepath.Dir(src.Path), filepath.FromSlash(inc.Path))
	}
	rewrite := func(data []byte) []byte {
		return nftinclude.Rewrite(data, func(p string) string {
			if fd, ok := fdOf[path.Clean(p)]; ok {
				return fd
			}
			return "/nonexistent/egresslab-include-not-read" // an include rulesetfile.NFTIncludes did not read
		})
	}
	for _, inc := range src.Includes {
		f, err := memoryFile(inc.Path, rewrite(inc.Data))
		if err != nil {
			return nil, fmt.Errorf("lint %s: hand over include %s: %w", src.Path, inc.Path, err)
		}
		extra = append(extra, f)
	}
	out, err := sb.runWith(ctx, rewrite(src.Data), extra, "sh", "-c", "nft -f /dev/stdin && nft -j list ruleset && exec nft -a -s list ruleset")
	if err != nil {
		var te *toolError
		if errors.As(err, &te) {
			file, line, msg := ruleset.NFTError([]byte(te.Out), shown, src.Path)
			return nil, &RulesetError{File: file, Line: line, Tool: "nft", Msg: msg}
		}
		return nil, err
	}
	js, text, _ := bytes.Cut(out, []byte("\n"))
	rs, err := parseNFTJSON(js)
	if err != nil {
		return nil, fmt.Errorf("read back %s: nft -j: %w", src.Path, err)
	}
	rs.File = src.Path
	texts := nftlist.RuleTexts(string(text))
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			r.Text = texts[nftlist.Key(r.Family, r.Table, r.Chain, r.Handle)]
		}
	}
	placeLines(rs, nftlines.Find(string(src.Data)))
	return rs, nil
}

var nftLine = regexp.MustCompile(`(?m)^[^:\n]*:(\d+):[\d-]+: `)

func parseNFTJSON(js []byte) (*nftRuleset, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	rs := &nftRuleset{}
	chains := map[string]*nftChain{}
	for _, obj := range doc.Nftables {
		if raw, ok := obj["chain"]; ok {
			var c struct {
				Family, Table, Name, Hook, Policy string
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				return nil, err
			}
			ch := &nftChain{Family: c.Family, Table: c.Table, Name: c.Name, Hook: c.Hook, Policy: c.Policy}
			chains[c.Family+" "+c.Table+" "+c.Name] = ch
			rs.Chains = append(rs.Chains, ch)
		}
		if raw, ok := obj["rule"]; ok {
			var r struct {
				Family, Table, Chain string
				Handle               int
				Expr                 []any
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return nil, err
			}
			if ch := chains[r.Family+" "+r.Table+" "+r.Chain]; ch != nil {
				ch.Rules = append(ch.Rules, &nftRule{Family: r.Family, Table: r.Table, Chain: r.Chain, Handle: r.Handle, Expr: r.Expr})
			}
		}
	}
	return rs, nil
}

// placeLines gives each rule and chain its source line (see nftlines.Find).
func placeLines(rs *nftRuleset, src nftlines.Lines) {
	byTable := map[nftlines.Table][]*nftRule{}
	for _, c := range rs.Chains {
		t := nftlines.Table{Family: c.Family, Name: c.Table}
		if lines := src.Chains[[3]string{c.Family, c.Table, c.Name}]; len(lines) > 0 {
			c.Line = lines[0]
		} else {
			c.Line = src.Tables[t]
		}
		byTable[t] = append(byTable[t], c.Rules...)
	}
	for t, rules := range byTable {
		sort.Slice(rules, func(i, j int) bool { return rules[i].Handle < rules[j].Handle })
		lines := src.Rules[t]
		for i, r := range rules {
			if len(lines) == len(rules) {
				r.Line = lines[i]
			} else {
				r.Line = src.Tables[t]
			}
		}
	}
}

// memoryFile is an anonymous file holding data, for the sandbox to read.
func memoryFile(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
