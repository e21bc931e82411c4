package suites_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/netns/ruleset"
	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios"
	"github.com/egresslab/egresslab/suites/matchers"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// hostScaleRules is the size of a CSF, fail2ban or Docker host's ruleset,
// per family.
const hostScaleRules = 20000

// iptablesHostScale is an iptables-restore file of n rules for a family:
// chain policies, user chains, a fail2ban-like block list and per-user egress
// rules with owner matches and comments, over two tables.
func iptablesHostScale(ipv6 bool, n int) string {
	var b strings.Builder
	addr, reject := func(i int) string { return fmt.Sprintf("10.%d.%d.%d/32", i/65536, i/256%256, i%256) }, "icmp-port-unreachable"
	icmp := "-A INPUT -p icmp -j ACCEPT\n"
	if ipv6 {
		addr, reject = func(i int) string { return fmt.Sprintf("2001:db8:%x::%x/128", i/65536, i%65536) }, "icmp6-port-unreachable"
		icmp = "-A INPUT -p ipv6-icmp -j ACCEPT\n"
	}
	b.WriteString("*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	b.WriteString("-A OUTPUT -p tcp --dport 25 -j MARK --set-mark 0x19\nCOMMIT\n")
	b.WriteString("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [12:345]\n:f2b-sshd - [0:0]\n:egress-users - [0:0]\n")
	b.WriteString("-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n")
	b.WriteString(icmp) // neighbour discovery and errors, as every real host lets in
	b.WriteString("-A INPUT -p tcp -m multiport --dports 22,80,443 -j f2b-sshd\n-A OUTPUT -j egress-users\n")
	for i := 0; i < n-5; i++ {
		if i%2 == 0 {
			fmt.Fprintf(&b, "-A f2b-sshd -s %s -j REJECT --reject-with %s\n", addr(i), reject)
		} else {
			fmt.Fprintf(&b, "-A egress-users -d %s -p tcp -m tcp --dport %d -m owner --uid-owner %d -m comment --comment \"egress rule %d\" -j DROP\n",
				addr(i), 1+i%60000, 1000+i%100, i)
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// withOutputRule adds rule at the end of a host-scale file's filter OUTPUT.
func withOutputRule(file, rule string) string {
	return strings.TrimSuffix(file, "COMMIT\n") + rule + "\nCOMMIT\n"
}

// nftHostScale is an nft file of n rules per family: flush ruleset, a define,
// a named set, base chains with policies and a user chain.
func nftHostScale(n int) string {
	var b strings.Builder
	b.WriteString("flush ruleset\ndefine admin = 192.0.2.1\n")
	b.WriteString("table inet filter {\n\tset blocked4 {\n\t\ttype ipv4_addr\n\t\telements = { ")
	for i := 0; i < 1000; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "172.16.%d.%d", i/256, i%256)
	}
	b.WriteString(" }\n\t}\n")
	b.WriteString("\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\tiif lo accept\n\t\tip saddr $admin accept\n\t\tip saddr @blocked4 drop\n\t\tjump f2b\n\t}\n")
	b.WriteString("\tchain f2b {\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "\t\tip saddr 10.%d.%d.%d counter reject\n", i/65536, i/256%256, i%256)
	}
	b.WriteString("\t}\n\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "\t\tmeta skuid %d ip6 daddr 2001:db8:%x::%x tcp dport %d counter drop comment \"egress rule %d\"\n",
			1000+i%100, i/65536, i%65536, 1+i%60000, i)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// scriptHostScale is a shell script that loads both families' host-scale
// files with the iptables-restore tools the lab puts first on PATH.
func scriptHostScale(n int) string {
	return "#!/bin/sh\nset -e\niptables-restore <<'EOF'\n" + iptablesHostScale(false, n) + "EOF\nip6tables-restore <<'EOF'\n" +
		iptablesHostScale(true, n) + "EOF\n"
}

var counters = regexp.MustCompile(`(?m)^(:\S+ \S+) \[\d+:\d+\]$|^# .*$`)

// dumpCommands list what a flavour's tools say is loaded, both families.
// Tables are named: the legacy tools otherwise find them in /proc/net, which
// the lab's root may not read until the lab has a /proc of its own.
func dumpCommands(backend string) [][]string {
	var argv [][]string
	for _, family := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "mangle"} {
			argv = append(argv, []string{family + "-" + backend + "-save", "-t", table})
		}
	}
	return append(argv, []string{"nft", "--stateless", "list", "ruleset"})
}

// hostSideDump loads the same input, with the same tool, in a network (and
// mount) namespace of our own created by the host's root, where the batch
// size limit of the lab's user namespace does not apply, and lists it.
func hostSideDump(ctx context.Context, dir, backend string, load string) string {
	GinkgoHelper()
	var dump strings.Builder
	for _, argv := range dumpCommands(backend) {
		dump.WriteString(strings.Join(argv, " ") + " && ")
	}
	script := "mount -t tmpfs tmpfs /run && cd " + dir + " && " + load + " && " + strings.TrimSuffix(dump.String(), " && ")
	out, err := exec.CommandContext(ctx, "unshare", "--net", "--mount", "sh", "-c", script).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "load on the host side: %.2000s", out)
	return normalizeDump(string(out))
}

