package suites_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/scenarios/report/words"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The lab is a real host that has just loaded its firewall (SPEC.md): each
// spec compares a verdict with what a real client, run as the user inside the
// same lab, gets from the kernel.

// realDial runs bash's /dev/tcp as u inside lab, bounded at 2 s, and returns
// bash's exit status and what it printed (124: still trying, as for a drop).
func realDial(ctx SpecContext, lab *scenarios.LabBench, p *scenarios.Policy, user, script string) (int, string) {
	GinkgoHelper()
	u, ok := p.User(user)
	Expect(ok).To(BeTrue())
	out, err := lab.CommandAs(ctx, scenarios.Identity(u), "timeout", "2", "bash", "-c", script).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	Expect(err).NotTo(HaveOccurred(), "the real client did not run")
	return 0, string(out)
}

func truthLab(ctx SpecContext, file string) (*scenarios.Policy, *scenarios.LabBench, *scenarios.Report) {
	GinkgoHelper()
	p, err := scenarios.Load(filepath.Join("../testdata/truth", file))
	Expect(err).NotTo(HaveOccurred())
	lab, err := scenarios.StartLab(ctx, p)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(lab.Close)
	rep, err := scenarios.ProbeAll(ctx, lab, p, scenarios.RunOptions{})
	Expect(err).NotTo(HaveOccurred())
	return p, lab, rep
}

// result finds the one result of user to address.
func result(rep *scenarios.Report, user, addr string) scenarios.Result {
	GinkgoHelper()
	var found []scenarios.Result
	for _, r := range rep.Results {
		if r.User.Name == user && r.Address.String() == addr {
			found = append(found, r)
		}
	}
	Expect(found).To(HaveLen(1), "%s -> %s", user, addr)
	return found[0]
}

