package shard

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"strconv"
	"strings"

	"github.com/egresslab/egresslab/scenarios/policy"
)

// Spec is the K-th of N shards (1 ≤ K ≤ N).
type Spec struct{ K, N int }

func (s Spec) String() string { return fmt.Sprintf("%d/%d", s.K, s.N) }

// Parse reads "K/N".
func Parse(s string) (Spec, error) {
	k, n, ok := strings.Cut(s, "/")
	ki, err1 := strconv.Atoi(k)
	ni, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || ni < 1 || ki < 1 || ki > ni {
		return Spec{}, fmt.Errorf("--shard %q: want K/N with 1 <= K <= N, e.g. 2/3", s)
	}
	return Spec{K: ki, N: ni}, nil
}

// Holds reports whether the cell belongs to this shard.
func (s Spec) Holds(p policy.Probe) bool { return Of(p, s.N) == s.K }

// Of is the shard (1-based) of n that the cell belongs to: FNV-1a of its
// identity.
func Of(p policy.Probe, n int) int {
	h := fnv.New64a()
	writeCellKey(h, p.SourceName(), p.Host, p.Address.String(), p.Port.Number, p.Port.Proto)
	return int(h.Sum64()%uint64(n)) + 1
}

func writeCellKey(w io.Writer, user, host, addr string, port uint16, proto string) {
	fmt.Fprintf(w, "%s\x00%s\x00%s\x00%d\x00%s", user, host, addr, port, proto)
}

// Plan is the plan a shard's report carries: which of how many parts it is,
// of which run. Merge accepts shards only of one plan.
type Plan struct {
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
	Users []string `json:"users"`
	Hosts []Host   `json:"hosts"`
}

// Host is a host's addresses and ports, in the policy's order.
type Host struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
	Ports     []string `json:"ports"` // as a policy writes them: 25/tcp, 1-65535/udp
}

// Spec is the shard's K/N.
func (s *Plan) Spec() Spec { return Spec{K: s.K, N: s.N} }

// New is the plan of the spec's shard of p's run.
func New(p *policy.Policy, spec Spec) *Plan {
	s := &Plan{K: spec.K, N: spec.N, Policy: p.Name, File: p.File, RulesetDigest: RulesetDigest(p.Ruleset)}
	for _, u := range p.Users {
		s.Users = append(s.Users, u.Name)
	}
	for _, h := range p.Hosts {
		sh := Host{Name: h.Name}
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

// SameRun reports how o differs from s as a plan of the same run ("" when it
// does not): the K of each may differ, nothing else.
func (s *Plan) SameRun(o *Plan) string {
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
