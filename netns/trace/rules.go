package trace

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/egresslab/egresslab/internal/nftlist"
	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns"
)

// ruleIndex places each nf_tables rule, by "family table chain handle": its
// position in its chain, and for a table iptables-nft manages, the line
// iptables-save prints for it.
type ruleIndex map[string]indexedRule

type indexedRule struct {
	position int
	text     string // as nft prints it, or iptables-save's line
}

// ruleListing is the text of every rule of the candidate's tables: nft's
// for each table, iptables-save's lines for the tables iptables-nft manages.
// It is listed in the background, by processes of the lab's, while the lab
// installs its own tables and probes; the trace waits for it only when it
// names rules.
type ruleListing struct {
	done  chan struct{}
	texts map[string]string              // nftlist.Key -> nft's text
	saves map[string]map[string][]string // family -> "table chain" -> -A lines in order
	err   error
}

// listRules starts listing the candidate's rules. The iptables-nft saves
// first, for the families that have tables; then nft, for each table no save
// printed (one nft run lists one table: nft 1.0.6 aborts whenever its cache
// holds the sentinel's raw-payload sets with elements in them, even for `nft
// list tables`). The tables are named from netlink.
func listRules(ctx context.Context, l *netns.Lab) *ruleListing {
	rl := &ruleListing{done: make(chan struct{}), texts: map[string]string{}, saves: map[string]map[string][]string{}}
	go func() {
		defer close(rl.done)
		rl.err = rl.list(ctx, l)
	}()
	return rl
}

func (rl *ruleListing) list(ctx context.Context, l *netns.Lab) error {
	tables, err := candidateTables(l)
	if err != nil {
		return err
	}
	saved := map[string]bool{} // "family table" that a save printed
	var wg sync.WaitGroup
	var mu sync.Mutex
	for fam, tool := range map[string]string{"ip": "iptables-nft-save", "ip6": "ip6tables-nft-save"} {
		if !slices.ContainsFunc(tables, func(t string) bool { return strings.HasPrefix(t, fam+" ") }) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A save that fails, or skips a table it cannot read, leaves
			// that table to nft.
			out, _ := l.RunListing(ctx, tool)
			lines := saveLines(string(out))
			mu.Lock()
			defer mu.Unlock()
			rl.saves[fam] = lines
			for _, ln := range strings.Split(string(out), "\n") {
				if name, ok := strings.CutPrefix(ln, "*"); ok {
					saved[fam+" "+name] = true
				}
			}
		}()
	}
	wg.Wait()
	errs := make([]error, len(tables))
	for i, t := range tables {
		if saved[t] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := l.RunListing(ctx, append([]string{"nft", "-a", "-s", "list", "table"}, strings.Fields(t)...)...)
			if err != nil {
				errs[i] = fmt.Errorf("list the rules in lab %s: nft: %v: %s", l.Name(), err, lastLine(out))
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range nftlist.RuleTexts(string(out)) {
				rl.texts[k] = v
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// rulePositions places every rule of the lab's tables in its chain, from one
// netlink dump (which gives each chain's rules in order): Key -> 1-based.
func rulePositions(l *netns.Lab) (map[string]int, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: l.NetNSFD()})
	if err != nil {
		return nil, fmt.Errorf("list the rules in lab %s: %w", l.Name(), err)
	}
	defer c.Close()
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETRULE),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		return nil, fmt.Errorf("list the rules in lab %s: %w", l.Name(), err)
	}
	positions, counts := map[string]int{}, map[string]int{}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			continue
		}
		ad.ByteOrder = binary.BigEndian
		var table, chain string
		handle := -1
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_RULE_TABLE:
				table = ad.String()
			case unix.NFTA_RULE_CHAIN:
				chain = ad.String()
			case unix.NFTA_RULE_HANDLE:
				handle = int(ad.Uint64())
			}
		}
		if table == "" || chain == "" || handle < 0 {
			continue
		}
		fam := tableFamily(m.Data[0])
		where := fam + " " + table + " " + chain
		counts[where]++
		positions[nftlist.Key(fam, table, chain, handle)] = counts[where]
	}
	return positions, nil
}

// ruleIndex joins the positions and the listing.
func (rl *ruleListing) index(positions map[string]int) ruleIndex {
	idx := ruleIndex{}
	for key, pos := range positions {
		ir := indexedRule{position: pos, text: rl.texts[key]}
		f := strings.SplitN(key, " ", 4) // family table chain handle
		if lines := rl.saves[f[0]][f[1]+" "+f[2]]; pos <= len(lines) {
			ir.text = lines[pos-1]
		}
		idx[key] = ir
	}
	return idx
}

