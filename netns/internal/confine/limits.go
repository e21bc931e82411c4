package confine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A lab's processes (the holder, the candidate's tools and scripts and
// everything they start) live in a cgroup of the lab's own, made where
// egresslab itself runs (so the caller's own limits still hold above it):
// cgroup v2 where /sys/fs/cgroup is cgroup2 and egresslab's cgroup can hand
// pids and memory to a child, else the v1 pids and memory hierarchies. Where
// neither can be used, the lab gets RLIMIT_NPROC, which counts per uid of the
// lab's user namespace: it bounds each lab uid, not a lab root that switches
// between uids, and bounds no memory. Every tmpfs the lab mounts has size=
// and nr_inodes= (root.go) in any case.
const (
	// LabProcessLimit bounds the lab's processes and threads, the holder's
	// included: a 100k-rule load peaked at 9.
	LabProcessLimit = 512
	// LabMemoryLimit bounds the lab's memory: its processes, the files of
	// its tmpfses and the kernel memory charged to them (its rules). A
	// 100k-rule load peaked at 597 MiB (nft) and 247 MiB (iptables-nft).
	LabMemoryLimit = 2 << 30
)

// Limits are the cgroups (or rlimit) that bound one lab.
type Limits struct {
	holder  int
	dirs    []string // the lab's cgroups, removed at Close
	pids    string   // the cgroup whose pids.events counts hits, or ""
	memory  string   // the cgroup whose OOM kills count hits, or ""
	memV2   bool
	seenPID int64 // hits already reported
	seenOOM int64
}

const cgroupRoot = "/sys/fs/cgroup"

// cgroupSeq numbers this process's lab cgroups.
var cgroupSeq atomic.Int64

var sweepOnce sync.Once

// New puts the holder (pid) into cgroups of the lab's own, before it
// starts anything: every process of the lab descends from it.
func New(pid int) (*Limits, error) {
	self, start := os.Getpid(), processStart(os.Getpid())
	name := fmt.Sprintf("egresslab-lab.%d.%d.%d", self, start, cgroupSeq.Add(1))
	own, v2, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	sweepOnce.Do(func() { sweepStaleCgroups(own) })
	c := &Limits{holder: pid, memV2: v2}
	if rel, ok := own["0"]; ok && v2 {
		if err := c.makeV2(rel, name); err == nil {
			return c, nil
		}
		_ = c.Remove()
		c = &Limits{holder: pid}
	} else if err := c.makeV1(own, name); err != nil {
		// A cgroup file system this process may not write (a container's
		// read-only one): the rlimit fallback, as where there is none.
		_ = c.Remove()
		c = &Limits{holder: pid}
	}
	if c.pids == "" {
		lim := &unix.Rlimit{Cur: LabProcessLimit, Max: LabProcessLimit}
		if err := unix.Prlimit(pid, unix.RLIMIT_NPROC, lim, nil); err != nil {
			return c, fmt.Errorf("bound the lab's processes: %w", err)
		}
	}
	return c, nil
}

// makeV1 makes the lab's cgroups in the v1 pids and memory hierarchies,
// under egresslab's own cgroup in each.
func (c *Limits) makeV1(own map[string]string, name string) error {
	if dir, ok := own["pids"]; ok {
		cg, err := c.make(dir, name, map[string]string{"pids.max": strconv.Itoa(LabProcessLimit)})
		if err != nil {
			return err
		}
		c.pids = cg
	}
	if dir, ok := own["memory"]; ok {
		limit := strconv.Itoa(LabMemoryLimit)
		cg, err := c.make(dir, name, map[string]string{"memory.limit_in_bytes": limit})
		if err != nil {
			return err
		}
		// With swap accounting, swap may not add to the bound; without, the file is absent.
		_ = os.WriteFile(filepath.Join(cg, "memory.memsw.limit_in_bytes"), []byte(limit), 0)
		c.memory = cg
	}
	return nil
}

// makeV2 makes the lab's cgroup under egresslab's own cgroup v2 (rel).
func (c *Limits) makeV2(rel, name string) error {
	parent := filepath.Join(cgroupRoot, rel)
	// A cgroup with processes of its own cannot hand controllers down
	// (EBUSY), except the root: then the rlimit fallback applies.
	if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+pids +memory"), 0); err != nil {
		return err
	}
	cg, err := c.make(parent, name, map[string]string{
		"pids.max": strconv.Itoa(LabProcessLimit), "memory.max": strconv.Itoa(LabMemoryLimit),
	})
	if err != nil {
		return err
	}
	_ = os.WriteFile(filepath.Join(cg, "memory.swap.max"), []byte("0"), 0)
	c.pids, c.memory = cg, cg
	return nil
}

