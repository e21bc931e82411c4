package trace

import (
	"cmp"
	"hash/maphash"
	"slices"

	"github.com/egresslab/egresslab/internal/nftlist"

	"github.com/egresslab/egresslab/netns"
)

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
		if drop := t.event(side.ft.drop); drop != nil {
			r := t.rule(*drop, side.name)
			if !blocked {
				return &Rule{Untraced: "the trace shows a drop, yet the probe connected: " + r.String()}
			}
			return r
		}
	}
	var accept, policyAccept *Rule
	if ev := t.event(request.accept); ev != nil {
		accept = t.rule(*ev, "request")
	}
	if ev := t.event(request.policyAccept); ev != nil {
		policyAccept = t.rule(*ev, "request")
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
	return r
}
