package netns

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/egresslab/egresslab/internal/nftlist"
	"github.com/google/nftables"
)

// ruleIndex places each nf_tables rule, by "family table chain handle": its
// position in its chain, and for a table iptables-nft manages, the line
// iptables-save prints for it.
type ruleIndex map[string]indexedRule

type indexedRule struct {
	position int
	text     string // as nft prints it, or iptables-save's line
}

// installScript adds the trace table ($1) and lists, in one go inside the
// lab, what places each rule: each candidate table (the pairs "family name"
// after $1) as nft's JSON (positions) and as text, and both iptables-nft
// saves. Table by table, and the tables named from netlink: nft 1.0.6
// aborts whenever its cache holds the sentinel's raw-payload sets with
// elements in them, even for `nft list tables`. One process tree, not one
// per listing: each costs a trip into the lab's namespaces.
const installScript = `set -e
nft -f "$1"
shift
echo '@@egresslab@@ json'
for t in "$@"; do nft -j list table $t; done
echo '@@egresslab@@ text'
for t in "$@"; do nft -a -s list table $t; done
echo '@@egresslab@@ ip'
iptables-nft-save 2>/dev/null || true
echo '@@egresslab@@ ip6'
ip6tables-nft-save 2>/dev/null || true`

// installTrace adds the trace table and reads back where every rule is.
func (l *Lab) installTrace(ctx context.Context, dsts []netip.AddrPort) (ruleIndex, error) {
	path, err := l.stage("egresslab-trace.nft", []byte(traceRuleset(dsts)), 0o644)
	if err != nil {
		return nil, err
	}
	tables, err := l.candidateTables()
	if err != nil {
		return nil, err
	}
	argv := append([]string{"sh", "-c", installScript, "egresslab-trace", path}, tables...)
	out, err := l.run(ctx, runSpec{argv: argv, limit: maxListingOutput})
	if err != nil {
		return nil, fmt.Errorf("install the trace table in lab %s: %v: %s", l.cfg.Name, err, lastLine(out))
	}
	parts := map[string]string{}
	section := ""
	for _, line := range strings.SplitAfter(string(out), "\n") {
		if name, ok := strings.CutPrefix(line, "@@egresslab@@ "); ok {
			section = strings.TrimSpace(name)
			continue
		}
		parts[section] += line
	}
	var objects []map[string]json.RawMessage
	for _, line := range strings.Split(parts["json"], "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var doc struct {
			Nftables []map[string]json.RawMessage `json:"nftables"`
		}
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			return nil, fmt.Errorf("list the ruleset in lab %s: nft -j: %w", l.cfg.Name, err)
		}
		objects = append(objects, doc.Nftables...)
	}
	texts := nftlist.RuleTexts(parts["text"])
	saves := map[string]map[string][]string{"ip": saveLines(parts["ip"]), "ip6": saveLines(parts["ip6"])}
	idx := ruleIndex{}
	positions := map[string]int{}
	for _, obj := range objects {
		raw, ok := obj["rule"]
		if !ok {
			continue
		}
		var r struct {
			Family, Table, Chain string
			Handle               int
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, err
		}
		chain := r.Family + " " + r.Table + " " + r.Chain
		positions[chain]++
		key := nftlist.Key(r.Family, r.Table, r.Chain, r.Handle)
		ir := indexedRule{position: positions[chain], text: texts[key]}
		if lines := saves[r.Family][r.Table+" "+r.Chain]; ir.position <= len(lines) {
			ir.text = lines[ir.position-1]
		}
		idx[key] = ir
	}
	return idx, nil
}

// candidateTables names the lab's nf_tables tables but its own, each as
// "family name", asking the kernel over netlink.
func (l *Lab) candidateTables() ([]string, error) {
	c, err := nftables.New(nftables.WithNetNSFd(l.labFD))
	if err != nil {
		return nil, fmt.Errorf("list the tables in lab %s: %w", l.cfg.Name, err)
	}
	defer c.CloseLasting()
	tables, err := c.ListTables()
	if err != nil {
		return nil, fmt.Errorf("list the tables in lab %s: %w", l.cfg.Name, err)
	}
	var out []string
	for _, t := range tables {
		fam := tableFamily(byte(t.Family))
		if strings.HasPrefix(t.Name, "egresslab_") || (fam != "ip" && fam != "ip6" && fam != "inet") {
			continue
		}
		out = append(out, fam+" "+t.Name)
	}
	return out, nil
}

// saveLines reads iptables-save output: "table chain" -> its -A lines in order.
func saveLines(out string) map[string][]string {
	lines := map[string][]string{}
	table := ""
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, "-A "):
			if f := strings.Fields(l); len(f) > 1 {
				lines[table+" "+f[1]] = append(lines[table+" "+f[1]], l)
			}
		}
	}
	return lines
}

