package suites_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sys/unix"
)

// A policy whose ruleset is the script attack.sh.
const scriptPolicy = "version: 1\nusers:\n  www-data: {uid: 33}\nhosts:\n  mx.example.test:\n    addresses: [192.0.2.25]\n    ports: [25/tcp]\n" +
	"ruleset:\n  script: attack.sh\nexpect:\n  - allow: {}\n"

// attackDir is a policy directory whose script is script.
func attackDir(script string) string {
	GinkgoHelper()
	dir := GinkgoT().TempDir()
	Expect(os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(scriptPolicy), 0o644)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(dir, "attack.sh"), []byte("#!/bin/sh\n"+script), 0o755)).To(Succeed())
	return dir
}

// tiocsti is a perl line that pushes text into /dev/tty's input, as a
// hostile script would into the terminal it was started from.
func tiocsti(text string) string {
	return fmt.Sprintf(`perl -e 'open(my $t, "+<", "/dev/tty") or die "open /dev/tty: $!\n"; ioctl($t, %d, $_) or die "TIOCSTI: $!\n" for split //, "%s"; print "injected\n"'`,
		unix.TIOCSTI, text)
}

// underTerminal runs egresslab with a pty of the spec's as its controlling
// terminal and standard streams, as an operator's shell would, and returns
// its exit status, everything written to the terminal, and how many bytes
// wait unread in the terminal's input (what the operator's shell would
// read next, as typed).
func underTerminal(ctx context.Context, dir string, args ...string) (status int, screen string, pending int) {
	GinkgoHelper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	Expect(err).NotTo(HaveOccurred())
	defer master.Close()
	Expect(unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0)).To(Succeed())
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	Expect(err).NotTo(HaveOccurred())
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	Expect(err).NotTo(HaveOccurred())
	defer slave.Close()
	// Canonical mode without echo: injected text would wait in the input
	// queue, where FIONREAD counts it.
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	Expect(err).NotTo(HaveOccurred())
	tio.Lflag &^= unix.ECHO
	Expect(unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio)).To(Succeed())

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, egresslabBinary(), args...)
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&out, master); close(copied) }()
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil {
		Expect(errors.As(err, &ee)).To(BeTrue(), "egresslab %v: %v", args, err)
		status = ee.ExitCode()
	}
	pending, err = unix.IoctlGetInt(int(slave.Fd()), unix.TIOCINQ)
	Expect(err).NotTo(HaveOccurred())
	slave.Close() // the master reads EIO: everything written has been read
	<-copied
	return status, out.String(), pending
}

