package suites_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/egresslab/egresslab/internal/catalogue"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sys/unix"
)

// Rootless specs run egresslab as a user that exists only inside a private
// mount namespace: the host's /etc is never touched. asUser's script
// bind-mounts copies of /etc/passwd, /etc/group, /etc/subuid and /etc/subgid
// that carry the test user (and, when asked, its subordinate range) over the
// real ones, in a mount namespace of its own (unshare -m), and then runs the
// command as that user (setpriv). newuidmap and newgidmap, set-user-ID root,
// read /etc/subuid and /etc/subgid in the caller's mount namespace: these.
const (
	rootlessUID      = 61234
	rootlessName     = "egl-rootless"
	rootlessSubStart = 1000000 // no account, no other range, not IDBase's
)

const asUserScript = `#!/bin/sh
# asuser.sh SUBCOUNT CMD...: CMD as the test user, whose /etc/subuid and
# /etc/subgid ranges are SUBCOUNT ids (none when 0). Run under unshare -m.
set -e
count=$1; shift
# the copies live in a tmpfs of this mount namespace only: they go with it
etc=$(dirname "$0")/etc
mount -t tmpfs -o size=1m,mode=0755 egresslab-rootless "$etc"
cp /etc/passwd /etc/group "$etc"/
echo "%[1]s:x:%[2]d:%[2]d::/nonexistent:/usr/sbin/nologin" >>"$etc"/passwd
echo "%[1]s:x:%[2]d:" >>"$etc"/group
: >"$etc"/subuid
if [ "$count" -gt 0 ]; then echo "%[1]s:%[3]d:$count" >"$etc"/subuid; fi
cp "$etc"/subuid "$etc"/subgid
for f in passwd group subuid subgid; do
	chmod 0644 "$etc/$f"
	mount --bind "$etc/$f" "/etc/$f"
done
exec setpriv --reuid %[2]d --regid %[2]d --clear-groups -- "$@"
`

// setUpRootless makes a directory for what the test user runs and reads:
// the binary, the script, the policies. 0755 all the way: the suite's own
// temporary directories are root's alone.
func setUpRootless() (string, error) {
	dir, err := os.MkdirTemp("", "egresslab-rootless-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return dir, err
	}
	data, err := os.ReadFile(egresslabBinary())
	if err != nil {
		return dir, err
	}
	if err := os.WriteFile(filepath.Join(dir, "egresslab"), data, 0o755); err != nil {
		return dir, err
	}
	if err := os.Mkdir(filepath.Join(dir, "etc"), 0o755); err != nil {
		return dir, err
	}
	script := fmt.Sprintf(asUserScript, rootlessName, rootlessUID, rootlessSubStart)
	if err := os.WriteFile(filepath.Join(dir, "asuser.sh"), []byte(script), 0o755); err != nil {
		return dir, err
	}
	if err := os.Mkdir(filepath.Join(dir, "tails"), 0o755); err != nil {
		return dir, err
	}
	for _, f := range []string{
		"../testdata/examples/mail-ipt46.yaml", "../testdata/examples/mail.v4", "../testdata/examples/mail.v6",
		"../testdata/rootless/ranges-nft.yaml", "../testdata/rootless/ranges.nft", "../testdata/rootless/loopback-range.yaml",
		tailsDir + "/egresslab.yaml", tailsDir + "/tails-1.5.iptables-save",
	} {
		to := filepath.Join(dir, filepath.Base(f))
		if strings.HasPrefix(f, tailsDir) {
			to = filepath.Join(dir, "tails", filepath.Base(f))
		}
		data, err := os.ReadFile(f)
		if err == nil {
			err = os.WriteFile(to, data, 0o644)
		}
		if err != nil {
			return dir, err
		}
	}
	return dir, nil
}

// tailsDir holds Tails 1.5's published ruleset and its policy.
const tailsDir = "../scenarios/classes/testdata/tails"

