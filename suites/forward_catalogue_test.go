package suites_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/egresslab/egresslab/internal/catalogue"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Every forwarded catalogue entry's forward cells, dialled by real clients in
// the plain lab of testdata/forward/plainlab.sh (no egresslab in the path),
// must fail exactly as the entry documents and pass everywhere else: this is
// the truth the forwarded-traffic lab is compared with.
var _ = Describe("the forwarded catalogue entries, with real clients in the plain lab", Label("forward", "real-client"), func() {
	entries, err := catalogue.All()
	It("loads", func() { Expect(err).NotTo(HaveOccurred()) })
	forwarded := 0
	for _, s := range entries {
		if !s.Forwarded() {
			continue
		}
		forwarded++
		It(s.Name+": each variant's clients get exactly the documented forward cells wrong", func(ctx SpecContext) {
			lines := make([][]string, len(s.Variants))
			errs := make([]error, len(s.Variants))
			var wg sync.WaitGroup
			for i, v := range s.Variants {
				wg.Add(1)
				go func() {
					defer wg.Done()
					lines[i], errs[i] = plainRun(ctx, v.Policy)
				}()
			}
			wg.Wait()
			for i, v := range s.Variants {
				Expect(errs[i]).NotTo(HaveOccurred(), "%s/%s", s.Name, v.Name)
				Expect(forwardProblems(v, lines[i])).To(BeEmpty(), "%s/%s, the plain lab said:\n%s", s.Name, v.Name, strings.Join(lines[i], "\n"))
			}
		}, SpecTimeout(3*time.Minute))
	}
	It("has the issue's five forwarded stories at least", func() { Expect(forwarded).To(BeNumerically(">=", 5)) })
})

// plainRun builds policy p's one network and its clients in the plain lab,
// with p's ruleset, and dials every address and port of every host from
// every client. It returns plainlab.sh's lines: CLIENT ADDRESS PORT OUTCOME.
func plainRun(ctx SpecContext, p *scenarios.Policy) ([]string, error) {
	if len(p.Networks) != 1 {
		return nil, fmt.Errorf("%s: plainlab.sh runs one network, the policy has %d", p.Name, len(p.Networks))
	}
	n := p.Networks[0]
	args := []string{"-n", n.Name}
	for _, a := range n.Addresses {
		args = append(args, "-a", a.String())
	}
	for _, c := range n.Clients {
		var addrs []string
		for _, a := range c.Addresses {
			addrs = append(addrs, a.String())
		}
		args = append(args, "-c", c.Name+"="+strings.Join(addrs, ","))
	}
	for _, h := range p.Hosts {
		for _, a := range h.Addresses {
			for _, r := range h.Ports {
				if r.Proto != "tcp" || r.First != r.Last {
					return nil, fmt.Errorf("%s: host %s port %s: the plain lab dials single tcp ports", p.Name, h.Name, r)
				}
				dst := fmt.Sprintf("%s:%d", a, r.First)
				if a.Is6() {
					dst = fmt.Sprintf("[%s]:%d", a, r.First)
				}
				args = append(args, "-l", dst, "-d", dst)
			}
		}
	}
	dir, err := os.MkdirTemp("", "plainlab-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for _, part := range []struct {
		flag string
		file *scenarios.RulesetFile
	}{{"-4", p.Ruleset.IPTables}, {"-6", p.Ruleset.IP6Tables}, {"-N", p.Ruleset.NFT}, {"-S", p.Ruleset.Script}} {
		if part.file == nil {
			continue
		}
		if len(part.file.Includes) > 0 {
			return nil, fmt.Errorf("%s: %s includes files: the plain lab loads one file", p.Name, part.file.Path)
		}
		f := filepath.Join(dir, part.flag[1:]+"-"+filepath.Base(part.file.Path))
		if err := os.WriteFile(f, part.file.Data, 0o755); err != nil {
			return nil, err
		}
		args = append(args, part.flag, f)
	}
	out, err := exec.CommandContext(ctx, "../testdata/forward/plainlab.sh", args...).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return nil, fmt.Errorf("plainlab.sh: %w: %s", err, ee.Stderr)
	}
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"), nil
}

// forwardProblems checks plainlab.sh's lines against v's client probes: a
// bypass cell connects, a broken cell is blocked (as documented, when it
// says how), and every other probe meets its expectation. The plain lab's
// outcomes read as egresslab's: timeout is dropped; refused (a reset) and
// unreachable (an ICMP error) are rejected, since every host listens.
func forwardProblems(v catalogue.Variant, lines []string) []string {
	observed := map[string]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 4 {
			observed[f[0]+" "+f[1]+" "+f[2]] = f[3]
		}
	}
	var problems []string
	probes := 0
	for _, p := range v.Policy.Matrix() {
		if p.Client == nil {
			continue
		}
		probes++
		key := fmt.Sprintf("%s %s %d", p.Client.Name, p.Address, p.Port.Number)
		got, ok := observed[key]
		if !ok {
			problems = append(problems, key+": the plain lab did not dial it")
			continue
		}
		want := wantedPlain(v, p)
		if !slices.Contains(want, got) {
			problems = append(problems, fmt.Sprintf("%s: want %s, the real client got %s", p, strings.Join(want, " or "), got))
		}
	}
	if probes == 0 {
		problems = append(problems, "no client probes: a forwarded variant without clients")
	}
	if len(lines) != probes {
		problems = append(problems, fmt.Sprintf("%d lines for %d client probes", len(lines), probes))
	}
	return problems
}

// wantedPlain is what the plain lab may print for probe p of variant v.
func wantedPlain(v catalogue.Variant, p scenarios.Probe) []string {
	blocked := map[string][]string{"": {"timeout", "refused", "unreachable"}, "dropped": {"timeout"},
		"rejected": {"refused", "unreachable"}, "refused": {"refused"}}
	for _, c := range v.Bypass {
		if cellMatches(c, p) {
			return []string{"connected"}
		}
	}
	for _, c := range v.Broken {
		if cellMatches(c, p) {
			return blocked[c.Observed]
		}
	}
	switch p.Expect {
	case scenarios.Allow:
		return []string{"connected"}
	case scenarios.Drop:
		return blocked["dropped"]
	case scenarios.Reject:
		return blocked["rejected"]
	}
	return blocked[""]
}

func cellMatches(c catalogue.Cell, p scenarios.Probe) bool {
	return p.Client != nil && c.Client == p.Client.Name && c.Host == p.Host && c.Family == p.Family() &&
		(c.Port == "" || c.Port == fmt.Sprint(p.Port.Number) || c.Port == p.Port.String())
}
