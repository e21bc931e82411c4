package scenarios_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/egresslab/egresslab/internal/hostsnap"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const fromHostData = "../testdata/fromhost/"

// fakeHost is a network namespace the spec makes with `unshare --net` and
// loads rules into, standing in for a running host: the real one is never
// touched. It lives as long as its holder's stdin stays open.
func fakeHost(ctx context.Context) (pid int, run hostsnap.Runner) {
	GinkgoHelper()
	setup := `set -e
ip link set lo up
ip link add wan0 type veth peer name wan0-peer
ip link set wan0-peer up
ip link set wan0 up
ip addr add 203.0.113.10/24 dev wan0
ip route add default via 203.0.113.1 dev wan0
iptables-nft-restore < "$1/host.v4"
nft -f "$1/host6.nft"
echo ready
exec cat`
	dir, err := filepath.Abs(fromHostData)
	Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command("unshare", "--net", "--", "sh", "-c", setup, "fake-host", dir)
	stdin, err := cmd.StdinPipe()
	Expect(err).NotTo(HaveOccurred())
	stdout, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	cmd.Stderr = GinkgoWriter
	Expect(cmd.Start()).To(Succeed())
	DeferCleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	Expect(err).NotTo(HaveOccurred(), "the fake host did not come up")
	Expect(line).To(Equal("ready\n"))
	pid = cmd.Process.Pid
	run = func(ctx context.Context, argv ...string) ([]byte, error) {
		args := append([]string{fmt.Sprintf("--net=/proc/%d/ns/net", pid), "--"}, argv...)
		out, err := exec.CommandContext(ctx, "nsenter", args...).Output()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
		return out, nil
	}
	return pid, run
}

// withoutTimes drops the *-save comment lines, which carry the time.
func withoutTimes(b []byte) string {
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

var _ = Describe("verify --from-host", Label("lab"), func() {
	It("gives the verdicts of the equivalent policy file, and leaves the host as it was", func(ctx SpecContext) {
		_, run := fakeHost(ctx)
		etc := GinkgoT().TempDir()
		Expect(os.WriteFile(filepath.Join(etc, "passwd"), []byte("root:x:0:0::/root:/bin/sh\npostfix:x:107:114::/:/usr/sbin/nologin\nwww-data:x:33:33::/:/usr/sbin/nologin\n"), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(etc, "group"), []byte("root:x:0:\nmailers:x:1001:postfix,www-data\nwww-data:x:33:\n"), 0o644)).To(Succeed())

		before := map[string]string{}
		for _, argv := range [][]string{{"iptables-nft-save"}, {"nft", "list", "ruleset"}, {"ip", "-d", "link", "show"}} {
			out, err := run(ctx, argv...)
			Expect(err).NotTo(HaveOccurred())
			before[argv[0]] = withoutTimes(out)
		}
		snap, err := hostsnap.Take(ctx, run, etc)
		Expect(err).NotTo(HaveOccurred())
		Expect(snap.Uplink).To(Equal("wan0"))
		Expect(snap.Interfaces).To(ConsistOf("lo", "wan0", "wan0-peer"))
		Expect(snap.Saves).To(HaveKey("iptables-nft-save"))
		Expect(string(snap.NFT)).To(ContainSubstring("table ip6 host6"))
		Expect(string(snap.NFT)).NotTo(ContainSubstring("table ip filter"), "iptables-nft's own tables come from its save, not twice")
		for argv0, was := range before {
			out, err := run(ctx, strings.Fields(map[string]string{"iptables-nft-save": "iptables-nft-save", "nft": "nft list ruleset", "ip": "ip -d link show"}[argv0])...)
			Expect(err).NotTo(HaveOccurred())
			Expect(withoutTimes(out)).To(Equal(was), "the snapshot changed the host's %s", argv0)
		}

		bare, err := scenarios.Load(fromHostData + "nohost.yaml")
		Expect(err).NotTo(HaveOccurred())
		p, err := scenarios.FromHost(bare, snap)
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Lab.Uplink).To(Equal("wan0"))
		fromHost, err := scenarios.Run(ctx, p, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())

		equivalent, err := scenarios.Load(fromHostData + "policy.yaml")
		Expect(err).NotTo(HaveOccurred())
		file, err := scenarios.Run(ctx, equivalent, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())

		Expect(file.Pass()).To(BeTrue())
		verdicts := func(r *scenarios.Report) []string {
			var out []string
			for _, res := range r.Results {
				out = append(out, res.Probe.String()+": "+res.Observed.String())
			}
			return out
		}
		Expect(verdicts(fromHost)).To(Equal(verdicts(file)))
		Expect(fromHost.Pass()).To(BeTrue())
	})

	It("refuses a policy that brings its own ruleset, and a user whose ids differ from the host's", func() {
		p, err := scenarios.Load(fromHostData + "policy.yaml")
		Expect(err).NotTo(HaveOccurred())
		_, err = scenarios.FromHost(p, &hostsnap.Snapshot{})
		Expect(err).To(MatchError(ContainSubstring("leave ruleset: out of the policy")))

		bare, err := scenarios.Load(fromHostData + "nohost.yaml")
		Expect(err).NotTo(HaveOccurred())
		_, err = scenarios.FromHost(bare, &hostsnap.Snapshot{Passwd: []byte("postfix:x:110:120::/:/bin/false\n")})
		Expect(err).To(MatchError(ContainSubstring("user postfix is uid 107 gid 114 in the policy but uid 110 gid 120 on the host")))
		var perr *scenarios.Error
		Expect(err).To(BeAssignableToTypeOf(perr))
	})

	It("loads every flavour's listing with its own restore tool", func() {
		bare, err := scenarios.Load(fromHostData + "nohost.yaml")
		Expect(err).NotTo(HaveOccurred())
		p, err := scenarios.FromHost(bare, &hostsnap.Snapshot{Saves: map[string][]byte{
			"ip6tables-legacy-save": []byte("*filter\n:OUTPUT DROP [0:0]\nCOMMIT\n"),
			"iptables-nft-save":     []byte("*filter\n-A OUTPUT -j EGRESSLAB_HOST_RULES\nCOMMIT\n"),
		}, NFT: []byte("table inet t {\n}\n")})
		Expect(err).NotTo(HaveOccurred())
		script := string(p.Ruleset.Script.Data)
		Expect(script).To(ContainSubstring("ip6tables-legacy-restore <<'EGRESSLAB_HOST_RULES'\n*filter\n:OUTPUT DROP [0:0]\nCOMMIT\nEGRESSLAB_HOST_RULES\n"))
		Expect(script).To(ContainSubstring("iptables-nft-restore <<'EGRESSLAB_HOST_RULES_'\n"), "a terminator that the listing contains is made longer")
		Expect(script).To(ContainSubstring("nft -f - <<'EGRESSLAB_HOST_RULES'\ntable inet t {\n}\nEGRESSLAB_HOST_RULES\n"))
		Expect(bytes.Index(p.Ruleset.Script.Data, []byte("legacy"))).To(BeNumerically("<", bytes.Index(p.Ruleset.Script.Data, []byte("nft-restore"))))
	})
})