func labDump(ctx context.Context, lab *netns.Lab, backend string) string {
	GinkgoHelper()
	var all strings.Builder
	for _, argv := range dumpCommands(backend) {
		out, err := lab.Command(ctx, argv...).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%v in the lab: %.2000s", argv, out)
		all.Write(out)
	}
	return normalizeDump(all.String())
}

func normalizeDump(s string) string { return counters.ReplaceAllString(s, "$1") }

var _ = Describe("host-scale rulesets", Label("hostscale"), func() {
	type form struct {
		backend string
		file    string
		data    string
		load    func(ctx context.Context, lab *netns.Lab, file string, data []byte) error
		onHost  string // the same load with the same tool, in a plain namespace
	}
	ipt := func(ipv6 bool) func(context.Context, *netns.Lab, string, []byte) error {
		return func(ctx context.Context, lab *netns.Lab, file string, data []byte) error {
			return ruleset.LoadIPTables(ctx, lab, ipv6, file, data)
		}
	}
	forms := []form{}
	for _, backend := range []string{"nft", "legacy"} {
		forms = append(forms,
			form{backend, "rules.v4", iptablesHostScale(false, hostScaleRules), ipt(false), "iptables-" + backend + "-restore < rules.v4"},
			form{backend, "rules.v6", iptablesHostScale(true, hostScaleRules), ipt(true), "ip6tables-" + backend + "-restore < rules.v6"},
			form{backend, "firewall.sh", scriptHostScale(hostScaleRules),
				func(ctx context.Context, lab *netns.Lab, file string, data []byte) error {
					return ruleset.RunScript(ctx, lab, file, data)
				},
				"iptables-" + backend + "-restore < rules.v4 && ip6tables-" + backend + "-restore < rules.v6"},
		)
	}
	forms = append(forms, form{"nft", "ruleset.nft", nftHostScale(hostScaleRules),
		func(ctx context.Context, lab *netns.Lab, file string, data []byte) error {
			return ruleset.LoadNFT(ctx, lab, file, data)
		},
		"nft -f ruleset.nft"})

	for _, f := range forms {
		It(fmt.Sprintf("%s (%s flavour, %d rules per family) loads in the lab exactly as the host loads it", f.file, f.backend, hostScaleRules),
			Label(f.backend), SpecTimeout(3*time.Minute), func(ctx SpecContext) {
				dir := GinkgoT().TempDir()
				Expect(os.WriteFile(filepath.Join(dir, f.file), []byte(f.data), 0o644)).To(Succeed())
				if f.file == "firewall.sh" {
					Expect(os.WriteFile(filepath.Join(dir, "rules.v4"), []byte(iptablesHostScale(false, hostScaleRules)), 0o644)).To(Succeed())
					Expect(os.WriteFile(filepath.Join(dir, "rules.v6"), []byte(iptablesHostScale(true, hostScaleRules)), 0o644)).To(Succeed())
				}
				lab, err := netns.New(ctx, netns.Config{Name: "hostscale", Backend: f.backend,
					UplinkAddrs: []netip.Prefix{netip.MustParsePrefix("203.0.113.10/24"), netip.MustParsePrefix("2001:db8:1::10/64")}})
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(lab.Close)
				start := time.Now()
				Expect(f.load(ctx, lab, f.file, []byte(f.data))).To(Succeed())
				took := time.Since(start)
				AddReportEntry(fmt.Sprintf("load time %s %s", f.file, f.backend), took.String(), ReportEntryVisibilityFailureOrVerbose)
				fmt.Fprintf(GinkgoWriter, "loaded %s (%s) in %s\n", f.file, f.backend, took)
				inLab := labDump(ctx, lab, f.backend)
				Expect(strings.Count(inLab, "\n")).To(BeNumerically(">=", hostScaleRules))
				onHost := hostSideDump(ctx, dir, f.backend, f.onHost)
				Expect(firstDifference(inLab, onHost)).To(BeEmpty(), "the lab's listing (first) differs from the host's (second)")
			})
	}
})

