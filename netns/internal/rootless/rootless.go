package rootless

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Rootless labs. A user cannot map the lab's ids onto IDBase's range, nor
// enter a lab's namespaces from the host, nor open sockets there as other
// ids: all of that needs capabilities over the lab's user namespace. So
// egresslab re-executes itself, once, as root of a user namespace of its own
// whose ids are the caller's id (0) and the caller's ranges of /etc/subuid
// and /etc/subgid (1..count), written by the setuid helpers newuidmap and
// newgidmap (shadow's, Debian package uidmap), as rootless podman and
// rootlesskit do. Every lab is then a child of that namespace, mapping lab
// id N onto its id N: the rest of egresslab runs as under root.
//
// Three stages, one binary:
//  1. the caller's process (Start) starts the second in a new user
//     namespace, writes its maps, tells it to go on, forwards signals to it
//     and passes its exit status through;
//  2. the second waits (Init) until its maps exist and executes the
//     binary again: an execve before the map existed left it without
//     capabilities, one after it gives it all of them, as uid 0;
//  3. the third (Init again) knows from its environment how many ids
//     are mapped, and runs the command.
const (
	env       = "EGRESSLAB_ROOTLESS" // "wait PPID" in stage 2, "PPID UIDS GIDS USER" in stage 3
	goAheadFD = 3                    // stage 2's end of the go-ahead pipe
)

// Init runs the second stage when this process is one (it never returns),
// and in the third returns whose ranges are mapped and how many ids of each
// kind; ok is false in a process not started rootless.
func Init() (user string, uids, gids uint32, ok bool) {
	v, set := os.LookupEnv(env)
	if !set {
		return "", 0, 0, false
	}
	f := strings.Fields(v)
	if len(f) == 2 && f[0] == "wait" {
		wait(f[1])
	}
	var ppid int
	if len(f) != 4 || scan(f[0], &ppid) != nil || scan(f[1], &uids) != nil || scan(f[2], &gids) != nil || uids == 0 || gids == 0 {
		fmt.Fprintf(os.Stderr, "egresslab: bad %s=%q in the environment\n", env, v)
		os.Exit(3)
	}
	// Gaining capabilities at execve cleared the parent-death signal: arm
	// it again, then make sure the caller did not die before it was armed.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	if os.Getppid() != ppid {
		os.Exit(3)
	}
	return f[3], uids, gids, true
}

func scan[T ~int | ~uint32](s string, v *T) error {
	_, err := fmt.Sscan(s, v)
	return err
}

// wait is stage 2: it waits for the go-ahead (one byte; EOF means
// the caller gave up) and executes the binary again, marked for stage 3.
func wait(ppid string) {
	pipe := os.NewFile(goAheadFD, "egresslab-rootless")
	var b [64]byte
	n, _ := pipe.Read(b[:])
	pipe.Close()
	if n == 0 {
		os.Exit(3)
	}
	os.Setenv(env, ppid+" "+string(b[:n]))
	err := unix.Exec("/proc/self/exe", os.Args, os.Environ())
	fmt.Fprintf(os.Stderr, "egresslab: execute egresslab again in its user namespace: %v\n", err)
	os.Exit(3)
}

