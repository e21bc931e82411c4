package suites_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/scenarios"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// hostState is everything of the host a lab must never change.
func hostState() map[string]string {
	state := map[string]string{}
	run := func(name string, argv ...string) {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		state[name] = fmt.Sprintf("%s (err %v)", dropCounters(out), err)
	}
	run("iptables", "iptables-nft-save")
	run("ip6tables", "ip6tables-nft-save")
	run("iptables-legacy", "iptables-legacy-save")
	run("ip6tables-legacy", "ip6tables-legacy-save")
	run("nft", "nft", "--stateless", "list", "ruleset")
	run("links", "ip", "-d", "link", "show")
	run("addrs", "ip", "addr", "show")
	run("routes4", "ip", "-4", "route", "show", "table", "all")
	run("routes6", "ip", "-6", "route", "show", "table", "all")
	run("rules4", "ip", "-4", "rule", "show")
	run("rules6", "ip", "-6", "rule", "show")
	for _, f := range []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/hosts", "/etc/resolv.conf", "/etc/gai.conf", "/etc/hostname",
		"/proc/sys/kernel/hostname", "/proc/sysvipc/shm", "/proc/sysvipc/msg", "/proc/sysvipc/sem"} {
		b, err := os.ReadFile(f)
		state[f] = fmt.Sprintf("%x %v", sha256.Sum256(b), err)
	}
	etc, _ := os.ReadDir("/etc")
	var names []string
	for _, e := range etc {
		names = append(names, e.Name())
	}
	state["/etc entries"] = strings.Join(names, " ")
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	state["mounts"] = string(mounts)
	netnsDir, _ := os.ReadDir("/run/netns")
	state["/run/netns"] = fmt.Sprint(len(netnsDir))
	return state
}

// dropCounters removes packet counters and comment lines from *-save output,
// which change with host traffic.
func dropCounters(out []byte) string {
	var keep []string
	for _, ln := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(ln, "#") {
			continue
		}
		if i := strings.Index(ln, " ["); i > 0 && strings.HasPrefix(ln, ":") {
			ln = ln[:i]
		}
		keep = append(keep, ln)
	}
	return strings.Join(keep, "\n")
}

// labHolders lists the pids of processes running as a lab's root: a lab's
// holder and anything started inside a lab.
func labHolders() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", e.Name()), &st) == nil && st.Uid >= netns.IDBase && st.Uid < netns.IDBase+65536 {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

var _ = Describe("the harness's own guarantees", Label("harness"), Serial, func() {
	It("leaves the host's rules, links, routes, mounts and /etc files byte-identical, whatever the ruleset does", func(ctx SpecContext) {
		before := hostState()
		p, err := scenarios.Load("../testdata/harness/hostile.yaml")
		Expect(err).NotTo(HaveOccurred())
		rep, err := scenarios.Run(ctx, p, scenarios.RunOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.Summary().Errors).To(BeZero())
		after := hostState()
		for k := range before {
			Expect(after[k]).To(Equal(before[k]), "host state %q changed", k)
		}
		Expect(os.ReadFile("/tmp/egresslab-hostile-was-here")).Error().To(MatchError(os.ErrNotExist))
	})

	It("leaves no namespace, mount or process behind when the process is killed with SIGKILL mid-run", func(ctx SpecContext) {
		before := hostState()
		bin := egresslabBinary()
		// The hostile policy's script leaves a background process, which
		// the lab ends when the script ends; verify then waits on the
		// return path of a probe, so it is mid-run when killed.
		cmd := exec.CommandContext(ctx, bin, "verify", "-f", "../testdata/harness/hostile.yaml", "--timeout", "1m")
		Expect(cmd.Start()).To(Succeed())
		// This run's lab holder appearing, and then the lab's sentinel (it
		// goes in once the load is over), are the signal that the run is
		// under way. Other labs on the machine are not ours to watch.
		others := map[int]bool{}
		for _, pid := range labHolders() {
			others[pid] = true
		}
		ours := func() []int {
			var pids []int
			for _, pid := range labHolders() {
				if !others[pid] {
					pids = append(pids, pid)
				}
			}
			return pids
		}
		holder := func() int {
			for _, pid := range ours() {
				if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.HasPrefix(string(cmdline), "egresslab-lab-holder-of-") {
					return pid
				}
			}
			return 0
		}
		Eventually(holder).WithContext(ctx).ShouldNot(BeZero(), "the run's lab holder")
		pid := holder()
		sentinelIn := func() error {
			return exec.CommandContext(ctx, "nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", pid), "nft", "list", "table", "inet", "egresslab_sentinel").Run()
		}
		Eventually(sentinelIn).WithContext(ctx).Should(Succeed(), "the lab's sentinel: the load is over")
		for _, p := range ours() {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
			Expect(string(cmdline)).NotTo(Equal("sleep\x003600\x00"), "the script's background sleep ended with the script")
		}
		Expect(cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
		_ = cmd.Wait() // killed: its status says only that
		Eventually(ours).WithContext(ctx).Should(BeEmpty(), "a lab process outlived its parent")
		after := hostState()
		for k := range before {
			Expect(after[k]).To(Equal(before[k]), "host state %q changed", k)
		}
	})
})
