package suites_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/report/shard"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// runJSON is one JSON report, as merge and a test read it: the summary, and
// every probe keyed by its cell.
type runJSON struct {
	Pass    bool                         `json:"pass"`
	Summary map[string]int               `json:"summary"`
	Probes  []map[string]any             `json:"probes"`
	Shard   *struct{ Probes, Cells int } `json:"shard"`
}

func (r runJSON) byCell() map[string]map[string]any {
	cells := map[string]map[string]any{}
	for _, p := range r.Probes {
		key := fmt.Sprintf("%v %v [%v]:%v/%v", p["user"], p["host"], p["address"], p["port"], p["proto"])
		Expect(cells).NotTo(HaveKey(key), "a cell twice")
		cells[key] = p
	}
	return cells
}

func readRun(file string) runJSON {
	GinkgoHelper()
	data, err := os.ReadFile(file)
	Expect(err).NotTo(HaveOccurred())
	var r runJSON
	Expect(json.Unmarshal(data, &r)).To(Succeed(), "%s", data)
	return r
}

// verifyTo runs verify with args, its JSON into file, and returns its status.
func verifyTo(ctx SpecContext, file string, args ...string) int {
	GinkgoHelper()
	out, errOut, code := runBinary(ctx, append([]string{egresslabBinary(), "verify", "--format", "json"}, args...)...)
	Expect(os.WriteFile(file, []byte(out), 0o644)).To(Succeed())
	Expect(code).To(BeNumerically("<=", 1), "%s", errOut)
	return code
}

