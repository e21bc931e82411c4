package rulesetfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/egresslab/egresslab/netns/ruleset/nftinclude"
	"golang.org/x/sys/unix"
)

// A policy and its rulesets come from whoever wrote the pull request, and
// egresslab reads them as root. So every file is opened without blocking
// (a FIFO or a device never hangs the run), must be a regular file within a
// size limit, is read with that bound, and a ruleset is opened beneath the
// policy's directory: no "..", absolute or symbolic link leads out of it.

// MaxSize bounds a ruleset file (and each file an nft ruleset includes).
const MaxSize = 16 << 20

// MaxPolicySize is far beyond any real policy; it keeps a wrong -f (a log, a
// binary) from a long parse of something that was never a policy.
const MaxPolicySize = 1 << 20

// ErrLeavesTree is a ruleset path that leads out of the policy's directory.
var ErrLeavesTree = errors.New("leads out of the policy's directory (by .., an absolute path or a symbolic link): want a file inside it")

// ReadPolicy reads the policy file named on the command line. The name
// is the caller's, so a symbolic link is followed; what it leads to must
// still be a regular file of at most MaxPolicySize.
func ReadPolicy(name string) ([]byte, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return readBounded(os.NewFile(uintptr(fd), name), MaxPolicySize, "policy")
}

// openBeneath opens rel, relative to dir, without ever leaving dir's tree.
func openBeneath(dir, rel string) (*os.File, error) {
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat2(dfd, filepath.FromSlash(rel), &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	switch {
	case errors.Is(err, unix.EXDEV):
		return nil, ErrLeavesTree
	case errors.Is(err, unix.ENOSYS):
		return nil, errors.New("this kernel cannot open a file confined to a directory (openat2 needs Linux 5.6)")
	case err != nil:
		return nil, err
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// Read reads a ruleset file beneath the policy's directory.
func Read(dir, rel string) ([]byte, error) {
	f, err := openBeneath(dir, rel)
	if err != nil {
		return nil, err
	}
	return readBounded(f, MaxSize, "ruleset file")
}

// readBounded checks that f is a regular file of at most limit bytes and
// reads it, never more than limit (a file that grows meanwhile is cut off
// and refused). It closes f.
func readBounded(f *os.File, limit int64, what string) ([]byte, error) {
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("is %s: want a regular file", kindOf(st.Mode()))
	}
	if st.Size() > limit {
		return nil, &TooLargeError{fmt.Sprintf("is %d bytes: a %s may have at most %d (%d MiB)", st.Size(), what, limit, limit>>20)}
	}
	return readLimited(f, limit, what)
}

// TooLargeError is a file past its size limit.
type TooLargeError struct{ msg string }

func (e *TooLargeError) Error() string { return e.msg }

func readLimited(r io.Reader, limit int64, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{fmt.Sprintf("is more than %d bytes: a %s may have at most %d (%d MiB)", limit, what, limit, limit>>20)}
	}
	return data, nil
}

// ReadFS is readBounded for a file of an fs.FS (the catalogue).
func ReadFS(fsys fs.FS, name string, limit int64, what string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("is %s: want a regular file", kindOf(st.Mode()))
	}
	return readLimited(f, limit, what)
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file"
}

// ReadNamed reads a ruleset file named on the command line (`lint
// FILES`) and, for an nft file, every file it includes. The operator chose the
// name, but not what a checked-out tree's symbolic links point at: the file
// is read beneath its own directory (a symbolic link may lead to a file beside
// it or below it), the directories of a relative name must lead nowhere out
// of the working directory (the checkout), and the file and its includes are
// read under the same rules and limits as a policy's ruleset. An error says
// what was wrong and holds nothing of any file's content.
func ReadNamed(name string, isNFT func(data []byte) bool) ([]byte, []nftinclude.File, error) {
	dir, base := filepath.Split(name)
	if clean := filepath.Clean(name); !filepath.IsAbs(clean) && clean != ".." && !strings.HasPrefix(clean, "../") && dir != "" {
		// The directories on the way must stay in the working directory.
		d, err := openBeneath(".", filepath.Dir(clean))
		if err != nil {
			return nil, nil, fmt.Errorf("read ruleset %s: %s", name, namedReadProblem(err))
		}
		defer d.Close()
		dir = fmt.Sprintf("/proc/self/fd/%d", d.Fd()) // that directory, whatever its name leads to now
	}
	if dir == "" {
		dir = "."
	}
	read := func(rel string) ([]byte, error) { return Read(dir, rel) }
	data, err := read(base)
	if err != nil {
		return nil, nil, fmt.Errorf("read ruleset %s: %s", name, namedReadProblem(err))
	}
	if !isNFT(data) {
		return data, nil, nil
	}
	includes, err := NFTIncludes(read, base, data)
	var ie *IncludeError
	if errors.As(err, &ie) {
		ie.File = filepath.Join(filepath.Dir(name), ie.File)
		if errors.Is(ie.err, ErrLeavesTree) || errors.Is(ie.err, fs.ErrNotExist) {
			ie.Problem = namedReadProblem(ie.err)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return data, includes, nil
}

// namedReadProblem is Problem for a file named on the command line.
func namedReadProblem(err error) string {
	switch {
	case errors.Is(err, ErrLeavesTree):
		return "leads out of its directory, or out of the working directory, by a symbolic link: name the file it points to"
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	}
	return Problem(err)
}

// Problem says what was wrong with reading a file the policy names,
// without anything of its content.
func Problem(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist: want a file relative to the policy file"
	case errors.Is(err, unix.ELOOP):
		return "is a chain of too many symbolic links: want a file"
	case errors.Is(err, unix.EISDIR):
		return "is a directory: want a regular file"
	}
	return err.Error()
}
