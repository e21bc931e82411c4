package listing

import (
	"fmt"
	"slices"

	"github.com/egresslab/egresslab/scenarios/classes/space"
)

// Listings are the ruleset as the lab holds it after the candidate ran, each
// as its tool prints it. Any may be empty.
type Listings struct {
	NFT []byte // nft -j list ruleset
	// iptables-nft-save and ip6tables-nft-save: nft's JSON names the xt
	// matches of iptables-nft (owner, multiport, set, ...) without their
	// values, so a table these texts hold is read from them instead.
	IPTablesNFT, IP6TablesNFT []byte
	// iptables-legacy-save and ip6tables-legacy-save: rules nft cannot see.
	IPTablesLegacy, IP6TablesLegacy []byte
	IPSet                           []byte // ipset save, for legacy `-m set` rules
}

// Ruleset is every rule of the listings, by what it matches.
type Ruleset struct {
	Rules []Rule
	// Forward are the rules as a forwarded packet meets them (forward.go):
	// split only for a lab that routes for networks.
	Forward        []Rule
	ForwardUnsplit []Unsplit
	// Unsplit lists every match that cannot be split, with its rule.
	Unsplit []Unsplit
	// Notes are matches read but not split on, and rules no probe can meet.
	Notes []Note
}

// RuleRef names a rule as its listing shows it.
type RuleRef struct {
	Tool   string // "nft", "iptables-nft", "ip6tables-legacy", ...
	Family string // nft's table family: ip, ip6, inet (iptables: ip or ip6)
	Table  string
	Chain  string
	Handle int    // nft's rule handle; 0 for a save line
	Line   int    // the line of a save text; 0 for nft's JSON
	Text   string // the save line, or nft's expressions in brief
}

func (r RuleRef) String() string {
	if r.Handle != 0 {
		return fmt.Sprintf("%s %s %s %s handle %d", r.Tool, r.Family, r.Table, r.Chain, r.Handle)
	}
	return fmt.Sprintf("%s line %d: %s", r.Tool, r.Line, r.Text)
}

// Unsplit is a match the lab cannot split into classes: what it looks at
// depends on state (marks, conntrack helpers, rates, earlier packets) or on
// something other than the probe's cell.
type Unsplit struct {
	Match string // as the listing names it: "-m limit", "ct helper", "meta mark"
	Rule  RuleRef
}

// Note is a match read but not split on (an output interface, a source
// address the lab chooses) or a rule left out (a protocol the lab does not
// probe).
type Note struct {
	What string
	Rule RuleRef
}

// Rule is what one rule matches on each dimension. A nil set matches the
// whole dimension.
type Rule struct {
	Ref      RuleRef
	Families space.Family
	Protos   space.Proto
	UID, GID *space.Set
	// SupplGroups: the gid match also looks at supplementary groups
	// (`--suppl-groups`).
	SupplGroups bool
	Addr        *space.Set // in Families' address space (one family when set)
	Port        *space.Set
	Unsplit     []string
	Notes       []Note
	// never: a match nothing the lab probes can meet (another protocol).
	never bool
	// A forwarded packet's rule (Ruleset.Forward): the client's source
	// addresses, its interface matches, and whether it is read as the
	// answer's (whose source is the far end).
	Src    *space.Set
	ifaces []ifaceMatch
	answer bool
}

// Read reads the listings.
func Read(l Listings) (*Ruleset, error) {
	rs := &Ruleset{}
	ipsets := map[string]*ipset{}
	if len(l.IPSet) > 0 {
		var err error
		if ipsets, err = readIPSets(l.IPSet); err != nil {
			return nil, err
		}
	}
	skip := map[tableKey]bool{}
	for _, s := range []struct {
		tool string
		fam  space.Family
		text []byte
	}{
		{"iptables-nft", space.IPv4, l.IPTablesNFT},
		{"ip6tables-nft", space.IPv6, l.IP6TablesNFT},
		{"iptables-legacy", space.IPv4, l.IPTablesLegacy},
		{"ip6tables-legacy", space.IPv6, l.IP6TablesLegacy},
	} {
		if len(s.text) == 0 {
			continue
		}
		tables, err := rs.readSave(s.tool, s.fam, s.text, ipsets)
		if err != nil {
			return nil, err
		}
		if s.tool == "iptables-nft" || s.tool == "ip6tables-nft" {
			family := "ip"
			if s.fam == space.IPv6 {
				family = "ip6"
			}
			for _, t := range tables {
				skip[tableKey{family, t}] = true
			}
		}
	}
	if len(l.NFT) > 0 {
		if err := rs.readNFT(l.NFT, skip); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// add keeps a rule some probe can meet, and what it could not split.
func (rs *Ruleset) add(b *ruleBuilder) {
	r, notes, ok := b.done()
	if b.dir&dirForwarded == 0 {
		rs.Notes = append(rs.Notes, notes...)
	}
	if !ok {
		return
	}
	r.Notes = notes
	r.Unsplit = slices.Compact(r.Unsplit)
	if b.dir&dirForwarded != 0 {
		r.answer = b.dir == dirFwdAnswer
		for _, u := range r.Unsplit {
			rs.ForwardUnsplit = append(rs.ForwardUnsplit, Unsplit{Match: u, Rule: r.Ref})
		}
		rs.Forward = append(rs.Forward, r)
		return
	}
	for _, u := range r.Unsplit {
		rs.Unsplit = append(rs.Unsplit, Unsplit{Match: u, Rule: r.Ref})
	}
	rs.Rules = append(rs.Rules, r)
}

// String is a rule's matches in brief, for failure messages.
func (r Rule) String() string {
	return fmt.Sprintf("%s: families %v protos %v uid %v gid %v addr %v port %v unsplit %v", r.Ref, r.Families, r.Protos, r.UID, r.GID, r.Addr, r.Port, r.Unsplit)
}
