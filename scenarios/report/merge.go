package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/egresslab/egresslab/scenarios/policy"
	"github.com/egresslab/egresslab/scenarios/report/shard"
)

// ShardReport is the JSON report of a `verify --shard K/N` run, read back.
type ShardReport struct {
	Name    string // the file it came from, for messages
	Plan    *Shard
	Results []Result
}

// MergeError is a set of shard reports that are not the N parts of one run:
// a file that is no shard report, a shard missing or given twice, a shard of
// another plan. It is bad input.
type MergeError struct{ Msg string }

func (e *MergeError) Error() string { return e.Msg }

func mergeErrorf(format string, a ...any) error { return &MergeError{Msg: fmt.Sprintf(format, a...)} }

// ReadShardReport reads one shard's JSON report.
func ReadShardReport(name string, r io.Reader) (*ShardReport, error) {
	var doc struct {
		Shard  *Shard      `json:"shard"`
		Probes []jsonProbe `json:"probes"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, mergeErrorf("%s: not a JSON report of egresslab verify: %v", name, err)
	}
	if doc.Shard == nil {
		return nil, mergeErrorf("%s: not a shard's report (it has no plan): write each with `egresslab verify --shard K/N --format json`", name)
	}
	rep := &ShardReport{Name: name, Plan: doc.Shard, Results: make([]Result, 0, len(doc.Probes))}
	for i, jp := range doc.Probes {
		addr, err := netip.ParseAddr(jp.Address)
		if err != nil {
			return nil, mergeErrorf("%s: probe %d: address %q: %v", name, i+1, jp.Address, err)
		}
		pr := policy.Probe{User: policy.User{Name: jp.User}, Host: jp.Host, Address: addr,
			Port: policy.Port{Number: jp.Port, Proto: jp.Proto}, Expect: jp.Expected, Rule: -1, Line: jp.Line}
		if jp.UID != nil {
			pr.User.UID = *jp.UID
		}
		if jp.Client != "" {
			pr.Client = &policy.Client{Name: jp.Client, Network: jp.Network}
		}
		res := Result{Probe: pr, Observed: jp.Observed, Evidence: jp.Evidence.typed(), Detail: jp.Detail, apart: &resultApart{reported: &jp.Evidence}}
		if jp.Source != "" {
			if res.apart.source, err = netip.ParseAddr(jp.Source); err != nil {
				return nil, mergeErrorf("%s: probe %d: source %q: %v", name, i+1, jp.Source, err)
			}
		}
		rep.Results = append(rep.Results, res)
		if jp.Rule != nil {
			last := &rep.Results[len(rep.Results)-1]
			last.Decider = jp.Rule.Rule
			if jp.Rule.File != "" {
				last.DeciderAt = &RuleSource{File: jp.Rule.File, Line: jp.Rule.Line}
			}
		}
	}
	return rep, nil
}

// Merge joins the N shard reports of one plan into the report one unsharded
// run would have made, in its order. Shards missing, given twice, of another
// plan, or holding cells not theirs are a *MergeError naming which.
func Merge(shards []*ShardReport) (*Report, error) {
	if len(shards) == 0 {
		return nil, mergeErrorf("no shard reports to merge")
	}
	plan := shards[0].Plan
	byK := map[int]*ShardReport{}
	for _, s := range shards {
		if diff := plan.SameRun(s.Plan); diff != "" {
			return nil, mergeErrorf("%s is a shard of another run than %s: %s", s.Name, shards[0].Name, diff)
		}
		if s.Plan.K < 1 || s.Plan.K > s.Plan.N {
			return nil, mergeErrorf("%s: shard %d/%d is not a shard", s.Name, s.Plan.K, s.Plan.N)
		}
		if o, ok := byK[s.Plan.K]; ok {
			return nil, mergeErrorf("%s and %s are both shard %s", o.Name, s.Name, s.Plan.Spec())
		}
		byK[s.Plan.K] = s
	}
	var missing []string
	for k := 1; k <= plan.N; k++ {
		if _, ok := byK[k]; !ok {
			missing = append(missing, ShardSpec{K: k, N: plan.N}.String())
		}
	}
	if len(missing) > 0 {
		var given []string
		for _, s := range shards {
			given = append(given, s.Plan.Spec().String()+" ("+s.Name+")")
		}
		word := "shard"
		if len(missing) > 1 {
			word = "shards"
		}
		return nil, mergeErrorf("%s %s of %s missing: given %s", word, strings.Join(missing, ", "), plan.Policy, strings.Join(given, ", "))
	}
	order, err := newCellOrder(plan)
	if err != nil {
		return nil, mergeErrorf("%s: %v", shards[0].Name, err)
	}
	type placed struct {
		key cellKey
		res Result
	}
	all := make([]placed, 0, plan.Cells)
	for k := 1; k <= plan.N; k++ {
		s := byK[k]
		if len(s.Results) != s.Plan.Probes {
			return nil, mergeErrorf("%s: its plan says %d probes, it holds %d", s.Name, s.Plan.Probes, len(s.Results))
		}
		for _, res := range s.Results {
			key, ok := order.key(res.Probe)
			if !ok {
				return nil, mergeErrorf("%s: %s is not a cell of its plan", s.Name, res.Probe)
			}
			if got := shard.Of(res.Probe, plan.N); got != k {
				return nil, mergeErrorf("%s: %s is a cell of shard %d/%d, not %d/%d", s.Name, res.Probe, got, plan.N, k, plan.N)
			}
			all = append(all, placed{key, res})
		}
	}
	if len(all) != plan.Cells {
		return nil, mergeErrorf("the %d shards hold %d cells; the run has %d", plan.N, len(all), plan.Cells)
	}
	slices.SortFunc(all, func(a, b placed) int { return a.key.compare(b.key) })
	rep := &Report{Policy: plan.Policy, File: plan.File, Results: make([]Result, len(all))}
	for i, p := range all {
		if i > 0 && all[i-1].key == p.key {
			return nil, mergeErrorf("%s is in the shards twice", p.res.Probe)
		}
		rep.Results[i] = p.res
	}
	return rep, nil
}

// cellKey is a cell's place in Matrix's order: user, host, address, port
// range, port.
type cellKey struct{ user, host, addr, ports, port int }

func (a cellKey) compare(b cellKey) int {
	return cmp.Or(cmp.Compare(a.user, b.user), cmp.Compare(a.host, b.host), cmp.Compare(a.addr, b.addr),
		cmp.Compare(a.ports, b.ports), cmp.Compare(a.port, b.port))
}

// cellOrder places a cell by the plan's axes.
type cellOrder struct {
	users map[string]int
	hosts map[string]int
	addrs []map[netip.Addr]int
	ports [][]policy.PortRange
}

func newCellOrder(plan *Shard) (*cellOrder, error) {
	o := &cellOrder{users: map[string]int{}, hosts: map[string]int{}}
	for i, u := range plan.Users {
		o.users[u] = i
	}
	for i, h := range plan.Hosts {
		o.hosts[h.Name] = i
		addrs := map[netip.Addr]int{}
		for j, a := range h.Addresses {
			addr, err := netip.ParseAddr(a)
			if err != nil {
				return nil, fmt.Errorf("plan: host %s: address %q: %v", h.Name, a, err)
			}
			addrs[addr] = j
		}
		var ranges []policy.PortRange
		for _, p := range h.Ports {
			r, err := parsePortRange(p)
			if err != nil {
				return nil, fmt.Errorf("plan: host %s: ports %q: %v", h.Name, p, err)
			}
			ranges = append(ranges, r)
		}
		o.addrs = append(o.addrs, addrs)
		o.ports = append(o.ports, ranges)
	}
	return o, nil
}

func (o *cellOrder) key(p policy.Probe) (cellKey, bool) {
	u, ok1 := o.users[p.User.Name]
	h, ok2 := o.hosts[p.Host]
	if !ok1 || !ok2 {
		return cellKey{}, false
	}
	a, ok := o.addrs[h][p.Address]
	if !ok {
		return cellKey{}, false
	}
	r := slices.IndexFunc(o.ports[h], func(r policy.PortRange) bool { return r.Contains(p.Port) })
	if r < 0 {
		return cellKey{}, false
	}
	return cellKey{u, h, a, r, int(p.Port.Number)}, true
}

// parsePortRange reads PortRange.String's form: 25/tcp or 1-65535/udp.
func parsePortRange(s string) (policy.PortRange, error) {
	ports, proto, ok := strings.Cut(s, "/")
	if !ok || proto != "tcp" && proto != "udp" {
		return policy.PortRange{}, fmt.Errorf("want PORT/tcp, PORT/udp or FIRST-LAST/PROTO")
	}
	first, last, isRange := strings.Cut(ports, "-")
	if !isRange {
		last = first
	}
	f, err1 := strconv.ParseUint(first, 10, 16)
	l, err2 := strconv.ParseUint(last, 10, 16)
	if err1 != nil || err2 != nil || f > l {
		return policy.PortRange{}, fmt.Errorf("want PORT/tcp, PORT/udp or FIRST-LAST/PROTO")
	}
	return policy.PortRange{First: uint16(f), Last: uint16(l), Proto: proto}, nil
}
