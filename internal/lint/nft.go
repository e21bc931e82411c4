package lint

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"

	"github.com/egresslab/egresslab/internal/nftlist"
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
func loadNFT(ctx context.Context, sb sandbox, src Source) (*nftRuleset, error) {
	out, err := sb.run(ctx, src.Data, "sh", "-c", "nft -f /dev/stdin && nft -j list ruleset && exec nft -a -s list ruleset")
	if err != nil {
		return nil, rulesetError(err, src, "nft")
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
	placeLines(rs, sourceRules(string(src.Data)))
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

// placeLines gives each rule and chain its source line (see sourceRules).
func placeLines(rs *nftRuleset, src nftSource) {
	byTable := map[tableKey][]*nftRule{}
	for _, c := range rs.Chains {
		t := tableKey{c.Family, c.Table}
		if lines := src.ChainLines[[3]string{c.Family, c.Table, c.Name}]; len(lines) > 0 {
			c.Line = lines[0]
		} else {
			c.Line = src.TableLines[t]
		}
		byTable[t] = append(byTable[t], c.Rules...)
	}
	for t, rules := range byTable {
		sort.Slice(rules, func(i, j int) bool { return rules[i].Handle < rules[j].Handle })
		lines := src.RuleLines[t]
		for i, r := range rules {
			if len(lines) == len(rules) {
				r.Line = lines[i]
			} else {
				r.Line = src.TableLines[t]
			}
		}
	}
}