// DecideAll names the rule that decided each probe, given its flow and
// whether its outcome was blocked (dropped, refused or rejected). Call it
// after Stop. Two probes whose flows are the same (the kernel gave the same
// source port to the same destination again) cannot be told apart in the
// trace: each says so.
func (t *Trace) DecideAll(flows []Flow, blocked []bool) []*Rule {
	count := map[Flow]int{}
	for _, f := range flows {
		count[f]++
	}
	rules := make([]*Rule, len(flows))
	for i, f := range flows {
		if count[f] > 1 && f.Src.IsValid() && t.untraced == "" {
			rules[i] = &Rule{Untraced: "another probe had the same flow (the kernel gave out its source port again), so the trace cannot tell them apart"}
			continue
		}
		rules[i] = t.decide(f, blocked[i])
	}
	return rules
}

// decide returns nil when no rule of the candidate saw the probe's packets
// (no ruleset, or a verdict of the host's own state).
func (t *Trace) decide(f Flow, blocked bool) *Rule {
	if t.untraced != "" {
		return &Rule{Untraced: t.untraced}
	}
	if !f.Src.IsValid() {
		return nil // the probe never sent: a local refusal, no rule
	}
	t.mu.Lock()
	request := t.events[flowKey(f.Src, f.Dst, f.Proto)]
	answer := t.events[flowKey(f.Dst, f.Src, f.Proto)]
	t.mu.Unlock()
	// A drop, on either packet, decided; failing that, the first accept of
	// the request by a rule, or else by a chain's policy.
	var accept, policyAccept *Rule
	for _, side := range []struct {
		name   string
		events []traceEvent
	}{{"request", request}, {"answer", answer}} {
		for _, ev := range side.events {
			r := t.rule(ev, side.name)
			switch {
			case ev.verdict == "drop":
				if !blocked {
					return &Rule{Untraced: "the trace shows a drop, yet the probe connected: " + r.String()}
				}
				return r
			case ev.verdict == "accept" && side.name == "request" && !ev.policy && accept == nil:
				accept = r
			case ev.verdict == "accept" && side.name == "request" && ev.policy && policyAccept == nil:
				policyAccept = r
			}
		}
	}
	if accept == nil {
		accept = policyAccept
	}
	if blocked && f.ipv6() {
		if r := t.neighbourDrop(); r != nil {
			return r
		}
	}
	if blocked {
		if accept == nil && len(request) == 0 {
			return nil
		}
		return &Rule{Untraced: "no nf_tables rule dropped the probe's packets: something the trace cannot see did (an iptables-legacy rule, or the host's own state)"}
	}
	return accept
}

// neighbourDrop is the rule that dropped neighbour discovery, for a probe
// that the candidate's rules let out and that died waiting for its next
// hop. Only one such rule can be named: two would be a guess.
func (t *Trace) neighbourDrop() *Rule {
	t.mu.Lock()
	events := t.events[ndKey]
	t.mu.Unlock()
	var found *Rule
	for _, ev := range events {
		if ev.verdict != "drop" {
			continue
		}
		r := t.rule(ev, "neighbour-discovery")
		if found != nil && (found.Handle != r.Handle || found.Chain != r.Chain || found.Table != r.Table || found.Family != r.Family) {
			return &Rule{Untraced: "more than one rule dropped neighbour discovery: " + found.String() + "; " + r.String()}
		}
		found = r
	}
	return found
}

func (t *Trace) rule(ev traceEvent, packet string) *Rule {
	r := &Rule{Family: ev.family, Table: ev.table, Chain: ev.chain, Handle: ev.handle, Verdict: ev.verdict, Policy: ev.policy, Packet: packet}
	if ev.policy {
		r.Text = "policy " + ev.verdict
		return r
	}
	if ir, ok := t.index[nftlist.Key(ev.family, ev.table, ev.chain, ev.handle)]; ok {
		r.Position, r.Text = ir.position, ir.text
	}
	if ev.verdict == "drop" && (strings.Contains(r.Text, "reject") || strings.Contains(r.Text, "-j REJECT")) {
		r.Verdict = "reject"
	}
	r.Note = surprise(r)
	return r
}

var (
	ipv4Only = regexp.MustCompile(`\bip (saddr|daddr|protocol)\b|meta nfproto ipv4|reject with icmp `)
	ipv6Only = regexp.MustCompile(`\bip6 (saddr|daddr|nexthdr)\b|meta nfproto ipv6|reject with icmpv6 `)
	loopback = regexp.MustCompile(`\b[oi]ifname "lo"|-[oi] lo\b`)
)

// surprise says what a rule matched on that a reader may not expect.
func surprise(r *Rule) string {
	var notes []string
	if strings.Contains(r.Text, "skgid") || strings.Contains(r.Text, "--gid-owner") && !strings.Contains(r.Text, "--suppl-groups") {
		notes = append(notes, "a group owner match sees the socket's primary group only, not supplementary groups")
	}
	if r.Family == "inet" && ipv4Only.MatchString(r.Text) {
		notes = append(notes, "an IPv4-only match in an inet table: IPv6 packets pass this rule by")
	}
	if r.Family == "inet" && ipv6Only.MatchString(r.Text) {
		notes = append(notes, "an IPv6-only match in an inet table: IPv4 packets pass this rule by")
	}
	if loopback.MatchString(r.Text) {
		notes = append(notes, "it matched on the loopback interface")
	}
	return strings.Join(notes, "; ")
}

// lastLine is the last non-empty line of a tool's output: the error, not
// the listing before it.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