// candidateTables names the lab's nf_tables tables but its own, each as
// "family name", asking the kernel over netlink.
func candidateTables(l *netns.Lab) ([]string, error) {
	c, err := nftables.New(nftables.WithNetNSFd(l.NetNSFD()))
	if err != nil {
		return nil, fmt.Errorf("list the tables in lab %s: %w", l.Name(), err)
	}
	defer c.CloseLasting()
	tables, err := c.ListTables()
	if err != nil {
		return nil, fmt.Errorf("list the tables in lab %s: %w", l.Name(), err)
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

// DecideAll names the rule that decided each of n probes, given probe i's
// flow and whether its outcome was blocked (dropped, refused or rejected).
// Call it once, after Stop: it lets go of the trace's reports. Two probes
// whose flows are the same (the kernel gave the same source port to the same
// destination again) cannot be told apart in the trace: each says so.
func (t *Trace) DecideAll(n int, probe func(i int) (f netns.Flow, blocked bool)) []*Rule {
	shared := sharedFlows(n, probe)
	rules := make([]*Rule, n)
	t.made = map[ruleKey]*Rule{}
	if t.untraced != "" {
		t.made[ruleKey{packet: "untraced"}] = &Rule{Untraced: t.untraced}
	}
	for i := range n {
		f, blocked := probe(i)
		if shared[i] && t.untraced == "" {
			rules[i] = &Rule{Untraced: "another probe had the same flow (the kernel gave out its source port again), so the trace cannot tell them apart"}
			continue
		}
		rules[i] = t.decide(f, blocked)
	}
	t.events, t.made = nil, nil // decided: a sweep's worth of memory
	return rules
}

// sharedFlows marks each probe whose flow another probe had too. It sorts
// hashes of the flows rather than count them in a map: at a sweep's size the
// map was the run's peak of memory.
func sharedFlows(n int, probe func(i int) (netns.Flow, bool)) []bool {
	type entry struct {
		hash uint64
		i    int32
	}
	seed := maphash.MakeSeed()
	key := func(i int) (traceKey, bool) {
		f, _ := probe(i)
		return flowKey(f.Src, f.Dst, f.Proto), f.Src.IsValid()
	}
	entries := make([]entry, 0, n)
	for i := range n {
		if k, ok := key(i); ok {
			entries = append(entries, entry{maphash.Comparable(seed, k), int32(i)})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.hash, b.hash) })
	shared := make([]bool, n)
	for lo := 0; lo < len(entries); {
		hi := lo + 1
		for hi < len(entries) && entries[hi].hash == entries[lo].hash {
			hi++
		}
		for a := lo; a < hi; a++ { // equal hashes: compare the flows themselves
			ka, _ := key(int(entries[a].i))
			for b := a + 1; b < hi; b++ {
				if kb, _ := key(int(entries[b].i)); ka == kb {
					shared[entries[a].i], shared[entries[b].i] = true, true
				}
			}
		}
		lo = hi
	}
	return shared
}

// ruleKey is what a Rule is made of: probes decided by the same verdict
// share one (a sweep has 131,070 probes and a handful of rules).
type ruleKey struct {
	ev     traceEvent
	packet string
}

// decide returns nil when no rule of the candidate saw the probe's packets
// (no ruleset, or a verdict of the host's own state).
func (t *Trace) decide(f netns.Flow, blocked bool) *Rule {
	if t.untraced != "" {
		return t.made[ruleKey{packet: "untraced"}] // one, shared
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
	for _, side := range []struct {
		name string
		ft   flowTrace
	}{{"request", request}, {"answer", answer}} {
		if side.ft.drop != nil {
			r := t.rule(*side.ft.drop, side.name)
			if !blocked {
				return &Rule{Untraced: "the trace shows a drop, yet the probe connected: " + r.String()}
			}
			return r
		}
	}
	var accept, policyAccept *Rule
	if request.accept != nil {
		accept = t.rule(*request.accept, "request")
	}
	if request.policyAccept != nil {
		policyAccept = t.rule(*request.policyAccept, "request")
	}
	if accept == nil {
		accept = policyAccept
	}
	if blocked && f.IPv6() {
		if r := t.neighbourDrop(); r != nil {
			return r
		}
	}
	if blocked {
		if accept == nil && !request.seen {
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
	drops := t.ndDrops
	t.mu.Unlock()
	var found *Rule
	for _, ev := range drops {
		r := t.rule(*ev, "neighbour-discovery")
		if found != nil && (found.Handle != r.Handle || found.Chain != r.Chain || found.Table != r.Table || found.Family != r.Family) {
			return &Rule{Untraced: "more than one rule dropped neighbour discovery: " + found.String() + "; " + r.String()}
		}
		found = r
	}
	return found
}

func (t *Trace) rule(ev traceEvent, packet string) *Rule {
	k := ruleKey{ev, packet}
	if r, ok := t.made[k]; ok && t.made != nil {
		return r
	}
	r := t.newRule(ev, packet)
	if t.made != nil {
		t.made[k] = r
	}
	return r
}

func (t *Trace) newRule(ev traceEvent, packet string) *Rule {
	r := &Rule{Family: ev.where.family, Table: ev.where.table, Chain: ev.where.chain, Handle: ev.handle, Verdict: ev.verdict, Policy: ev.policy, Packet: packet}
	if ev.policy {
		r.Text = "policy " + ev.verdict
		return r
	}
	if ir, ok := t.index[nftlist.Key(ev.where.family, ev.where.table, ev.where.chain, ev.handle)]; ok {
		r.Position, r.Text = ir.position, ir.text
	}
	// The kernel reports a reject as the drop that follows its answer; the
	// rule's own text says which it is. This names what the rule does (the
	// probe's verdict is decided elsewhere, from the sentinel's evidence),
	// and Verdict is part of the JSON report, so it stays here: moving it
	// up would change the output or need a second pass over shared rules.
	if ev.verdict == "drop" && (strings.Contains(r.Text, "reject") || strings.Contains(r.Text, "-j REJECT")) {
		r.Verdict = "reject"
	}
	// Note is in the JSON and table output, made once per shared rule.
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