// userCommand is argv run as the test user, whose subordinate ranges hold
// subIDs ids (none when 0), in the test user's private mount namespace.
func userCommand(dir string, subIDs int, argv ...string) *exec.Cmd {
	args := append([]string{"-m", "--propagation", "private", filepath.Join(dir, "asuser.sh"), strconv.Itoa(subIDs)}, argv...)
	cmd := exec.Command("unshare", args...)
	cmd.Dir = dir
	return cmd
}

// runAsUser runs userCommand and returns its stdout, stderr and exit status.
func runAsUser(ctx SpecContext, dir string, subIDs int, argv ...string) (stdout, stderr string, code int) {
	GinkgoHelper()
	cmd := userCommand(dir, subIDs, argv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	Expect(cmd.Start()).To(Succeed())
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stop()
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		Fail(fmt.Sprintf("%v: %v", argv, err))
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// cellOutcome is what a cell of a verify --format json report came to: the
// outcome, how it was known and who answered, and the rule that decided (as
// the trace names it).
type cellOutcome struct{ Observed, Evidence, AnsweredBy, Failure, Rule string }

// verdict is the outcome without who answered, which root and rootless runs
// alike sometimes misname today: the record of who answered is keyed by the
// client's address and port alone, which two concurrent probes to different
// destinations may share.
func (o cellOutcome) verdict() cellOutcome {
	o.AnsweredBy = ""
	return o
}

// outcomeOf reads a probe's or a class's outcome from the JSON report.
func outcomeOf(p map[string]any) cellOutcome {
	var o cellOutcome
	o.Observed, _ = p["observed"].(string)
	o.Failure, _ = p["failure"].(string)
	if ev, ok := p["evidence"].(map[string]any); ok {
		o.Evidence, _ = ev["kind"].(string)
		o.AnsweredBy, _ = ev["answered_by"].(string)
	}
	if r, ok := p["rule"]; ok {
		b, _ := json.Marshal(r) // its keys sorted: one string per rule
		o.Rule = string(b)
	}
	return o
}

// reportClasses reads verify --complete's JSON report: each class (every
// field that names it: source, addresses, ports, protocol, family,
// representative, expectation) -> its outcome.
func reportClasses(data string) (map[string]cellOutcome, error) {
	var rep struct {
		Classes []map[string]any `json:"classes"`
	}
	if err := json.Unmarshal([]byte(data), &rep); err != nil {
		return nil, fmt.Errorf("read the JSON report: %w\n%s", err, data)
	}
	classes := map[string]cellOutcome{}
	for _, c := range rep.Classes {
		o := outcomeOf(c)
		for _, f := range []string{"observed", "pass", "failure", "detail", "evidence", "rule"} {
			delete(c, f)
		}
		b, _ := json.Marshal(c) // its keys sorted
		if _, dup := classes[string(b)]; dup {
			return nil, fmt.Errorf("two classes alike: %s", b)
		}
		classes[string(b)] = o
	}
	return classes, nil
}

// sameAsRoot runs verify with args as root and rootless and expects the same
// exit status and, read by outcomes, the same outcome in every cell (or
// class); it returns the rootless run's cells.
func sameAsRoot(ctx SpecContext, dir string, outcomes func(string) (map[string]cellOutcome, error), args ...string) map[string]cellOutcome {
	GinkgoHelper()
	argv := append([]string{"verify", "--format", "json"}, args...)
	root, rootErr, rootCode := runBinary(ctx, append([]string{filepath.Join(dir, "egresslab")}, argv...)...)
	Expect(rootCode).To(BeNumerically("<=", 1), "%v as root: %s", args, rootErr)
	user, userErr, userCode := runAsUser(ctx, dir, 65536, append([]string{"./egresslab"}, argv...)...)
	Expect(userCode).To(Equal(rootCode), "%v rootless exits %d, as root %d: %s", args, userCode, rootCode, userErr)
	rootCells, err := outcomes(root)
	Expect(err).NotTo(HaveOccurred())
	userCells, err := outcomes(user)
	Expect(err).NotTo(HaveOccurred())
	Expect(rootCells).NotTo(BeEmpty(), "%v", args)
	for cell, want := range rootCells {
		got, ok := userCells[cell]
		Expect(ok).To(BeTrue(), "%v: %s has no rootless probe", args, cell)
		Expect(got.verdict()).To(Equal(want.verdict()), "%v: %s differs: rootless %+v, root %+v", args, cell, got, want)
	}
	Expect(userCells).To(HaveLen(len(rootCells)), "%v: rootless probes what root does not", args)
	return userCells
}

// reportCells reads verify's JSON report: each probe's identity (every field
// that names the cell) -> its outcome.
func reportCells(data string) (map[string]cellOutcome, error) {
	var rep struct {
		Probes []map[string]any `json:"probes"`
	}
	if err := json.Unmarshal([]byte(data), &rep); err != nil {
		return nil, fmt.Errorf("read the JSON report: %w\n%s", err, data)
	}
	cells := map[string]cellOutcome{}
	for _, p := range rep.Probes {
		var key []string
		for _, f := range []string{"user", "uid", "client", "network", "host", "address", "source", "family", "port", "proto", "expected"} {
			if v, ok := p[f]; ok {
				key = append(key, fmt.Sprintf("%s=%v", f, v))
			}
		}
		o := outcomeOf(p)
		k := strings.Join(key, " ")
		if _, dup := cells[k]; dup {
			return nil, fmt.Errorf("two probes of one cell: %s", k)
		}
		cells[k] = o
	}
	return cells, nil
}

var _ = Describe("rootless labs", Ordered, ContinueOnFailure, Label("rootless"), func() {
	var dir string
	BeforeAll(func() {
		var err error
		dir, err = setUpRootless()
		if dir != "" {
			DeferCleanup(os.RemoveAll, dir)
		}
		Expect(err).NotTo(HaveOccurred())
	})

	It("give every catalogue entry's every variant, forwarded ones included, the same outcome, evidence and deciding rule in every cell as root does", func(ctx SpecContext) {
		entries, err := catalogue.All()
		Expect(err).NotTo(HaveOccurred())
		catDir, err := os.MkdirTemp(dir, "catalogue-")
		Expect(err).NotTo(HaveOccurred())
		Expect(os.Chmod(catDir, 0o755)).To(Succeed())
		var policies []string
		variants := 0
		for _, s := range entries {
			variants += len(s.Variants)
			out, errOut, code := runBinary(ctx, filepath.Join(dir, "egresslab"), "scenarios", "--export", s.Name, filepath.Join(catDir, s.Name))
			Expect(code).To(Equal(0), "%s%s", out, errOut)
			found, err := filepath.Glob(filepath.Join(catDir, s.Name, "*.yaml"))
			Expect(err).NotTo(HaveOccurred())
			for _, p := range found {
				if filepath.Base(p) != "scenario.yaml" {
					policies = append(policies, p)
				}
			}
		}
		Expect(policies).To(HaveLen(variants), "one policy per variant")
		Expect(exec.Command("chmod", "-R", "a+rX", catDir).Run()).To(Succeed())

		type run struct {
			policy      string
			root, user  string
			rootErr     string
			userErr     string
			rootCode    int
			userCode    int
			rootElapsed time.Duration
			userElapsed time.Duration
		}
		runs := make([]run, len(policies))
		sem := make(chan struct{}, 3)
		var wg sync.WaitGroup
		for i, p := range policies {
			wg.Go(func() {
				defer GinkgoRecover()
				sem <- struct{}{}
				defer func() { <-sem }()
				r := run{policy: p}
				start := time.Now()
				r.root, r.rootErr, r.rootCode = runBinary(ctx, filepath.Join(dir, "egresslab"), "verify", "-f", p, "--format", "json")
				r.rootElapsed = time.Since(start)
				start = time.Now()
				r.user, r.userErr, r.userCode = runAsUser(ctx, dir, 65536, "./egresslab", "verify", "-f", p, "--format", "json")
				r.userElapsed = time.Since(start)
				runs[i] = r
			})
		}
		wg.Wait()
		compared := 0
		var rootTime, userTime time.Duration
		for _, r := range runs {
			name := strings.TrimPrefix(r.policy, catDir+"/")
			Expect(r.rootCode).To(BeNumerically("<=", 1), "%s as root: %s", name, r.rootErr)
			Expect(r.userCode).To(Equal(r.rootCode), "%s rootless exits %d, as root %d: %s", name, r.userCode, r.rootCode, r.userErr)
			rootCells, err := reportCells(r.root)
			Expect(err).NotTo(HaveOccurred(), name)
			userCells, err := reportCells(r.user)
			Expect(err).NotTo(HaveOccurred(), name)
			Expect(rootCells).NotTo(BeEmpty(), name)
			for cell, want := range rootCells {
				got, ok := userCells[cell]
				Expect(ok).To(BeTrue(), "%s: cell %s has no rootless probe", name, cell)
				Expect(got.verdict()).To(Equal(want.verdict()), "%s: cell %s differs: rootless %+v, root %+v", name, cell, got, want)
				compared++
			}
			Expect(userCells).To(HaveLen(len(rootCells)), "%s: rootless probes cells root does not", name)
			rootTime += r.rootElapsed
			userTime += r.userElapsed
		}
		AddReportEntry("rootless vs root", fmt.Sprintf("%d entries, %d variants, %d cells compared, 0 differences; verify took %s as root and %s rootless in all",
			len(entries), len(policies), compared, rootTime.Round(time.Millisecond), userTime.Round(time.Millisecond)))
		GinkgoWriter.Printf("%d entries, %d variants, %d cells compared; root %s, rootless %s\n", len(entries), len(policies), compared, rootTime, userTime)
	}, NodeTimeout(5*time.Minute))

	It("refuses, before any lab starts, a policy whose ids the user's subordinate range does not reach: exit 3, which ids, what to add", func(ctx SpecContext) {
		// 50 subordinate ids: lab ids 0-50; www-data (33) fits, postfix (107) does not
		out, errOut, code := runAsUser(ctx, dir, 50, "./egresslab", "verify", "-f", "mail-ipt46.yaml")
		Expect(code).To(Equal(3), "%s%s", out, errOut)
		Expect(out).To(BeEmpty(), "nothing ran")
		Expect(errOut).To(Equal("egresslab: running rootless, the lab maps uids 0-50 and gids 0-50 (user " + rootlessName + "'s own id and its ranges in /etc/subuid and /etc/subgid), and the policy uses uid 107 (user postfix) and gid 114 (user postfix's group): " +
			"give " + rootlessName + " a range of 65536 subordinate uids and gids (what every policy and the catalogue fit in): `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 " + rootlessName + "` (pick a range no other line of /etc/subuid and /etc/subgid uses), or run egresslab as root\n"))
	})

	It("serves a host's port ranges beyond the uplink (TPROXY in the world, not BPF): the same outcome, evidence and deciding rule in every cell as root", func(ctx SpecContext) {
		cells := sameAsRoot(ctx, dir, reportCells, "-f", filepath.Join(dir, "ranges-nft.yaml"))
		// 661 TCP ports and 11 UDP ports, 2 users, 2 families
		Expect(cells).To(HaveLen(2688))
		// Nothing but a range's socket answers those ports: unsteered, a SYN
		// would be reset (refused) and a datagram answered port unreachable.
		connected := map[string]int{}
		for cell, o := range cells {
			if o.Observed == "connected" {
				connected[cell[strings.LastIndex(cell, "proto="):]]++
			}
		}
		// www-data: TCP 440-700 (443 by its own HTTPS server), UDP 5000-5004
		Expect(connected).To(Equal(map[string]int{"proto=tcp expected=allow": 2 * 261, "proto=udp expected=allow": 2 * 5}))
	}, NodeTimeout(2*time.Minute))

	It("runs verify --complete (TPROXY in the world, not BPF) with the same classes, each with the same outcome, evidence and deciding rule, as root: catalogue variants, a forwarded one among them, and Tails", func(ctx SpecContext) {
		catDir, err := os.MkdirTemp(dir, "complete-")
		Expect(err).NotTo(HaveOccurred())
		policies := []string{filepath.Join(dir, "tails", "egresslab.yaml")}
		for _, v := range []string{"telnet-surprise/both-families", "quic-udp-443/tcp-and-udp", "sidecar-redirect-v4-only/ipv4-redirect", "php-container-mail/docker-user-ipv4"} {
			entry, _, _ := strings.Cut(v, "/")
			out, errOut, code := runBinary(ctx, filepath.Join(dir, "egresslab"), "scenarios", "--export", entry, filepath.Join(catDir, entry))
			Expect(code).To(Equal(0), "%s%s", out, errOut)
			policies = append(policies, filepath.Join(catDir, v+".yaml"))
		}
		Expect(exec.Command("chmod", "-R", "a+rX", catDir).Run()).To(Succeed())
		caughtAll := 0
		for _, p := range policies {
			for _, o := range sameAsRoot(ctx, dir, reportClasses, "--complete", "-f", p) {
				// the world's catch-all answers as the address dialled
				host, _, _ := strings.Cut(o.AnsweredBy, " ")
				if a, err := netip.ParseAddr(host); err == nil && !a.IsLoopback() && o.Observed == "connected" {
					caughtAll++
				}
			}
		}
		Expect(caughtAll).To(BeNumerically(">=", 10), "classes the world's any-address sockets answered")
	}, NodeTimeout(3*time.Minute))

	It("still stops a port range on the lab's loopback, which needs BPF on the host: exit 3, saying root runs it, never a raw operation not permitted", func(ctx SpecContext) {
		out, errOut, code := runAsUser(ctx, dir, 65536, "./egresslab", "verify", "-f", "loopback-range.yaml")
		Expect(code).To(Equal(3), "%s%s", out, errOut)
		Expect(errOut).To(Equal("egresslab: serve port ranges in lab loopback-range: the lab needs BPF programs for port ranges on the lab's loopback (CAP_BPF and CAP_NET_ADMIN on the host): rootless, egresslab cannot load them: run egresslab as root for this\n"))
	})

	It("explains, to a user without a subordinate range, what to add: doctor and verify alike, exit 3, no raw operation not permitted", func(ctx SpecContext) {
		out, errOut, code := runAsUser(ctx, dir, 0, "./egresslab", "doctor")
		Expect(code).To(Equal(3), "%s%s", out, errOut)
		Expect(out).To(ContainSubstring("as user " + rootlessName + " (not root)\n"))
		Expect(out).To(ContainSubstring("\nok      privileges to run a lab\n"), "newuidmap and newgidmap are set-user-ID root here")
		Expect(out).To(ContainSubstring("\nFAILED  a user namespace with the lab's ids (uids and gids 0-65535): user " + rootlessName + " has 0 subordinate uids in /etc/subuid; a lab needs 65535\n"))
		Expect(out).To(ContainSubstring("fix: give " + rootlessName + " a range of 65536 subordinate uids and gids: `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 " + rootlessName + "`"))
		Expect(strings.Count(out, "FAILED")).To(Equal(1), out)
		Expect(errOut).To(Equal("egresslab: 1 of 9 steps failed: labs cannot run here until they pass\n"))

		out, errOut, code = runAsUser(ctx, dir, 0, "./egresslab", "verify", "-f", "mail-ipt46.yaml")
		Expect(code).To(Equal(3), "%s%s", out, errOut)
		Expect(errOut).To(HavePrefix("egresslab: as a user, egresslab runs its labs rootless, and could not: start rootless: find user " + rootlessName + "'s range in /etc/subuid: user " + rootlessName + " has no range there\n"))
		Expect(errOut).To(ContainSubstring("    fix: give " + rootlessName + " a range of 65536 subordinate uids and gids"))
		Expect(errOut).NotTo(ContainSubstring("operation not permitted"))
	})

	It("passes doctor as a user with a subordinate range, and says what runs differently", func(ctx SpecContext) {
		out, errOut, code := runAsUser(ctx, dir, 65536, "./egresslab", "doctor")
		Expect(code).To(Equal(0), "%s%s", out, errOut)
		for _, step := range doctorSteps {
			Expect(out).To(ContainSubstring("\nok      "+step+"\n"), out)
		}
		Expect(out).To(ContainSubstring("\nnote    rootless, one netlink batch of more than about 400 rules does not load"))
		Expect(out).To(HaveSuffix("labs can run here\n"))
	})

	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		It(fmt.Sprintf("leaves no process of the lab behind when the rootless egresslab gets %s", unix.SignalName(sig)), func(ctx SpecContext) {
			cmd := userCommand(dir, 65536, "./egresslab", "exec", "-f", "mail-ipt46.yaml", "--user", "www-data", "--", "sh", "-c", "echo up; exec cat")
			stdout, err := cmd.StdoutPipe()
			Expect(err).NotTo(HaveOccurred())
			stdin, err := cmd.StdinPipe() // cat holds the lab until it is killed
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { _ = stdin.Close() })
			var errb bytes.Buffer
			cmd.Stderr = &errb
			// A process left behind would hold stderr open: Wait does not
			// wait for it past this, and the spec fails for it below.
			cmd.WaitDelay = time.Second
			Expect(cmd.Start()).To(Succeed())
			DeferCleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			line, err := bufio.NewReader(stdout).ReadString('\n')
			Expect(err).NotTo(HaveOccurred(), errb.String())
			Expect(line).To(Equal("up\n"))

			// unshare executed the script, which executed setpriv, which
			// executed egresslab: cmd's pid is the rootless egresslab's.
			tree := descendants(cmd.Process.Pid)
			Expect(len(tree)).To(BeNumerically(">=", 3), "the rootless egresslab, the lab's holder, the command in the lab: %v", tree)
			holders := 0
			pidfds := map[int]int{}
			for _, pid := range tree {
				if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); bytes.HasPrefix(comm, []byte("egresslab-lab-holder-of-")) {
					holders++
				}
				fd, err := unix.PidfdOpen(pid, 0)
				if errors.Is(err, unix.ESRCH) {
					continue // a short-lived process of the lab's start, gone already
				}
				Expect(err).NotTo(HaveOccurred(), "pidfd of %d", pid)
				pidfds[pid] = fd
				DeferCleanup(func() {
					// whatever outlived the signal, the spec having failed
					// for it, goes now: the machine is shared
					_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
					unix.Close(fd)
				})
			}
			// (more than one: the holder forking what the lab runs)
			Expect(holders).To(BeNumerically(">=", 1), "a lab holder among %v", tree)

			Expect(cmd.Process.Signal(sig)).To(Succeed())
			// A pidfd becomes readable when its process exits: every
			// process of the tree must, the rootless egresslab passing a
			// SIGTERM on, the kernel's death signals doing the rest.
			deadline := time.Now().Add(20 * time.Second)
			for pid, fd := range pidfds {
				Expect(exited(fd, deadline)).To(BeTrue(), "process %d outlived the rootless egresslab's %s", pid, unix.SignalName(sig))
			}
			err = cmd.Wait()
			if sig == syscall.SIGTERM {
				// passed on, and ended as a run interrupted under root does
				Expect(cmd.ProcessState.ExitCode()).To(Equal(143), "%v: %s", err, errb.String())
				Expect(errb.String()).To(Equal("egresslab: interrupted by SIGTERM\n"))
			}
		})
	}

})

// descendants are pid and every process below it, from /proc.
func descendants(pid int) []int {
	GinkgoHelper()
	entries, err := os.ReadDir("/proc")
	Expect(err).NotTo(HaveOccurred())
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses
		rest := stat[bytes.LastIndexByte(stat, ')')+2:]
		f := strings.Fields(string(rest))
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// exited waits until the process of pidfd exits (its pidfd becomes
// readable), at most until deadline.
func exited(pidfd int, deadline time.Time) bool {
	GinkgoHelper()
	for {
		left := time.Until(deadline)
		if left < 0 {
			left = 0
		}
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(left.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue // the runtime's own signals interrupt a poll
		}
		Expect(err).NotTo(HaveOccurred())
		return n == 1 && fds[0].Revents&unix.POLLIN != 0
	}
}
