package confine

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The lab gets a root of its own: a fresh tmpfs holding read-only bind mounts
// of what tools need (/usr, /etc, the /bin and /lib links or directories), a
// minimal /dev, private /tmp, /var/tmp, /dev/shm and /run, and its own /proc.
// The holder pivots into it and detaches the host's root. Mounts made inside
// the lab's user namespace can be undone by the lab's root, but undoing one
// here reveals only an empty directory of the lab's own tmpfs; the root
// itself cannot be unmounted (pivot_root hands it the lock the host's root
// had, as a mount copied from a more privileged namespace). Nothing of the
// host stays reachable but the read-only binds, where the lab's root is
// nobody: a host file it may write is one any host user may write.

// hostTrees are what the lab's root shows of the host's, read-only; a
// symlink among them (merged /usr) is copied as a symlink.
var hostTrees = []string{"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"}

// labDevices are the host's device nodes the lab's /dev shows. /dev/tty
// opens the caller's controlling terminal, and no lab process has one but
// the pty exec and shell make for the lab (every other open fails with
// ENXIO, as on a host for a daemon); /dev/pts shows that pty by name, and
// no other host pty is the lab's to open (their owners are not mapped).
var labDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// labTmpfs is one private tmpfs of the lab and its bounds.
type labTmpfs struct {
	Path   string // inside the lab
	Mode   string
	Size   int64 // bytes
	Inodes int
}

// labTmpfses are the lab's private file systems, each bounded in size and
// files: a candidate script filling one stops at its size with ENOSPC.
// /run holds the staged rulesets (up to 16 MiB each) and tool locks.
var labTmpfses = []labTmpfs{
	{Path: "/tmp", Mode: "1777", Size: 64 << 20, Inodes: 16384},
	{Path: "/var/tmp", Mode: "1777", Size: 64 << 20, Inodes: 16384},
	{Path: "/dev/shm", Mode: "1777", Size: 64 << 20, Inodes: 16384},
	{Path: "/run", Mode: "0755", Size: 128 << 20, Inodes: 16384},
}

// labRootTmpfs bounds the root's own tmpfs: directories, links, mount points.
var labRootTmpfs = labTmpfs{Path: "/", Mode: "0755", Size: 1 << 20, Inodes: 1024}

func (t labTmpfs) options() string {
	return fmt.Sprintf("mode=%s,size=%d,nr_inodes=%d", t.Mode, t.Size, t.Inodes)
}

// buildDir is where the new root is assembled, on the host root's /tmp as
// this namespace sees it (the host's /tmp is not touched: a mount over it,
// private to this namespace).
const buildDir = "/tmp"

// MakeRoot builds the lab's root and pivots the calling process (the
// holder) into it.
func MakeRoot() error {
	// Nothing mounted here may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private in the lab: %w", err)
	}
	if err := mountTmpfs(buildDir, labRootTmpfs); err != nil {
		return err
	}
	at := func(p string) string { return filepath.Join(buildDir, p) }
	for _, name := range hostTrees {
		if err := showHostTree(name, at(name)); err != nil {
			return err
		}
	}
	for _, dir := range []string{"dev", "proc", "root", "var", "run", "tmp", "var/tmp", "dev/shm"} {
		if err := os.Mkdir(at(dir), 0o755); err != nil {
			return fmt.Errorf("make the lab's /%s: %w", dir, err)
		}
	}
	for _, t := range labTmpfses {
		if err := mountTmpfs(at(t.Path), t); err != nil {
			return err
		}
	}
	if err := os.Mkdir(at("run/lock"), 0o1777); err != nil {
		return fmt.Errorf("make the lab's /run/lock: %w", err)
	}
	links := map[string]string{
		"var/run": "/run", "var/lock": "/run/lock",
		"dev/fd": "/proc/self/fd", "dev/stdin": "/proc/self/fd/0",
		"dev/stdout": "/proc/self/fd/1", "dev/stderr": "/proc/self/fd/2",
	}
	for link, target := range links {
		if err := os.Symlink(target, at(link)); err != nil {
			return fmt.Errorf("make the lab's /%s: %w", link, err)
		}
	}
	for _, dev := range labDevices {
		if err := bindDevice(dev, at("dev/"+dev)); err != nil {
			return err
		}
	}
	if err := bindPTYs(at("dev/pts")); err != nil {
		return err
	}
	// The lab's own /proc shows the lab's PID namespace only: a candidate
	// script sees no host process, and no descriptor of ours. It is mounted
	// while the host's /proc is still in this namespace: the kernel lets a
	// user namespace mount proc only where one is already fully visible.
	if err := unix.Mount("proc", at("proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount the lab's own /proc: %w", err)
	}
	return pivotInto(buildDir)
}

// mountTmpfs mounts a private tmpfs bounded as t says at dir.
func mountTmpfs(dir string, t labTmpfs) error {
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, t.options()); err != nil {
		return fmt.Errorf("mount the lab's private %s: %w", t.Path, err)
	}
	return nil
}

// showHostTree makes /name of the host visible at dst: a symlink as the same
// symlink, a directory as a read-only recursive bind; a missing one not at all.
func showHostTree(name, dst string) error {
	src := "/" + name
	st, err := os.Lstat(src)
	switch {
	case err != nil:
		return nil
	case st.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err == nil {
			err = os.Symlink(target, dst)
		}
		if err != nil {
			return fmt.Errorf("show the host's %s in the lab: %w", src, err)
		}
		return nil
	case !st.IsDir():
		return nil
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return fmt.Errorf("show the host's %s in the lab: %w", src, err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("show the host's %s in the lab: %w", src, err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(unix.AT_FDCWD, dst, unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("make the lab's %s read-only: %w", src, err)
	}
	return nil
}

// bindDevice shows the host's /dev/name at dst.
func bindDevice(name, dst string) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
	if err != nil {
		return fmt.Errorf("make the lab's /dev/%s: %w", name, err)
	}
	f.Close()
	if err := unix.Mount("/dev/"+name, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("make the lab's /dev/%s: %w", name, err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(unix.AT_FDCWD, dst, 0, attr); err != nil {
		return fmt.Errorf("make the lab's /dev/%s: %w", name, err)
	}
	return nil
}

// bindPTYs shows the host's /dev/pts in the lab (no ptmx beside it: the lab
// makes no ptys of its own there), so that ttyname finds exec's pty.
func bindPTYs(dst string) error {
	if _, err := os.Stat("/dev/pts"); err != nil {
		return nil // no devpts on this host: exec's pty has no name, nothing else changes
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return fmt.Errorf("make the lab's /dev/pts: %w", err)
	}
	if err := unix.Mount("/dev/pts", dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("make the lab's /dev/pts: %w", err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(unix.AT_FDCWD, dst, 0, attr); err != nil {
		return fmt.Errorf("make the lab's /dev/pts: %w", err)
	}
	return nil
}

// pivotInto makes root the calling process's root (and that of every thread:
// Go's threads share one fs_struct) and detaches the host's root, the way
// runc does: pivot_root(".", ".") stacks the old root over the new one, and
// a lazy unmount of it leaves the new one.
func pivotInto(root string) error {
	old, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the host's root: %w", err)
	}
	defer unix.Close(old)
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("enter the lab's root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot into the lab's root: %w", err)
	}
	if err := unix.Fchdir(old); err != nil {
		return fmt.Errorf("detach the host's root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host's root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("enter the lab's root: %w", err)
	}
	return nil
}