var _ = Describe("containment of a hostile candidate", Label("safety"), func() {
	It("a script cannot push keystrokes into the operator's terminal (TIOCSTI on /dev/tty)", func(ctx SpecContext) {
		dir := attackDir(tiocsti("touch /tmp/PWNED-tiocsti\\n") + " 2>&1 | tee /dev/stderr | grep -q 'No such device or address'\n")
		status, screen, pending := underTerminal(ctx, dir, "verify", "-f", "policy.yaml")
		Expect(status).To(Equal(0), "the script found /dev/tty unopenable (ENXIO): %s", screen)
		Expect(pending).To(BeZero(), "bytes injected into the operator's terminal")
		Expect(screen).NotTo(ContainSubstring("PWNED"))
		Expect("/tmp/PWNED-tiocsti").NotTo(BeAnExistingFile())
	})

	It("exec under a terminal gives the command a terminal of the lab's own", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		Expect(os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(strings.Replace(scriptPolicy, "  script: attack.sh\n", "  {}\n", 1)), 0o644)).To(Succeed())
		status, screen, pending := underTerminal(ctx, dir, "exec", "-f", "policy.yaml", "--user", "root", "--",
			"sh", "-c", tiocsti("LAB-ONLY")+"; tty; ps -o sid=,pid= -p $$")
		Expect(status).To(Equal(0), screen)
		Expect(screen).To(ContainSubstring("injected"), "TIOCSTI works on the lab's own terminal")
		Expect(screen).To(MatchRegexp(`/dev/pts/\d+`))
		Expect(pending).To(BeZero(), "bytes injected into the operator's terminal")
	})

	It("a descriptor egresslab inherits (verify 9>>FILE) never reaches the script", func(ctx SpecContext) {
		dir := attackDir("echo PWNED >&9 2>/dev/null; echo PWNED >> /proc/self/fd/9 2>/dev/null; ls /proc/self/fd /proc/1/fd >&2; exit 0\n")
		target := filepath.Join(GinkgoT().TempDir(), "root-only")
		f, err := os.OpenFile(target, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		Expect(err).NotTo(HaveOccurred())
		defer f.Close()
		cmd := exec.CommandContext(ctx, egresslabBinary(), "verify", "-f", "policy.yaml")
		cmd.Dir = dir
		cmd.ExtraFiles = []*os.File{nil, nil, nil, nil, nil, nil, f} // fd 9
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(os.ReadFile(target)).To(BeEmpty())
	})

	// A process in the lab's PID namespace (an exec session) can name the
	// holder, PID 1 there; a candidate's script cannot even do that (below).
	It("a process of the lab's root cannot take the holder's descriptors (pidfd_getfd), read them (/proc/1/fd) or ptrace it", func(ctx SpecContext) {
		dir := attackDir("exit 0\n")
		r := egresslab(ctx, dir, "exec", "-f", "policy.yaml", "--user", "root", "--", "perl", "-e", fmt.Sprintf(`
$pidfd = syscall(%d, 1, 0); die "pidfd_open: $!\n" if $pidfd < 0;
open(my $c, "<", "/proc/1/cmdline"); print "pid 1: ", <$c>, "\n";
for $fd (0, 1, 2, 3) { $r = syscall(%d, $pidfd, $fd, 0); print "getfd $fd: ", ($r < 0 ? "$!" : "GOT $r"), "\n" }
$r = syscall(%d, 16, 1, 0, 0); print "ptrace: ", ($r < 0 ? "$!" : "ATTACHED"), "\n";
print "fd link: ", (defined(readlink("/proc/1/fd/2")) ? "READ" : "$!"), "\n";
`, unix.SYS_PIDFD_OPEN, unix.SYS_PIDFD_GETFD, unix.SYS_PTRACE))
		Expect(r.status).To(Equal(0), r.stderr)
		Expect(r.stdout).To(ContainSubstring("pid 1: egresslab-lab-holder-of-"), "the attack is on the holder")
		for _, fd := range []string{"0", "1", "2", "3"} {
			Expect(r.stdout).To(ContainSubstring("getfd "+fd+": Operation not permitted"), r.stdout)
		}
		Expect(r.stdout).To(ContainSubstring("ptrace: Operation not permitted"))
		Expect(r.stdout).To(ContainSubstring("fd link: Permission denied"))
	})

	It("a script cannot name the holder: it is PID 1 of a namespace of its own, and the lab's /proc/1/fd is closed to it", func(ctx SpecContext) {
		dir := attackDir(`echo "script pid: $$" >&2
perl -e 'print "fd link: ", (defined(readlink("/proc/1/fd/2")) ? "READ" : "$!"), "\n"' >&2
exit 1
`)
		r := egresslab(ctx, dir, "verify", "-f", "policy.yaml")
		Expect(r.status).To(Equal(2), r.stderr)
		Expect(r.stderr).To(ContainSubstring("script pid: 1"))
		Expect(r.stderr).To(ContainSubstring("fd link: Permission denied"))
	})

	It("killing the holder while the script runs is exit 3 (the lab could not run), not bad input", func(ctx SpecContext) {
		dir := attackDir("sleep 60\n")
		cmd := exec.CommandContext(ctx, egresslabBinary(), "verify", "-f", "policy.yaml")
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		Expect(cmd.Start()).To(Succeed())
		holder := 0
		Eventually(func() bool {
			holder = holderOf(cmd.Process.Pid)
			return holder != 0 && len(childrenOf(holder)) > 0 // the script is running
		}).WithContext(ctx).Should(BeTrue(), "the lab's script running")
		start := time.Now()
		Expect(unix.Kill(holder, unix.SIGKILL)).To(Succeed())
		err := cmd.Wait()
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "%v: %s", err, stderr.String())
		Expect(ee.ExitCode()).To(Equal(3), stderr.String())
		Expect(stderr.String()).To(ContainSubstring("holder process has exited"))
		Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
	})

	It("the buffer helper grants only netfilter netlink sockets, up to its caps", func(ctx SpecContext) {
		// SOL_SOCKET 1; SO_SNDBUF 7, SO_RCVBUF 8, SO_SNDBUFFORCE 32, SO_RCVBUFFORCE 33.
		dir := attackDir(`perl -e '
use Socket;
socket(my $u, PF_INET, SOCK_DGRAM, 0) or die;
print "udp: ", (setsockopt($u, 1, 32, pack("i", 1<<20)) ? "GRANTED" : "$!"), "\n";
socket(my $r, 16, 3, 0) or die "route: $!"; # NETLINK_ROUTE
print "route: ", (setsockopt($r, 1, 33, pack("i", 1<<20)) ? "GRANTED" : "$!"), "\n";
for $i (1..3) {
  socket($s[$i], 16, 3, 12) or die "netfilter: $!";
  $snd = setsockopt($s[$i], 1, 32, pack("i", 1<<30)) ? "granted" : "$!";
  $rcv = setsockopt($s[$i], 1, 33, pack("i", 1<<30)) ? "granted" : "$!";
  print "netfilter $i: snd $snd ", unpack("i", getsockopt($s[$i], 1, 7)), " rcv $rcv ", unpack("i", getsockopt($s[$i], 1, 8)), "\n";
}
' >&2
exit 1
`)
		r := egresslab(ctx, dir, "verify", "-f", "policy.yaml")
		Expect(r.status).To(Equal(2), r.stderr)
		Expect(r.stderr).To(ContainSubstring("udp: Operation not permitted"))
		Expect(r.stderr).To(ContainSubstring("route: Operation not permitted"))
		capped := strconv.Itoa(2 * 64 << 20) // the kernel doubles what is set
		Expect(r.stderr).To(ContainSubstring("netfilter 1: snd granted " + capped + " rcv granted " + capped))
		Expect(r.stderr).To(ContainSubstring("netfilter 2: snd granted " + capped + " rcv granted " + capped))
		Expect(r.stderr).To(MatchRegexp(`netfilter 3: snd Operation not permitted \d+ rcv Operation not permitted \d+`), "the lab's total reached")
	})
})

// holderOf is the pid of the lab holder started by egresslab process pid, or 0.
func holderOf(pid int) int {
	for _, c := range childrenOf(pid) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c))
		if bytes.HasPrefix(cmdline, []byte(fmt.Sprintf("egresslab-lab-holder-of-%d\x00", pid))) {
			return c
		}
	}
	return 0
}

// childrenOf lists the children of pid, of all its threads.
func childrenOf(pid int) []int {
	var kids []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		for _, f := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}
