package suites_test

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The sweep spec (issue 12): every port of a range is probed, and the counts
// of each outcome are the ones testdata/sweep/sweep.rules gives. A sample of
// the cells is dialled again by a real client (bash's /dev/tcp) run as the
// user inside the same lab; it must see what the probe saw. The full
// 131,070-probe sweep runs in `make bench`.
var _ = Describe("a port sweep", Label("sweep"), func() {
	It("gives every port of a range the ruleset's verdict, as a real client sees it", SpecTimeout(2*time.Minute), func(ctx SpecContext) {
		p, err := scenarios.Load("../testdata/sweep/sweep.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Size()).To(Equal(2 * (2*(2048+11) + 2*64)))

		lab, err := scenarios.StartLab(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		rep, err := scenarios.ProbeAll(ctx, lab, p, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.Results).To(HaveLen(p.Size()))

		// Per user and family, from sweep.rules: on the world host, tcp 25,
		// 80, 443 and 1500-1599 connect, the rest of 1-1023 is reset, the
		// rest of 1-2048 dropped; udp 5300-5304 echo, 5305-5310 are dropped.
		// Everything on lo connects.
		counts := map[string]int{}
		for _, r := range rep.Results {
			counts[fmt.Sprintf("%s %s %s %s", r.Host, r.Family(), r.Port.Proto, r.Observed)]++
		}
		want := map[string]int{}
		for _, fam := range []string{"ipv4", "ipv6"} {
			want["sweep.example.test "+fam+" tcp connected"] = 2 * (3 + 100)
			want["sweep.example.test "+fam+" tcp refused"] = 2 * (1023 - 3)
			want["sweep.example.test "+fam+" tcp dropped"] = 2 * (2048 - 1023 - 100)
			want["sweep.example.test "+fam+" udp connected"] = 2 * 5
			want["sweep.example.test "+fam+" udp dropped"] = 2 * 6
			want["svc.localhost "+fam+" tcp connected"] = 2 * 64
		}
		Expect(counts).To(Equal(want))
		Expect(rep.Pass()).To(BeTrue())

		// The sample: www-data's cells at these ports, on every address.
		sample := map[string][]uint16{
			"sweep.example.test": {1, 22, 25, 80, 1023, 1024, 1500, 1599, 1600, 2048},
			"svc.localhost":      {40000, 40031, 40063},
		}
		observed := map[netip.AddrPort]probe.Outcome{}
		for _, r := range rep.Results {
			if r.User.Name == "www-data" && r.Port.Proto == "tcp" {
				observed[netip.AddrPortFrom(r.Address, r.Port.Number)] = r.Observed
			}
		}
		var script strings.Builder
		var targets []netip.AddrPort
		for _, h := range p.Hosts {
			for _, a := range h.Addresses {
				for _, port := range sample[h.Name] {
					t := netip.AddrPortFrom(a, port)
					targets = append(targets, t)
					// connected: 0; refused: bash fails at once (1);
					// dropped: the client is still trying when timeout ends it (124).
					fmt.Fprintf(&script, "(timeout 2 bash -c 'exec 3<>/dev/tcp/%s/%d' 2>/dev/null; echo %s $?) &\n", a, port, t)
				}
			}
		}
		script.WriteString("wait\n")
		u, ok := p.User("www-data")
		Expect(ok).To(BeTrue())
		out, err := lab.CommandAs(ctx, scenarios.Identity(u), "bash", "-c", script.String()).Output()
		Expect(err).NotTo(HaveOccurred())
		client := map[netip.AddrPort]probe.Outcome{}
		for line := range strings.Lines(string(out)) {
			target, status, _ := strings.Cut(strings.TrimSpace(line), " ")
			t, err := netip.ParseAddrPort(target)
			Expect(err).NotTo(HaveOccurred(), "client output %q", line)
			code, err := strconv.Atoi(status)
			Expect(err).NotTo(HaveOccurred(), "client output %q", line)
			client[t] = map[int]probe.Outcome{0: probe.Connected, 1: probe.Refused, 124: probe.Dropped}[code]
		}
		want2 := map[netip.AddrPort]probe.Outcome{}
		for _, t := range targets {
			want2[t] = observed[t]
		}
		Expect(client).To(Equal(want2), "a real client as www-data saw (left) what the probes did not (right)")
		Expect(want2).To(ContainElements(probe.Connected, probe.Refused, probe.Dropped), "the sample covers every outcome")
	})
})
