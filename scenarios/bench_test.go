package scenarios_test

// Benchmarks of issue 4: the lab's building blocks and whole probe matrices,
// on the real kernel. They need root, as egresslab does; run them with
//
//	go test -run '^$' -bench . -benchmem ./scenarios/
//
// (-run '^$' keeps the package's Ginkgo suite out of the way). Allocation
// figures count this process only: the lab's holder and the tools it runs
// (iptables-restore, nft) are other processes. testdata/bench/compare.sh
// measures the whole command against a hand-rolled baseline.

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/ruleset"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/report/words"
)

// benchDir holds the benchmark's policies; go test runs in the package's directory.
var benchDir = filepath.Join("..", "testdata", "bench")

// needRoot fails loudly where a lab cannot start: a benchmark that silently
// skipped would print no figure, and nobody would notice the gap.
func needRoot(b *testing.B) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Fatal("the lab benchmarks need root (they start real labs): run them with sudo")
	}
}

func loadBench(b *testing.B, name string) *scenarios.Policy {
	b.Helper()
	p, err := scenarios.Load(filepath.Join(benchDir, name))
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// startLab starts p's lab (served, ruleset loaded, sentinel in place) outside
// the timer and closes it when the benchmark ends.
func startLab(b *testing.B, p *scenarios.Policy) *scenarios.LabBench {
	b.Helper()
	lab, err := scenarios.StartLab(context.Background(), p)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lab.Close() })
	return lab
}

// smallConfig is a lab of two users, as a one-story policy has.
var smallConfig = netns.Config{
	Name: "bench",
	Accounts: []netns.Account{
		{Name: "postfix", Identity: netns.Identity{UID: 107, GID: 114}},
		{Name: "www-data", Identity: netns.Identity{UID: 33, GID: 33}},
	},
	UplinkAddrs: []netip.Prefix{netip.MustParsePrefix("203.0.113.10/24"), netip.MustParsePrefix("2001:db8:1::10/64")},
}