var _ = It("verify runs over a host-scale ruleset of both families", Label("hostscale"), SpecTimeout(3*time.Minute), func(ctx SpecContext) {
	dir := GinkgoT().TempDir()
	smtp := "-A OUTPUT -p tcp --dport 25 -m owner --uid-owner 33 -j REJECT --reject-with tcp-reset"
	Expect(os.WriteFile(filepath.Join(dir, "rules.v4"), []byte(withOutputRule(iptablesHostScale(false, hostScaleRules), smtp)), 0o644)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(dir, "rules.v6"), []byte(withOutputRule(iptablesHostScale(true, hostScaleRules), smtp)), 0o644)).To(Succeed())
	policy := "version: 1\nusers:\n  postfix: {uid: 107}\n  www-data: {uid: 33}\nhosts:\n  mx.example.test:\n    addresses: [192.0.2.25, \"2001:db8::25\"]\n    ports: [25/tcp]\n" +
		"ruleset:\n  iptables: rules.v4\n  ip6tables: rules.v6\nexpect:\n  - reject: {user: www-data}\n  - allow: {}\n"
	Expect(os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o644)).To(Succeed())
	p, err := scenarios.Load(filepath.Join(dir, "policy.yaml"))
	Expect(err).NotTo(HaveOccurred())
	rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{})
	Expect(err).NotTo(HaveOccurred())
	Expect(rep).To(matchers.HaveOutcomes(
		matchers.Cell{User: "postfix", Host: "mx.example.test", Family: "ipv4", Port: "25/tcp", Outcome: probe.Connected},
		matchers.Cell{User: "postfix", Host: "mx.example.test", Family: "ipv6", Port: "25/tcp", Outcome: probe.Connected},
		matchers.Cell{User: "www-data", Host: "mx.example.test", Family: "ipv4", Port: "25/tcp", Outcome: probe.Refused},
		matchers.Cell{User: "www-data", Host: "mx.example.test", Family: "ipv6", Port: "25/tcp", Outcome: probe.Refused},
	))
	Expect(rep.Pass()).To(BeTrue())
	named := 0
	for _, r := range rep.Results {
		if r.User.Name == "www-data" {
			Expect(r.Decider).NotTo(BeNil(), "%s", r.Probe)
			Expect(r.Decider.Text).To(Equal("-A OUTPUT -p tcp -m tcp --dport 25 -m owner --uid-owner 33 -j REJECT --reject-with tcp-reset"), "the deciding rule, found among 20,000")
			named++
		}
	}
	Expect(named).To(Equal(2))
})

// firstDifference shows the first line where two listings differ, or "".
func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n%q\n%q", i+1, x, y)
		}
	}
	return ""
}
