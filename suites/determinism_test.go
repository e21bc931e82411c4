package suites_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/egresslab/egresslab/internal/catalogue"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/report/words"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// A verdict is a function of the ruleset, not of timing or history (issue
// 16): each cell's outcome, evidence kind and the service that answered it
// must be the same in every regime below. A difference names the cell, both regimes and both
// evidences.

const determinismDir = "../testdata/determinism"

// verdict is what a regime compares: the outcome, how it was known and who
// answered.
type verdict struct {
	outcome    probe.Outcome
	kind       probe.Kind
	answeredBy string
	detail     string
}

func (v verdict) same(w verdict) bool {
	return v.outcome == w.outcome && v.kind == w.kind && v.answeredBy == w.answeredBy
}

// answeredBy names the lab's service in e, "" for none.
func answeredBy(e probe.Evidence) string {
	if s := e.AnsweredBy; s != nil {
		return fmt.Sprintf("%s %s/%s", s.Host, netip.AddrPortFrom(s.Addr, s.Port), s.Proto)
	}
	return ""
}

func (v verdict) String() string { return fmt.Sprintf("%s (%s: %s)", v.outcome, v.kind, v.detail) }

// regime probes every cell of p its own way and returns each cell's verdict,
// keyed by the cell's name, or why it could not run (in full: the soak's
// output keeps only the lines that name a difference).
type regime struct {
	name  string
	probe func(ctx SpecContext, p *scenarios.Policy) (map[string]verdict, error)
}

func cellVerdicts(rep *scenarios.Report) map[string]verdict {
	out := make(map[string]verdict, len(rep.Results))
	for _, r := range rep.Results {
		out[r.Probe.String()] = verdict{r.Observed, r.Evidence.Kind, answeredBy(r.Evidence), r.Detail}
	}
	return out
}

func cells(p *scenarios.Policy) []scenarios.Probe {
	var all []scenarios.Probe
	for pr := range p.Probes() {
		all = append(all, pr)
	}
	return all
}

// dialCell probes one cell as ProbeAll would: a client's through the host's
// forward path, never from the host as a user (which would test OUTPUT).
func dialCell(ctx SpecContext, lab *scenarios.LabBench, pr scenarios.Probe) verdict {
	r := lab.Dial(ctx, pr, 0)
	return verdict{r.Outcome, r.Evidence.Kind, answeredBy(r.Evidence), words.Detail(r)}
}

func startLab(ctx SpecContext, p *scenarios.Policy) *scenarios.LabBench {
	GinkgoHelper()
	lab, err := openLab(ctx, p)
	Expect(err).NotTo(HaveOccurred())
	return lab
}

// openLab starts a lab for p, or says why it could not.
func openLab(ctx SpecContext, p *scenarios.Policy) (*scenarios.LabBench, error) {
	lab, err := scenarios.StartLabWith(ctx, p, scenarios.RunOptions{NoRule: true})
	if err != nil {
		return nil, fmt.Errorf("start a lab for %s: %w", p.Name, err)
	}
	return lab, nil
}

// cpuHog keeps both cores busy until stopped.
func cpuHog() (stop func()) {
	GinkgoHelper()
	var hogs []*exec.Cmd
	for range 2 {
		h := exec.Command("sh", "-c", "while :; do :; done")
		Expect(h.Start()).To(Succeed())
		hogs = append(hogs, h)
	}
	return func() {
		for _, h := range hogs {
			_ = h.Process.Kill()
			_ = h.Wait()
		}
	}
}

// realClientWaits runs nc as the policy's first user (or, in a policy of
// clients only, from its first client) to every address of every host (first
// port), each bounded at 3 s, all at once, and waits: a real client that
// waited out a timeout in the lab, leaving whatever kernel state it leaves
// (neighbour entries FAILED, conntrack entries).
func realClientWaits(ctx SpecContext, lab *scenarios.LabBench, p *scenarios.Policy) error {
	command := func(argv ...string) (*exec.Cmd, error) {
		if len(p.Users) > 0 {
			return lab.CommandAs(ctx, scenarios.Identity(p.Users[0]), argv...), nil
		}
		for _, n := range p.Networks {
			for _, c := range n.Clients {
				return lab.ClientCommand(ctx, c.Name, argv...)
			}
		}
		return nil, fmt.Errorf("policy %s has neither users nor clients to run a real client as", p.Name)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, h := range p.Hosts {
		if len(h.Ports) == 0 {
			continue
		}
		port := h.Ports[0]
		for _, a := range h.Addresses {
			argv := []string{"timeout", "3", "nc", "-w", "3"}
			if port.Proto == "udp" {
				argv = append(argv, "-u")
			}
			argv = append(argv, a.String(), strconv.Itoa(int(port.First)))
			cmd, err := command(argv...)
			if err != nil {
				return err
			}
			cmd.Stdin = strings.NewReader("egresslab\n")
			wg.Add(1)
			go func() { defer wg.Done(); _ = cmd.Run() }() // its verdict is not what is tested
		}
	}
	return nil
}

var regimes = []regime{
	{"each cell alone in a fresh lab", func(ctx SpecContext, p *scenarios.Policy) (map[string]verdict, error) {
		out := map[string]verdict{}
		for _, pr := range cells(p) {
			lab, err := openLab(ctx, p)
			if err != nil {
				return nil, err
			}
			out[pr.String()] = dialCell(ctx, lab, pr)
			lab.Close()
		}
		return out, nil
	}},
	{"all cells in one lab, random order, 1 worker", func(ctx SpecContext, p *scenarios.Policy) (map[string]verdict, error) {
		lab, err := openLab(ctx, p)
		if err != nil {
			return nil, err
		}
		defer lab.Close()
		all := cells(p)
		rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		out := map[string]verdict{}
		for _, pr := range all {
			out[pr.String()] = dialCell(ctx, lab, pr)
		}
		return out, nil
	}},
	{"all cells in one lab, 64 workers", func(ctx SpecContext, p *scenarios.Policy) (map[string]verdict, error) {
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{NoRule: true})
		if err != nil {
			return nil, err
		}
		return cellVerdicts(rep), nil
	}},
	{"after a real client waited out 3 s to every address", func(ctx SpecContext, p *scenarios.Policy) (map[string]verdict, error) {
		lab, err := openLab(ctx, p)
		if err != nil {
			return nil, err
		}
		defer lab.Close()
		if err := realClientWaits(ctx, lab, p); err != nil {
			return nil, err
		}
		rep, err := scenarios.ProbeAll(ctx, lab, p, scenarios.RunOptions{NoRule: true})
		if err != nil {
			return nil, err
		}
		return cellVerdicts(rep), nil
	}},
	{"every flow probed a second time in the same lab", func(ctx SpecContext, p *scenarios.Policy) (map[string]verdict, error) {
		lab, err := openLab(ctx, p)
		if err != nil {
			return nil, err
		}
		defer lab.Close()
		if _, err := scenarios.ProbeAll(ctx, lab, p, scenarios.RunOptions{NoRule: true}); err != nil {
			return nil, fmt.Errorf("first round: %w", err)
		}
		rep, err := scenarios.ProbeAll(ctx, lab, p, scenarios.RunOptions{NoRule: true})
		if err != nil {
			return nil, fmt.Errorf("second round: %w", err)
		}
		return cellVerdicts(rep), nil
	}},
	{"under a CPU hog on both cores", func(ctx SpecContext, p *scenarios.Policy) (map[string]verdict, error) {
		stop := cpuHog()
		defer stop()
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{NoRule: true})
		if err != nil {
			return nil, err
		}
		return cellVerdicts(rep), nil
	}},
}

