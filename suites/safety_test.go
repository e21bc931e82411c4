package suites_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The egresslab binary, built once for the specs that run it as a user would.
var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

func egresslabBinary() string {
	GinkgoHelper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "egresslab-suite-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "egresslab")
		out, err := exec.Command("go", "build", "-o", binaryPath, "../cmd/egresslab").CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	Expect(binaryErr).NotTo(HaveOccurred())
	return binaryPath
}

// removeBinary is for AfterSuite.
func removeBinary() {
	if binaryPath != "" {
		_ = os.RemoveAll(filepath.Dir(binaryPath))
	}
}

// run is one finished egresslab process.
type run struct {
	status int
	stdout string
	stderr string
	took   time.Duration
	pid    int // the egresslab process's (it names the lab cgroups it made)
}

// egresslab runs the binary in dir to the end (at most a minute).
func egresslab(ctx context.Context, dir string, args ...string) run {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, egresslabBinary(), args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := run{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.status = ee.ExitCode()
	default:
		Fail(fmt.Sprintf("egresslab %v did not exit by itself: %v\n%s", args, err, r.stderr))
	}
	r.pid = cmd.Process.Pid
	return r
}

// processesInGroups lists the live or unreaped processes whose process
// group is one of pgids, and the lab holders of those runs: everything a run
// started, wherever it was reparented, inside a lab or not.
func processesInGroups(pgids map[int]bool) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces, so cut after ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 3 {
			continue
		}
		// A lab's holder runs in a session of its own; its name says whose it
		// is, and everything else of the lab dies with it.
		var holderOf int
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		fmt.Sscanf(string(cmdline), "egresslab-lab-holder-of-%d", &holderOf)
		if pgrp, _ := strconv.Atoi(fields[2]); pgids[pgrp] || pgids[holderOf] {
			found = append(found, e.Name()+" "+string(stat[:bytes.LastIndexByte(stat, ')')+1])+" "+fields[0])
		}
	}
	return found
}