var _ = Describe("the lab as a real host", Label("truth"), func() {
	It("dials from the kernel's ephemeral ports, as real clients do: a source-port allowlist lets both through", func(ctx SpecContext) {
		p, lab, rep := truthLab(ctx, "sport.yaml")
		Expect(rep.Pass()).To(BeTrue())
		for _, addr := range []string{"192.0.2.80", "2001:db8::80"} {
			Expect(result(rep, "www-data", addr).Observed).To(Equal(probe.Connected))
			code, out := realDial(ctx, lab, p, "www-data", fmt.Sprintf("exec 3<>/dev/tcp/%s/80", addr))
			Expect(code).To(BeZero(), out)
		}
	})

	It("answers from loopback listeners as their owner: root by default, the served-by user otherwise", func(ctx SpecContext) {
		p, lab, rep := truthLab(ctx, "answers.yaml")
		Expect(rep.Pass()).To(BeTrue())
		Expect(result(rep, "www-data", "127.0.0.1").Observed).To(Equal(probe.Connected))
		code, out := realDial(ctx, lab, p, "www-data", "exec 3<>/dev/tcp/127.0.0.1/25; head -n 1 <&3")
		Expect(code).To(BeZero(), out)
		Expect(out).To(HavePrefix("220 relay.localhost"))

		relay2 := result(rep, "www-data", "127.0.0.2")
		Expect(relay2.Observed).To(Equal(probe.Dropped))
		Expect(relay2.Evidence).To(Equal(probe.Evidence{Kind: probe.ReturnPath, Where: probe.Output, Packet: probe.Answer}))
		code, _ = realDial(ctx, lab, p, "www-data", "exec 3<>/dev/tcp/127.0.0.2/2525")
		Expect(code).To(Equal(124), "the real client must hang: postfix's SYN-ACK is dropped")

		Expect(result(rep, "postfix", "127.0.0.1").Evidence.Kind).To(Equal(probe.Egress))
	})

	It("gives the kernel's verdict when the candidate changes the host itself, naming the cause", func(ctx SpecContext) {
		p, lab, rep := truthLab(ctx, "hoststate.yaml")
		Expect(rep.Pass()).To(BeTrue())
		cases := []struct {
			addr, real string
			outcome    probe.Outcome
			errno      string
			cause      string
		}{
			{"198.51.100.7", "Invalid argument", probe.Dropped, "EINVAL", "route 198.51.100.0/24 blackhole"},
			{"203.0.113.77", "No route to host", probe.Rejected, "EHOSTUNREACH", "route 203.0.113.0/24 unreachable"},
			{"2001:db8::6", "Cannot assign requested address", probe.Rejected, "EADDRNOTAVAIL", "IPv6 is switched off on this host by the candidate's sysctl"},
		}
		for _, c := range cases {
			r := result(rep, "www-data", c.addr)
			Expect(r.Observed).To(Equal(c.outcome), c.addr)
			Expect(r.Evidence.Kind).To(Equal(probe.HostState), c.addr)
			Expect(r.Evidence.Errno).To(Equal(c.errno), c.addr)
			Expect(words.Cause(r.Evidence)).To(HavePrefix(c.cause), c.addr)
			code, out := realDial(ctx, lab, p, "www-data", fmt.Sprintf("exec 3<>/dev/tcp/%s/80", c.addr))
			Expect(code).To(Equal(1), out)
			Expect(out).To(ContainSubstring(c.real))
		}
	})

	// The candidate's scripts plant a rule in a chain of the lab's sentinel,
	// made before the lab makes it: the lab creates its table rather than
	// merging into the candidate's, so the install is refused, every run.
	It("refuses to give verdicts when the candidate changed the lab's own machinery: exit 3, not verdicts", func(ctx SpecContext) {
		p, err := scenarios.Load("../testdata/truth/tamper.yaml")
		Expect(err).NotTo(HaveOccurred())
		lab, err := scenarios.StartLab(ctx, p)
		Expect(lab).To(BeNil())
		var tamper *netns.TamperError
		Expect(errors.As(err, &tamper)).To(BeTrue(), "%v", err)
		Expect(tamper.What).To(Equal("the drop sentinel (the candidate made a table inet egresslab_sentinel before the lab did)"))
	})

	It("refuses to give verdicts when the candidate made the sentinel's forward chain first", SpecTimeout(time.Minute), func(ctx SpecContext) {
		p, err := scenarios.Load("../testdata/truth/tamper-forward.yaml")
		Expect(err).NotTo(HaveOccurred())
		lab, err := scenarios.StartLab(ctx, p)
		Expect(lab).To(BeNil())
		var tamper *netns.TamperError
		Expect(errors.As(err, &tamper)).To(BeTrue(), "%v", err)
		Expect(tamper.What).To(Equal("the drop sentinel (the candidate made a table inet egresslab_sentinel before the lab did)"))
	})

	It("counts a chain added to the sentinel's table as tampering, not as the candidate's ruleset", func(ctx SpecContext) {
		p, err := scenarios.Load("../testdata/truth/answers.yaml")
		Expect(err).NotTo(HaveOccurred())
		lab, err := scenarios.StartLab(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		Expect(lab.CheckHarness()).To(Succeed())
		out, err := lab.Command(ctx, "nft", "add", "chain", "inet", "egresslab_sentinel", "planted", "{ type filter hook output priority 0; }").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", out)
		err = lab.CheckHarness()
		var tamper *netns.TamperError
		Expect(errors.As(err, &tamper)).To(BeTrue(), "%v", err)
		Expect(tamper.What).To(Equal("the drop sentinel (a chain planted that is not the lab's)"))
	})

	It("keys evidence by the whole flow: 200,000 probes through one lab, every verdict right", Label("long"), func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		var ports, rejected, dropped []string
		for port := 1000; port < 1100; port++ {
			ports = append(ports, fmt.Sprint(port))
			switch {
			case port <= 1032:
				rejected = append(rejected, fmt.Sprint(port))
			case port <= 1065:
				dropped = append(dropped, fmt.Sprint(port))
			}
		}
		policy := fmt.Sprintf(`version: 1
users:
  www-data: {uid: 33}
hosts:
  far.example.test:
    addresses: [192.0.2.9, "2001:db8::9"]
    ports: [%s]
ruleset:
  nft: rules.nft
expect:
  - reject: {port: [%s]}
  - drop: {port: [%s]}
  - allow: {}
`, strings.Join(ports, ", "), strings.Join(rejected, ", "), strings.Join(dropped, ", "))
		rules := `table inet f {
	chain out {
		type filter hook output priority 0; policy accept;
		tcp dport 1000-1032 reject with tcp reset
		tcp dport 1033-1065 drop
	}
}
`
		Expect(os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(policy), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir, "rules.nft"), []byte(rules), 0o644)).To(Succeed())
		p, err := scenarios.Load(filepath.Join(dir, "p.yaml"))
		Expect(err).NotTo(HaveOccurred())
		lab, err := scenarios.StartLab(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lab.Close)
		probes := 0
		for probes < 200_000 {
			// Evidence is what this spec is about: the deciding rule's trace stays off.
			rep, err := scenarios.ProbeAll(ctx, lab, p, scenarios.RunOptions{NoRule: true})
			Expect(err).NotTo(HaveOccurred())
			for _, r := range rep.Results {
				Expect(r.Pass()).To(BeTrue(), "after %d probes: %s: expected %s, observed %s: %s", probes, r.Probe, r.Expect, r.Observed, r.Detail)
			}
			probes += len(rep.Results)
		}
	})
})