// BenchmarkLabUpDown starts and closes a lab: holder process, user, network,
// mount and PID namespaces, /etc overlays, the world beyond the uplink and
// its veth pair, addresses and routes of both families.
func BenchmarkLabUpDown(b *testing.B) {
	needRoot(b)
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		lab, err := netns.New(ctx, smallConfig)
		if err != nil {
			b.Fatal(err)
		}
		if err := lab.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// smallRuleset is the seed story's ruleset, as iptables-restore reads it.
var smallRuleset = []byte(`*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A OUTPUT -p tcp -m tcp --dport 25 -m owner --uid-owner postfix -j ACCEPT
-A OUTPUT -p tcp -m tcp --dport 587 -m owner --uid-owner postfix -j ACCEPT
-A OUTPUT -p tcp -m multiport --dports 25,465,587 -j REJECT --reject-with tcp-reset
-A OUTPUT -j DROP
COMMIT
`)

// BenchmarkRulesetLoad runs iptables-restore (nft backend) inside an up lab:
// nsenter, the tool's own start-up, and one nftables transaction. Each load
// replaces the filter table, as iptables-restore without --noflush does.
func BenchmarkRulesetLoad(b *testing.B) {
	needRoot(b)
	ctx := context.Background()
	for _, family := range []struct {
		name string
		ipv6 bool
	}{{"iptables", false}, {"ip6tables", true}} {
		b.Run(family.name, func(b *testing.B) {
			lab, err := netns.New(ctx, smallConfig)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { lab.Close() })
			b.ReportAllocs()
			for b.Loop() {
				if err := ruleset.LoadIPTables(ctx, lab, family.ipv6, "bench.rules", smallRuleset); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkProbe dials one target per iteration in the 100-probe policy's
// lab, one outcome per sub-benchmark. Every iteration must end in the
// outcome the ruleset gives: a benchmark of wrong verdicts measures nothing.
func BenchmarkProbe(b *testing.B) {
	needRoot(b)
	p := loadBench(b, "matrix100.yaml")
	users := map[string]scenarios.User{}
	for _, u := range p.Users {
		users[u.Name] = u
	}
	cases := []struct {
		name string
		user string
		addr string
		port uint16
		want probe.Outcome
	}{
		{"connected/world-ipv4", "www-data", "192.0.2.80", 80, probe.Connected},
		{"connected/world-ipv6", "www-data", "2001:db8::80", 80, probe.Connected},
		{"connected/loopback-ipv4", "www-data", "127.0.0.1", 80, probe.Connected},
		{"connected/smtp-greeting", "postfix", "192.0.2.80", 25, probe.Connected},
		{"dropped/ipv4", "backup", "192.0.2.80", 80, probe.Dropped},
		{"dropped/ipv6", "backup", "2001:db8::80", 80, probe.Dropped},
		{"refused/ipv4", "backup", "192.0.2.80", 5432, probe.Refused},
	}
	ctx := context.Background()
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// A lab per case: each probe takes a fresh source port, and a
			// lab's ports last a few tens of thousands of probes.
			lab := startLab(b, p)
			id := scenarios.Identity(users[c.user])
			t := probe.Target{Addr: netip.MustParseAddr(c.addr), Port: c.port, Proto: "tcp"}
			b.ReportAllocs()
			for b.Loop() {
				if r := probe.Dial(ctx, lab, id, t, 0); r.Outcome != c.want {
					b.Fatalf("%s as %s: %s (%s), want %s", t, c.user, r.Outcome, words.Detail(r), c.want)
				}
			}
		})
	}
}

// benchMatrix probes p's whole matrix per iteration in one lab started
// outside the timer, checks every verdict and reports the rate as unit.
func benchMatrix(b *testing.B, p *scenarios.Policy, unit string) {
	lab := startLab(b, p)
	ctx := context.Background()
	probes := p.Size()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		rep, err := scenarios.ProbeAll(ctx, lab, p, scenarios.RunOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if !rep.Pass() {
			s := rep.Summary()
			b.Fatalf("%s: %d of %d probes failed, %d errors", p.Name, s.Failed, s.Probes, s.Errors)
		}
		n++
	}
	b.ReportMetric(float64(n*probes)/b.Elapsed().Seconds(), unit)
}

// BenchmarkMatrix100 probes testdata/bench/matrix100.yaml: 5 users × 2 hosts
// × 2 addresses × 5 ports; 50 dropped, 12 refused, 38 connected.
func BenchmarkMatrix100(b *testing.B) {
	needRoot(b)
	p := loadBench(b, "matrix100.yaml")
	if n := len(p.Matrix()); n != 100 {
		b.Fatalf("matrix100.yaml has %d probes, want 100", n)
	}
	benchMatrix(b, p, "probes/s")
}

// BenchmarkMatrix1000 probes testdata/bench/matrix1000.yaml: 10 users × 2
// hosts × 2 addresses (one IPv4, one IPv6 each) × 25 ports; 500 dropped at
// egress, 100 refused, 400 connected.
func BenchmarkMatrix1000(b *testing.B) {
	needRoot(b)
	p := loadBench(b, "matrix1000.yaml")
	if n := len(p.Matrix()); n != 1000 {
		b.Fatalf("matrix1000.yaml has %d probes, want 1000", n)
	}
	benchMatrix(b, p, "verdicts/s")
}

// BenchmarkRun is what `egresslab verify` does in-process, lab included:
// start the lab, serve, load the ruleset, install the sentinel, probe the
// whole matrix, check the sentinel, close.
func BenchmarkRun(b *testing.B) {
	needRoot(b)
	for _, name := range []string{"matrix100.yaml", "matrix1000.yaml"} {
		b.Run(name, func(b *testing.B) {
			p := loadBench(b, name)
			probes := len(p.Matrix())
			ctx := context.Background()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if !rep.Pass() {
					b.Fatalf("%s: %+v", p.Name, rep.Summary())
				}
				n++
			}
			b.ReportMetric(float64(n*probes)/b.Elapsed().Seconds(), "verdicts/s")
		})
	}
}

// BenchmarkSweep probes testdata/bench/sweep.yaml: one user × one host × both
// families × every TCP port, 131,070 probes (issue 12). Run it once:
// -bench Sweep -benchtime 1x.
func BenchmarkSweep(b *testing.B) {
	needRoot(b)
	p := loadBench(b, "sweep.yaml")
	if n := p.Size(); n != 131070 {
		b.Fatalf("sweep.yaml has %d probes, want 131070", n)
	}
	benchMatrix(b, p, "verdicts/s")
}
