package report

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"github.com/egresslab/egresslab/scenarios/policy"
	"hash"
	"hash/fnv"
	"io"
	"strconv"
	"strings"
)

// A run's cells split into N disjoint shards by a stable hash of each cell's
// identity (user, host, address, port, protocol), never its position: adding a
// host to a policy moves no other cell to another shard, and every machine of
// a CI matrix computes the same split without talking to the others.

// ShardSpec is the K-th of N shards (1 ≤ K ≤ N).
type ShardSpec struct{ K, N int }

func (s ShardSpec) String() string { return fmt.Sprintf("%d/%d", s.K, s.N) }

// ParseShard reads "K/N".
func ParseShard(s string) (ShardSpec, error) {
	k, n, ok := strings.Cut(s, "/")
	ki, err1 := strconv.Atoi(k)
	ni, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || ni < 1 || ki < 1 || ki > ni {
		return ShardSpec{}, fmt.Errorf("--shard %q: want K/N with 1 <= K <= N, e.g. 2/3", s)
	}
	return ShardSpec{K: ki, N: ni}, nil
}

// Holds reports whether the cell belongs to this shard.
func (s ShardSpec) Holds(p policy.Probe) bool { return ShardOf(p, s.N) == s.K }

// ShardOf is the shard (1-based) of n that the cell belongs to: FNV-1a of its
// identity.
func ShardOf(p policy.Probe, n int) int {
	h := fnv.New64a()
	writeCellKey(h, p.SourceName(), p.Host, p.Address.String(), p.Port.Number, p.Port.Proto)
	return int(h.Sum64()%uint64(n)) + 1
}

func writeCellKey(w io.Writer, user, host, addr string, port uint16, proto string) {
	fmt.Fprintf(w, "%s\x00%s\x00%s\x00%d\x00%s", user, host, addr, port, proto)
}

// Shard is the plan a shard's report carries: which of how many parts it is,
// of which run. Merge accepts shards only of one plan.
type Shard struct {
	K      int    `json:"k"`
	N      int    `json:"n"`
	Policy string `json:"policy"`
	File   string `json:"file,omitempty"` // the policy file, for the commands that replay a cell
	// RulesetDigest is SHA-256 over the ruleset's files in load order.
	RulesetDigest string `json:"ruleset_digest"`
	// CellsDigest is SHA-256 over every cell of the whole run with its
	// expectation: two shards of a policy whose expectations differ do not
	// merge, though its name and ruleset are the same.
	CellsDigest string `json:"cells_digest"`
	Cells       int    `json:"cells"`  // of the whole run
	Probes      int    `json:"probes"` // of this shard
	// The matrix's axes, in the policy's order: merge puts the cells of
	// every shard back into the order one run reports them in.
	Users []string    `json:"users"`
	Hosts []ShardHost `json:"hosts"`
}

// ShardHost is a host's addresses and ports, in the policy's order.
type ShardHost struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
	Ports     []string `json:"ports"` // as a policy writes them: 25/tcp, 1-65535/udp
}

// Spec is the shard's K/N.
func (s *Shard) Spec() ShardSpec { return ShardSpec{K: s.K, N: s.N} }

// PlanShard is the plan of the spec's shard of p's run.
func PlanShard(p *policy.Policy, spec ShardSpec) *Shard {
	s := &Shard{K: spec.K, N: spec.N, Policy: p.Name, File: p.File, RulesetDigest: RulesetDigest(p.Ruleset)}
	for _, u := range p.Users {
		s.Users = append(s.Users, u.Name)
	}
	for _, h := range p.Hosts {
		sh := ShardHost{Name: h.Name}
		for _, a := range h.Addresses {
			sh.Addresses = append(sh.Addresses, a.String())
		}
		for _, r := range h.Ports {
			sh.Ports = append(sh.Ports, r.String())
		}
		s.Hosts = append(s.Hosts, sh)
	}
	cells := sha256.New()
	for pr := range p.Probes() {
		s.Cells++
		if spec.Holds(pr) {
			s.Probes++
		}
		writeCellKey(cells, pr.SourceName(), pr.Host, pr.Address.String(), pr.Port.Number, pr.Port.Proto)
		fmt.Fprintf(cells, "\x00%s\n", pr.Expect)
	}
	s.CellsDigest = "sha256:" + hex.EncodeToString(cells.Sum(nil))
	return s
}

// RulesetDigest is SHA-256 over the ruleset's files in the order they load
// (iptables, ip6tables, nft and its includes, script), each with its part's
// name and length so that no two rulesets hash alike by moving bytes between
// files.
func RulesetDigest(rs policy.Ruleset) string {
	h := sha256.New()
	part := func(h hash.Hash, name string, data []byte) {
		fmt.Fprintf(h, "%s\x00", name)
		_ = binary.Write(h, binary.BigEndian, uint64(len(data)))
		h.Write(data)
	}
	for _, f := range []struct {
		name string
		file *policy.RulesetFile
	}{{"iptables", rs.IPTables}, {"ip6tables", rs.IP6Tables}, {"nft", rs.NFT}, {"script", rs.Script}} {
		if f.file == nil {
			continue
		}
		part(h, f.name, f.file.Data)
		for _, inc := range f.file.Includes {
			part(h, "include "+inc.Path, inc.Data)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// sameRun reports how o differs from s as a plan of the same run ("" when it
// does not): the K of each may differ, nothing else.
func (s *Shard) sameRun(o *Shard) string {
	switch {
	case s.Policy != o.Policy:
		return fmt.Sprintf("policy %q, not %q", o.Policy, s.Policy)
	case s.N != o.N:
		return fmt.Sprintf("%d shards, not %d", o.N, s.N)
	case s.RulesetDigest != o.RulesetDigest:
		return fmt.Sprintf("ruleset digest %s, not %s", o.RulesetDigest, s.RulesetDigest)
	case s.CellsDigest != o.CellsDigest || s.Cells != o.Cells:
		return fmt.Sprintf("cells digest %s of %d cells, not %s of %d (the policy's hosts, users or expectations differ)", o.CellsDigest, o.Cells, s.CellsDigest, s.Cells)
	}
	return ""
}

// writeEmptyJUnit is the JUnit report of a shard that holds no cells: one
// skipped test case that says so, never a green run of 0 tests that a reader
// would take for a shard that proved something.
func (s *Shard) writeEmptyJUnit(w io.Writer) error {
	name := fmt.Sprintf("shard %s of %s", s.Spec(), s.Policy)
	why := fmt.Sprintf("shard %s holds none of the run's %d cells: the other shards probe them all; merge the shards' JSON reports (egresslab merge) for the run's report", s.Spec(), s.Cells)
	suite := junitSuite{Name: s.Policy, Tests: 1, Time: seconds(0), Cases: []junitCase{{
		Classname: s.Policy, Name: name, Time: seconds(0),
		Skipped: &junitMessage{Message: "no cells in this shard", Text: why + "\n"},
	}}}
	return writeJUnit(w, suite)
}