var _ = Describe("verify --shard K/N and merge", Label("shard"), func() {
	// shardsEqualWhole runs policy whole and as 3 shards, merges them, and
	// compares: the summary, the pass, the exit status, and every probe as a
	// set keyed by its cell.
	shardsEqualWhole := func(ctx SpecContext, policy string) {
		dir := GinkgoT().TempDir()
		whole := verifyTo(ctx, filepath.Join(dir, "whole.json"), "-f", policy)
		var shards []string
		for k := 1; k <= 3; k++ {
			f := filepath.Join(dir, fmt.Sprintf("shard-%d.json", k))
			verifyTo(ctx, f, "-f", policy, "--shard", fmt.Sprintf("%d/3", k))
			shards = append(shards, f)
		}
		out, errOut, code := runBinary(ctx, append([]string{egresslabBinary(), "merge", "--format", "json"}, shards...)...)
		Expect(code).To(Equal(whole), "merge's exit status is the run's: %s", errOut)
		merged := filepath.Join(dir, "merged.json")
		Expect(os.WriteFile(merged, []byte(out), 0o644)).To(Succeed())

		w, m := readRun(filepath.Join(dir, "whole.json")), readRun(merged)
		Expect(m.Summary).To(Equal(w.Summary))
		Expect(m.Pass).To(Equal(w.Pass))
		Expect(m.Shard).To(BeNil(), "the merged report is one run's")
		Expect(w.Probes).NotTo(BeEmpty())
		Expect(m.byCell()).To(Equal(w.byCell()))
		held := 0
		for _, f := range shards {
			s := readRun(f)
			Expect(s.Shard).NotTo(BeNil())
			Expect(s.Shard.Cells).To(Equal(len(w.Probes)))
			Expect(s.Shard.Probes).To(Equal(len(s.Probes)))
			held += len(s.Probes)
		}
		Expect(held).To(Equal(len(w.Probes)), "the shards are disjoint and cover the run")
	}

	It("3 shards merged equal the unsharded run of a testdata policy", func(ctx SpecContext) {
		shardsEqualWhole(ctx, "../testdata/examples/mail-ipt46.yaml")
	})

	It("3 shards merged equal the unsharded run of a catalogue entry (a failing one: exit 1 both ways)", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		out, errOut, code := runBinary(ctx, egresslabBinary(), "scenarios", "--export", "telnet-surprise", dir)
		Expect(code).To(Equal(0), "%s%s", out, errOut)
		shardsEqualWhole(ctx, filepath.Join(dir, "ipv4-only.yaml"))
	})

	Context("refusing shards that are not the N parts of one run", func() {
		var dir string
		BeforeEach(func(ctx SpecContext) {
			dir = GinkgoT().TempDir()
			for k := 1; k <= 3; k++ {
				verifyTo(ctx, filepath.Join(dir, fmt.Sprintf("s%d.json", k)), "-f", "../testdata/examples/mail-ipt46.yaml", "--shard", fmt.Sprintf("%d/3", k))
			}
		})

		It("2 of 3 shards: exit 2 naming the missing shard", func(ctx SpecContext) {
			out, errOut, code := runBinary(ctx, egresslabBinary(), "merge", filepath.Join(dir, "s1.json"), filepath.Join(dir, "s3.json"))
			Expect(code).To(Equal(2), "%s%s", out, errOut)
			Expect(out).To(BeEmpty())
			Expect(errOut).To(HavePrefix("egresslab: merge: shard 2/3 of mail-ipt46 missing: given 1/3 ("))
		})

		It("a shard given twice: exit 2 naming it", func(ctx SpecContext) {
			s1 := filepath.Join(dir, "s1.json")
			_, errOut, code := runBinary(ctx, egresslabBinary(), "merge", s1, s1, filepath.Join(dir, "s3.json"))
			Expect(code).To(Equal(2))
			Expect(errOut).To(Equal(fmt.Sprintf("egresslab: merge: %s and %s are both shard 1/3\n", s1, s1)))
		})

		It("a shard of another run (another policy; another N): exit 2 naming it", func(ctx SpecContext) {
			foreign := filepath.Join(dir, "foreign.json")
			verifyTo(ctx, foreign, "-f", "../testdata/examples/web-nft.yaml", "--shard", "2/3")
			_, errOut, code := runBinary(ctx, egresslabBinary(), "merge", filepath.Join(dir, "s1.json"), foreign, filepath.Join(dir, "s3.json"))
			Expect(code).To(Equal(2))
			Expect(errOut).To(ContainSubstring(foreign + " is a shard of another run than " + filepath.Join(dir, "s1.json") + `: policy "web-nft", not "mail-ipt46"`))

			otherN := filepath.Join(dir, "other-n.json")
			verifyTo(ctx, otherN, "-f", "../testdata/examples/mail-ipt46.yaml", "--shard", "2/4")
			_, errOut, code = runBinary(ctx, egresslabBinary(), "merge", filepath.Join(dir, "s1.json"), otherN, filepath.Join(dir, "s3.json"))
			Expect(code).To(Equal(2))
			Expect(errOut).To(ContainSubstring("other-n.json is a shard of another run than "))
			Expect(errOut).To(ContainSubstring(": 4 shards, not 3"))
		})
	})

	It("a shard that holds no cell is a valid shard, and its JUnit says so instead of a green run of 0 tests", func(ctx SpecContext) {
		const policy = "../testdata/examples/mail-ipt46.yaml"
		p, err := scenarios.Load(policy)
		Expect(err).NotTo(HaveOccurred())
		const n = 20 // more shards than the policy's 8 cells: some are empty
		held := map[int]int{}
		for pr := range p.Probes() {
			held[shard.Of(pr, n)]++
		}
		empty := 0
		for k := 1; k <= n && empty == 0; k++ {
			if held[k] == 0 {
				empty = k
			}
		}
		Expect(empty).NotTo(BeZero(), "some shard of %d is empty", n)

		dir := GinkgoT().TempDir()
		junit := filepath.Join(dir, "junit.xml")
		code := verifyTo(ctx, filepath.Join(dir, "empty.json"), "-f", policy, "--shard", fmt.Sprintf("%d/%d", empty, n), "--junit", junit)
		Expect(code).To(Equal(0))
		r := readRun(filepath.Join(dir, "empty.json"))
		Expect(r.Probes).To(BeEmpty())
		Expect(r.Shard.Probes).To(Equal(0))
		Expect(r.Shard.Cells).To(Equal(8))
		xml, err := os.ReadFile(junit)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(xml)).To(ContainSubstring(`tests="1"`))
		Expect(string(xml)).To(ContainSubstring(fmt.Sprintf(`<testcase classname="mail-ipt46" name="shard %d/%d of mail-ipt46" time="0.000">`, empty, n)))
		Expect(string(xml)).To(ContainSubstring(fmt.Sprintf(`<skipped message="no cells in this shard">shard %d/%d holds none of the run&#39;s 8 cells`, empty, n)))
	})
})