// Error says why egresslab could not start rootless; the caller's
// process is still as it was.
type Error struct {
	Step string // what failed: "find user alice's range in /etc/subuid", "newuidmap"...
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("start rootless: %s: %v", e.Step, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Subordinate is a range of ids from /etc/subuid or /etc/subgid.
type Subordinate struct{ Start, Count uint32 }

// SubordinateRange returns u's largest range in file (/etc/subuid or
// /etc/subgid), matching lines by name and by uid as shadow does; a Count of
// 0 when it has none.
func SubordinateRange(file string, u *user.User) (Subordinate, error) {
	f, err := os.Open(file)
	if err != nil {
		return Subordinate{}, err
	}
	defer f.Close()
	var best Subordinate
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(parts) != 3 || parts[0] != u.Username && parts[0] != u.Uid {
			continue
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 == nil && err2 == nil && uint32(count) > best.Count {
			best = Subordinate{uint32(start), uint32(count)}
		}
	}
	return best, sc.Err()
}

// tool finds newuidmap or newgidmap, in sbin too.
func tool(name string) (string, error) {
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin", "/usr/local/sbin"} {
		if st, err := os.Stat(dir + "/" + name); err == nil && st.Mode().IsRegular() {
			return dir + "/" + name, nil
		}
	}
	return exec.LookPath(name)
}

// Start runs this program again, with the same arguments, as root of
// a user namespace of its own that maps the caller's id and subordinate
// ranges, and returns its exit status once it has exited. Stdio is the
// caller's; the interrupt signals this process receives are passed on; the
// new process dies with this one. A *Error means nothing ran.
func Start(maxIDs uint32) (int, error) {
	u, err := user.Current()
	if err != nil {
		return 0, &Error{"find who is running", err}
	}
	var ranges [2]Subordinate
	for i, file := range []string{"/etc/subuid", "/etc/subgid"} {
		r, err := SubordinateRange(file, u)
		if err == nil && r.Count == 0 {
			err = fmt.Errorf("user %s has no range there", u.Username)
		}
		if err != nil {
			return 0, &Error{"find user " + u.Username + "'s range in " + file, err}
		}
		ranges[i] = Subordinate{r.Start, min(r.Count, maxIDs)}
	}
	var tools [2]string
	for i, name := range []string{"newuidmap", "newgidmap"} {
		if tools[i], err = tool(name); err != nil {
			return 0, &Error{"find " + name + " (Debian package uidmap)", err}
		}
	}
	goRead, goWrite, err := os.Pipe()
	if err != nil {
		return 0, &Error{"make a pipe", err}
	}
	defer goWrite.Close()
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=wait %d", env, os.Getpid()))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{goRead} // goAheadFD
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A network namespace of its own too: a thread that entered a lab's
		// must come back to one its user namespace owns, which the host's
		// is not (setns needs CAP_SYS_ADMIN over the target's owner).
		Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL,
		// A process group of its own: a signal to ours (a CI runner's kill
		// of the job) reaches it once, forwarded, not twice.
		Setpgid: true,
	}
	// On a terminal whose foreground we are, it takes the foreground, so
	// that ^C and the terminal's size changes reach it directly.
	if fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil && fg == unix.Getpgrp() {
		cmd.SysProcAttr.Foreground = true
		cmd.SysProcAttr.Ctty = 0
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	// The death signal fires when the forking thread exits: it stays locked.
	started := make(chan error, 1)
	waited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		goRead.Close()
		return 0, &Error{"start egresslab in a new user namespace", err}
	}
	goRead.Close()
	if cmd.SysProcAttr.Foreground {
		defer takeForeground()
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	for i, m := range []struct{ own, file string }{{u.Uid, "/etc/subuid"}, {u.Gid, "/etc/subgid"}} {
		out, err := exec.Command(tools[i], pid, "0", m.own, "1", "1", strconv.FormatUint(uint64(ranges[i].Start), 10), strconv.FormatUint(uint64(ranges[i].Count), 10)).CombinedOutput()
		if err != nil {
			_ = cmd.Process.Kill()
			<-waited
			return 0, &Error{fmt.Sprintf("map %s's ids from %s (%s)", u.Username, m.file, tools[i]), fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))}
		}
	}
	fmt.Fprintf(goWrite, "%d %d %s", ranges[0].Count+1, ranges[1].Count+1, u.Username)
	goWrite.Close()
	for {
		select {
		case sig := <-sigs:
			_ = cmd.Process.Signal(sig)
		case err := <-waited:
			return exitStatus(cmd, err), nil
		}
	}
}

// exitStatus is the child's exit status, or 128+signal when a signal ended it.
func exitStatus(cmd *exec.Cmd, err error) int {
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ok && ws.Signaled():
		return 128 + int(ws.Signal())
	case cmd.ProcessState != nil:
		return cmd.ProcessState.ExitCode()
	case err != nil:
		return 3
	}
	return 0
}

// takeForeground makes this process's group the terminal's foreground again
// once the child that had it is gone. A background group may do so only
// with SIGTTOU ignored.
func takeForeground() {
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	_ = unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, unix.Getpgrp())
}
