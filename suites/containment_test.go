package suites_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/egresslab/egresslab/netns"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// unmountScript runs as the lab's root: it undoes every mount it can, twice
// over (an unmount may reveal another), then writes where the host's
// temporary directories would be and looks for the host process that holds
// marker in its command line. It always fails, so that egresslab shows its
// last lines: what it tried and what it saw.
const unmountScript = `#!/bin/sh
mounts=$(awk '{print $5}' /proc/self/mountinfo | sort -r)
tried=0; undone=0
for pass in 1 2; do
  for m in / /tmp /var/tmp /dev/shm /run /proc /etc/passwd /etc/group /etc/resolv.conf /etc/hosts $mounts; do
    tried=$((tried+2))
    umount "$m" 2>/dev/null && undone=$((undone+1))
    umount -l "$m" 2>/dev/null && undone=$((undone+1))
  done
done
for d in /tmp /var/tmp /dev/shm; do echo x > "$d/egresslab-unmount-MARKER" 2>/dev/null; done
# The pattern goes through a file: in grep's own command line it would be seen.
printf '%s-%s' MARKER host > /pattern 2>/dev/null || printf '%s-%s' MARKER host > /tmp/pattern
pattern=/pattern; [ -s /pattern ] || pattern=/tmp/pattern
seen=no
cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' ' | grep -qF -f $pattern && seen=yes
mount -t proc proc /proc 2>/dev/null
cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' ' | grep -qF -f $pattern && seen=yes
echo "tried $tried unmounts, $undone worked; saw the host process: $seen"
exit 1
`

// labOwned lists the entries of dir owned by the lab's ids on the host.
func labOwned(dir string) []string {
	var found []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			if uid := info.Sys().(*syscall.Stat_t).Uid; uid >= netns.IDBase && uid < netns.IDBase+65536 {
				found = append(found, filepath.Join(dir, e.Name()))
			}
		}
	}
	return found
}

// processesWith lists the host's processes whose command line holds s.
func processesWith(s string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && bytes.Contains(cmdline, []byte(s)) {
			found = append(found, e.Name()+" "+string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return found
}

// ownPidsCgroup is the directory of this process's cgroup in the v1 pids
// hierarchy, where a lab's cgroups are made on a machine like CI's.
func ownPidsCgroup() string {
	GinkgoHelper()
	data, err := os.ReadFile("/proc/self/cgroup")
	Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(string(data), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && parts[1] == "pids" {
			return filepath.Join("/sys/fs/cgroup/pids", parts[2])
		}
	}
	Fail("no cgroup v1 pids hierarchy: this suite runs where CI does (cgroup v1 with pids and memory)")
	return ""
}

// verifyIn runs `egresslab verify -f policy.yaml` in dir and returns its run
// and its pid (which names the lab cgroups it made).
func verifyIn(ctx context.Context, dir string) (run, int) {
	GinkgoHelper()
	r := egresslab(ctx, dir, "verify", "-f", "policy.yaml")
	return r, r.pid
}

var _ = Describe("containment of a hostile script", Label("safety"), func() {
	It("cannot undo the lab's mounts: no umount reaches the host's /tmp or shows a host process", func(ctx SpecContext) {
		marker := fmt.Sprintf("m%d", time.Now().UnixNano())
		// A host process with the marker in its command line: what the
		// host's /proc would show the script.
		host := exec.Command("sleep", "3600")
		host.Args[0] = marker + "-host"
		Expect(host.Start()).To(Succeed())
		DeferCleanup(func() { _ = host.Process.Kill(); _ = host.Wait() })
		Expect(processesWith(marker + "-host")).To(HaveLen(1))

		dir := GinkgoT().TempDir()
		hostileInput{files: map[string]string{"policy.yaml": hostilePolicy("script: unmount.sh"),
			"unmount.sh": strings.ReplaceAll(unmountScript, "MARKER", marker)}}.build(dir)
		r, _ := verifyIn(ctx, dir)
		fmt.Fprintf(GinkgoWriter, "exit %d: %s", r.status, r.stderr)
		Expect(r.status).To(Equal(2), "the script fails on purpose: %s", r.stderr)
		Expect(r.stderr).To(MatchRegexp(`tried \d+ unmounts, \d+ worked; saw the host process: no`))
		for _, d := range []string{"/tmp", "/var/tmp", "/dev/shm"} {
			Expect(filepath.Join(d, "egresslab-unmount-"+marker)).NotTo(BeAnExistingFile())
			Expect(labOwned(d)).To(BeEmpty(), "the host's %s gained a file of the lab's", d)
		}
	})

	It("stops a fork bomb at the lab's process limit: exit 2 naming it, nothing left running", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		script := fmt.Sprintf("bomb-%d.sh", time.Now().UnixNano())
		hostileInput{files: map[string]string{"policy.yaml": hostilePolicy("script: " + script),
			script: "bomb() { bomb | bomb; }\nbomb\n"}}.build(dir)
		r, pid := verifyIn(ctx, dir)
		fmt.Fprintf(GinkgoWriter, "exit %d in %s: %s", r.status, r.took, r.stderr)
		Expect(r.status).To(Equal(2))
		Expect(r.stderr).To(ContainSubstring(script + ": script: the candidate script hit the lab's process limit (512 processes)"))
		Expect(r.took).To(BeNumerically("<", 10*time.Second), "well within the tool time bound")
		Expect(processesWith(script)).To(BeEmpty(), "a bomb's process outlived its lab")
		Expect(filepath.Glob(filepath.Join(ownPidsCgroup(), fmt.Sprintf("egresslab-lab.%d.*", pid)))).To(BeEmpty(), "the lab's cgroup outlived it")
	})

	It("stops a script filling /tmp at the tmpfs size: exit 2 naming it", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		hostileInput{files: map[string]string{"policy.yaml": hostilePolicy("script: fill.sh"),
			"fill.sh": "dd if=/dev/zero of=/tmp/fill bs=1M count=1024\n"}}.build(dir)
		r, _ := verifyIn(ctx, dir)
		Expect(r.status).To(Equal(2))
		Expect(r.stderr).To(ContainSubstring("fill.sh: script: the candidate script hit the lab's size limit of its /tmp (64 MiB)"))
	})

	It("removes the empty lab cgroups that a killed run left", func(ctx SpecContext) {
		// A cgroup named for this process but another start time: a run
		// that was SIGKILLed before its Close, whose pid is now ours.
		stale := filepath.Join(ownPidsCgroup(), fmt.Sprintf("egresslab-lab.%d.1.1", os.Getpid()))
		Expect(os.Mkdir(stale, 0o755)).To(Succeed())
		DeferCleanup(func() { _ = syscall.Rmdir(stale) })
		dir := GinkgoT().TempDir()
		hostileInput{files: map[string]string{"policy.yaml": hostilePolicy("script: ok.sh"), "ok.sh": "exit 0\n"}}.build(dir)
		r, _ := verifyIn(ctx, dir)
		Expect(r.status).To(Equal(0), "%s", r.stderr)
		Expect(stale).NotTo(BeADirectory())
	})
})