// differences runs every regime on p and lists each cell whose verdict in a
// regime differs from the first regime's, and each regime that could not run,
// with its error in full.
func differences(ctx SpecContext, p *scenarios.Policy, name string) (diffs []string, cellCount int) {
	GinkgoHelper()
	var base map[string]verdict
	var baseName string
	for _, r := range regimes {
		got, err := r.probe(ctx, p)
		if err != nil {
			diffs = append(diffs, fmt.Sprintf("%s: %q could not run: %v", name, r.name, err))
			continue
		}
		Expect(got).NotTo(BeEmpty(), "%s: %s probed nothing", name, r.name)
		if base == nil {
			base, baseName = got, r.name
			continue
		}
		Expect(got).To(HaveLen(len(base)), "%s: %s probed other cells", name, r.name)
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !got[k].same(base[k]) {
				diffs = append(diffs, fmt.Sprintf("%s: %s: %q gives %s, %q gives %s",
					name, k, baseName, base[k], r.name, got[k]))
			}
		}
	}
	return diffs, len(base)
}

var _ = Describe("verdicts that depend on nothing but the ruleset", Label("determinism"), Serial, func() {
	It("decides a neighbour discovery the rules broke as dropped, even when the kernel reports address unreachable first", func(ctx SpecContext) {
		p, err := scenarios.Load(filepath.Join(determinismDir, "nd-fast-fail.yaml"))
		Expect(err).NotTo(HaveOccurred())
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{NoRule: true})
		Expect(err).NotTo(HaveOccurred())
		matched := 0
		for _, r := range rep.Results {
			if !r.Address.Is6() {
				continue
			}
			matched++
			Expect(r.Observed).To(Equal(probe.Dropped), "%s: %s", r.Probe, r.Detail)
			Expect(r.Evidence.Kind).To(Equal(probe.NeighbourDiscovery), "%s: %s", r.Probe, r.Detail)
			Expect(r.Evidence.ICMP).NotTo(BeNil(), "the evidence says the kernel reported address unreachable: %s", r.Detail)
		}
		Expect(matched).To(Equal(2))
	})

	It("keeps a REJECT a REJECT through a burst of 2,000 probes in one lab, both families, under a CPU hog", func(ctx SpecContext) {
		p, err := scenarios.Load(filepath.Join(determinismDir, "reject-burst.yaml"))
		Expect(err).NotTo(HaveOccurred())
		stop := cpuHog()
		defer stop()
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{NoRule: true})
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.Results).To(HaveLen(2000))
		var wrong []string
		for _, r := range rep.Results {
			if r.Observed != probe.Rejected || r.Evidence.Kind != probe.ICMPError {
				wrong = append(wrong, fmt.Sprintf("%s: %s (%s)", r.Probe, r.Observed, r.Detail))
			}
		}
		Expect(wrong).To(BeEmpty())
	})

	It("gives each cell of the small set the same outcome and evidence kind in every regime", func(ctx SpecContext) {
		var diffs []string
		total := 0
		for _, f := range []string{"nd-fast-fail.yaml", "reject40.yaml"} {
			p, err := scenarios.Load(filepath.Join(determinismDir, f))
			Expect(err).NotTo(HaveOccurred())
			d, n := differences(ctx, p, f)
			diffs, total = append(diffs, d...), total+n
		}
		entries, err := catalogue.All()
		Expect(err).NotTo(HaveOccurred())
		for _, s := range entries {
			if s.Name != "nft-ip-protocol-in-inet" {
				continue
			}
			for _, v := range s.Variants {
				d, n := differences(ctx, v.Policy, s.Name+"/"+v.Name)
				diffs, total = append(diffs, d...), total+n
			}
		}
		Expect(total).To(BeNumerically(">", 40))
		Expect(diffs).To(BeEmpty())
	})
})