// make creates parent/name with settings and moves the holder into it.
func (c *Limits) make(parent, name string, settings map[string]string) (string, error) {
	cg := filepath.Join(parent, name)
	if err := os.Mkdir(cg, 0o755); err != nil {
		return "", fmt.Errorf("make the lab's cgroup: %w", err)
	}
	c.dirs = append(c.dirs, cg)
	for file, v := range settings {
		if err := os.WriteFile(filepath.Join(cg, file), []byte(v), 0); err != nil {
			return "", fmt.Errorf("bound the lab's cgroup (%s): %w", file, err)
		}
	}
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(c.holder)), 0); err != nil {
		return "", fmt.Errorf("move the lab's holder into its cgroup: %w", err)
	}
	return cg, nil
}

// Remove deletes the lab's cgroups; the holder has been reaped, and with it
// (PID 1 of the lab's PID namespace) every process of the lab.
func (c *Limits) Remove() error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, dir := range c.dirs {
		if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove the lab's cgroup %s: %w", dir, err))
		}
	}
	c.dirs = nil
	return errors.Join(errs...)
}

// ownCgroups maps each v1 controller (or "0" for v2) to the directory of
// egresslab's own cgroup there, where /sys/fs/cgroup has it.
func ownCgroups() (map[string]string, bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(cgroupRoot, &st); err != nil {
		return map[string]string{}, false, nil // no cgroups: the rlimit fallback
	}
	v2 := st.Type == unix.CGROUP2_SUPER_MAGIC
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, false, fmt.Errorf("read egresslab's cgroups: %w", err)
	}
	own := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if v2 && parts[0] == "0" {
			own["0"] = parts[2]
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			if ctl != "pids" && ctl != "memory" {
				continue
			}
			// The hierarchy must be mounted where its name says.
			dir := filepath.Join(cgroupRoot, ctl)
			if unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP_SUPER_MAGIC {
				own[ctl] = filepath.Join(dir, parts[2])
			}
		}
	}
	return own, v2, nil
}

// sweepStaleCgroups removes the empty lab cgroups that runs killed before
// their Close left behind: those of processes that no longer run.
func sweepStaleCgroups(own map[string]string) {
	for ctl, dir := range own {
		if ctl == "0" {
			dir = filepath.Join(cgroupRoot, dir)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			var pid, start, n int64
			if _, err := fmt.Sscanf(e.Name(), "egresslab-lab.%d.%d.%d", &pid, &start, &n); err != nil || !e.IsDir() {
				continue
			}
			if processStart(int(pid)) != start {
				_ = unix.Rmdir(filepath.Join(dir, e.Name())) // fails while anything runs in it
			}
		}
	}
}

// processStart is pid's start time (clock ticks after boot), or -1: with
// the pid it names one process, even after the pid is reused.
func processStart(pid int) int64 {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 20 {
		return -1
	}
	start, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return -1
	}
	return start
}

// eventCount reads "key N" from a cgroup's event file, or 0.
func eventCount(file, key string) int64 {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

func (c *Limits) pidsHits() int64 {
	if c == nil || c.pids == "" {
		return 0
	}
	return eventCount(filepath.Join(c.pids, "pids.events"), "max")
}

func (c *Limits) oomKills() int64 {
	if c == nil || c.memory == "" {
		return 0
	}
	if c.memV2 {
		return eventCount(filepath.Join(c.memory, "memory.events"), "oom_kill")
	}
	return eventCount(filepath.Join(c.memory, "memory.oom_control"), "oom_kill")
}

// Hit returns the bound the lab hit since the last call, with its value
// ("process limit (512 processes)"), or "".
func (c *Limits) Hit() string {
	if c == nil {
		return ""
	}
	if n := c.pidsHits(); n > c.seenPID {
		c.seenPID = n
		return fmt.Sprintf("process limit (%d processes)", LabProcessLimit)
	}
	if n := c.oomKills(); n > c.seenOOM {
		c.seenOOM = n
		return fmt.Sprintf("memory limit (%d GiB)", LabMemoryLimit>>30)
	}
	for _, t := range labTmpfses {
		var st unix.Statfs_t
		if unix.Statfs(filepath.Join(fmt.Sprintf("/proc/%d/root", c.holder), t.Path), &st) != nil {
			continue
		}
		switch {
		case st.Type == unix.TMPFS_MAGIC && st.Bavail == 0:
			return fmt.Sprintf("size limit of its %s (%d MiB)", t.Path, t.Size>>20)
		case st.Type == unix.TMPFS_MAGIC && st.Ffree == 0:
			return fmt.Sprintf("file limit of its %s (%d files)", t.Path, t.Inodes)
		}
	}
	return ""
}

// Watch returns a context that ends when the lab's processes hit their
// limit: a fork bomb need never end by itself. The v1 pids.events tells no
// watcher of a change (only v2's does), so it is read every watchEvery.
func (c *Limits) Watch(ctx context.Context) (context.Context, func()) {
	wctx, cancel := context.WithCancel(ctx)
	if c == nil || c.pids == "" {
		return wctx, cancel
	}
	seen := c.seenPID
	go func() {
		tick := time.NewTicker(watchEvery)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
				if c.pidsHits() > seen {
					cancel()
					return
				}
			}
		}
	}()
	return wctx, cancel
}

// watchEvery is how often a running candidate's process count is checked:
// a read of one small file.
const watchEvery = 50 * time.Millisecond