// startVerify starts `egresslab verify` on a policy in a process group of
// its own, so that whatever it leaves can be found.
func startVerify(args ...string) *exec.Cmd {
	GinkgoHelper()
	cmd := exec.Command(egresslabBinary(), append([]string{"verify"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	Expect(cmd.Start()).To(Succeed())
	return cmd
}

// waitForLab waits until a run has started its lab (a second process in its
// group): the run is then past its start-up and has its signal handler.
func waitForLab(ctx context.Context, cmd *exec.Cmd) {
	GinkgoHelper()
	Eventually(processesInGroups).WithArguments(map[int]bool{cmd.Process.Pid: true}).WithContext(ctx).
		Should(WithTransform(func(p []string) int { return len(p) }, BeNumerically(">=", 2)), "the run's lab")
}

func expectSameHost(before map[string]string) {
	GinkgoHelper()
	after := hostState()
	for k := range before {
		Expect(after[k] == before[k]).To(BeTrue(), "host state %q changed:\n%s", k, lineChanges(before[k], after[k]))
	}
}

// lineChanges lists the lines only before or only after holds.
func lineChanges(before, after string) string {
	count := map[string]int{}
	for _, ln := range strings.Split(before, "\n") {
		count[ln]--
	}
	for _, ln := range strings.Split(after, "\n") {
		count[ln]++
	}
	var out []string
	for ln, n := range count {
		switch {
		case n < 0:
			out = append(out, "- "+ln)
		case n > 0:
			out = append(out, "+ "+ln)
		}
	}
	return strings.Join(out, "\n")
}

// mid-run: the hostile policy's relay answers vanish, so with a long backstop
// probing waits on them for a minute; with the default one the whole run
// takes about half a second, and kills land in every phase.
var (
	longRun  = []string{"-f", "../testdata/harness/hostile.yaml", "--timeout", "1m"}
	shortRun = []string{"-f", "../testdata/harness/hostile.yaml"}
)

var _ = Describe("signals and kills", Label("safety"), Serial, func() {
	It("SIGINT and SIGTERM at any moment end a run within a second: \"interrupted by SIG...\", exit 130 or 143, nothing left", func(ctx SpecContext) {
		rng := rand.New(rand.NewSource(GinkgoRandomSeed()))
		before := hostState()
		groups := map[int]bool{}
		for i := range 40 {
			sig, want, name := syscall.SIGINT, 130, "SIGINT"
			if i%2 == 1 {
				sig, want, name = syscall.SIGTERM, 143, "SIGTERM"
			}
			cmd := startVerify(longRun...)
			groups[cmd.Process.Pid] = true
			waitForLab(ctx, cmd)                                        // its handler is in place once it has started a lab
			time.Sleep(time.Duration(rng.Intn(400)) * time.Millisecond) // then a random moment, not a wait for anything
			sent := time.Now()
			Expect(cmd.Process.Signal(sig)).To(Succeed())
			err := cmd.Wait()
			took := time.Since(sent)
			var ee *exec.ExitError
			Expect(errors.As(err, &ee)).To(BeTrue(), "run %d: %v", i, err)
			Expect(ee.ExitCode()).To(Equal(want), "run %d (%s): stderr %q", i, sig, cmd.Stderr)
			Expect(took).To(BeNumerically("<", time.Second), "run %d (%s)", i, sig)
			Expect(withoutWarnings(fmt.Sprint(cmd.Stderr))).To(Equal("egresslab: interrupted by "+name+"\n"), "run %d (%s)", i, sig)
		}
		Eventually(processesInGroups).WithArguments(groups).WithContext(ctx).WithTimeout(10*time.Second).Should(BeEmpty(), "processes of interrupted runs")
		expectSameHost(before)
	})

	It("a second signal ends the run at once", func(ctx SpecContext) {
		cmd := startVerify(longRun...)
		waitForLab(ctx, cmd)
		Expect(cmd.Process.Signal(syscall.SIGINT)).To(Succeed())
		Expect(cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
		err := cmd.Wait()
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue())
		Expect(ee.ExitCode()).To(BeElementOf(130, 143))
		Eventually(processesInGroups).WithArguments(map[int]bool{cmd.Process.Pid: true}).WithContext(ctx).WithTimeout(10 * time.Second).Should(BeEmpty())
	})

	It("100 SIGKILLs at random moments (coming up, loading, probing, tearing down) leave nothing behind", func(ctx SpecContext) {
		rng := rand.New(rand.NewSource(GinkgoRandomSeed()))
		before := hostState()
		groups := map[int]bool{}
		for i := range 100 {
			args := longRun
			if i%2 == 1 {
				args = shortRun
			}
			cmd := startVerify(args...)
			groups[cmd.Process.Pid] = true
			time.Sleep(time.Duration(rng.Intn(600)) * time.Millisecond) // a random moment
			_ = cmd.Process.Signal(syscall.SIGKILL)                     // the short run may have ended already
			_ = cmd.Wait()
		}
		Eventually(processesInGroups).WithArguments(groups).WithContext(ctx).WithTimeout(10*time.Second).Should(BeEmpty(), "processes of killed runs")
		expectSameHost(before)
	})
})

var _ = Describe("exit statuses of a run that cannot happen", Label("safety"), func() {
	It("a missing tool, nft included, is exit 3 naming the Debian package", func(ctx SpecContext) {
		// nft hidden in a mount namespace of this command's own.
		script := "mount --bind /dev/null \"$(command -v nft)\" && exec \"$0\" verify -f ../testdata/harness/hostile.yaml"
		out, err := exec.CommandContext(ctx, "unshare", "--mount", "sh", "-c", script, egresslabBinary()).CombinedOutput()
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "%v: %s", err, out)
		Expect(ee.ExitCode()).To(Equal(3), "%s", out)
		first, advice, _ := strings.Cut(string(out), "\n")
		Expect(first).To(Equal("egresslab: the lab needs nft: install nftables (apt-get install nftables)"))
		// then the doctor's steps that fail, each with its fix
		Expect(advice).To(HavePrefix("this machine cannot run a lab (egresslab doctor tries each step):\n"))
		Expect(advice).To(ContainSubstring("  the tools a lab runs: FAILED: missing nft\n    fix: install nft: `apt-get install nftables`"))
	})

	It("root without the capabilities a lab needs (an unprivileged container) is exit 3 saying what is missing", func(ctx SpecContext) {
		out, err := exec.CommandContext(ctx, "setpriv", "--bounding-set", "-sys_admin,-net_admin", "--inh-caps", "-sys_admin,-net_admin",
			egresslabBinary(), "verify", "-f", "../testdata/harness/hostile.yaml").CombinedOutput()
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "%v: %s", err, out)
		Expect(ee.ExitCode()).To(Equal(3), "%s", out)
		Expect(string(out)).To(HavePrefix("egresslab: running as root without CAP_SYS_ADMIN, CAP_NET_ADMIN, as in an unprivileged container"))
		Expect(string(out)).To(ContainSubstring("run the container with --privileged (or --cap-add SYS_ADMIN --cap-add NET_ADMIN)"))
	})
})
