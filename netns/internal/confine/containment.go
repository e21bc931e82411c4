package confine

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// What keeps a hostile candidate (a script running as the lab's root) away
// from the process that runs it: no descriptor of the caller's, no terminal,
// no way into the holder (docs/security.md).

// CloseInherited closes the descriptors above 2 that this process inherited
// without close-on-exec, except keep.
func CloseInherited(keep int) {
	dir, err := os.Open("/proc/self/fd")
	if err != nil {
		// No /proc: mark them all close-on-exec, which is what matters.
		if keep < 0 {
			_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
		} else {
			_ = unix.CloseRange(uint(keep)+1, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
		}
		return
	}
	names, _ := dir.Readdirnames(-1)
	own := int(dir.Fd())
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd <= 2 || fd == keep || fd == own {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
	dir.Close()
}

// DropPtraceCapability takes CAP_SYS_PTRACE from the calling thread (its
// bounding, permitted, effective and inheritable sets), and with it from
// every process forked from this thread: the lab's root keeps every other
// capability its tools need in the lab's user namespace, but cannot trace,
// read the memory of or take descriptors from the holder (with the holder
// non-dumpable, the same uid no longer suffices either).
func DropPtraceCapability() error {
	if err := unix.Prctl(unix.PR_CAPBSET_DROP, unix.CAP_SYS_PTRACE, 0, 0, 0); err != nil {
		return err
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	bit := uint32(1) << (unix.CAP_SYS_PTRACE % 32)
	d := &data[unix.CAP_SYS_PTRACE/32]
	d.Effective &^= bit
	d.Permitted &^= bit
	d.Inheritable &^= bit
	return unix.Capset(&hdr, &data[0])
}

// maxHolderStderr bounds what egresslab passes on of its holder's stderr
// (the Go runtime's own crash report is the only thing the holder writes
// there; what else arrives is not the holder's).
const maxHolderStderr = 16 << 10

// RelayHolderStderr copies the holder's stderr to w until r ends: at most
// maxHolderStderr bytes, each line prefixed, with control characters and
// terminal escape sequences taken out, so that nothing written there can
// drive the operator's terminal. Anything beyond the bound is read and
// dropped, so that the holder never blocks on a full pipe.
func RelayHolderStderr(r io.Reader, w io.Writer, lab string) {
	br := bufio.NewReaderSize(r, 4096)
	left := maxHolderStderr
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && left > 0 {
			clean := sanitizeTerminalText(line)
			if len(clean) > left {
				clean = append(clean[:left:left], " [cut]"...)
			}
			left -= len(clean)
			out := append([]byte("egresslab: lab "+lab+" holder: "), clean...)
			if out[len(out)-1] != '\n' {
				out = append(out, '\n')
			}
			_, _ = w.Write(out)
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// sanitizeTerminalText is b with escape sequences (CSI, OSC and two-byte
// ones), other control characters and invalid UTF-8 removed; tabs and the
// newline stay.
func sanitizeTerminalText(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == 0x1b || r == 0x9b || r == 0x9d:
			i += skipEscape(b[i:], r, size)
			continue
		case r == utf8.RuneError && size <= 1:
		case r == '\n' || r == '\t':
			out = append(out, byte(r))
		case unicode.IsControl(r), r == 0x7f:
		default:
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

// skipEscape is the length of the escape sequence at the start of b, which
// begins with r (ESC, or the C1 CSI or OSC) of size bytes.
func skipEscape(b []byte, r rune, size int) int {
	kind := r
	i := size
	if r == 0x1b {
		if i >= len(b) {
			return i
		}
		switch b[i] {
		case '[':
			kind = 0x9b
		case ']', 'P', '_', '^', 'X': // OSC, DCS, APC, PM, SOS: strings
			kind = 0x9d
		default:
			return i + 1 // a two-byte sequence
		}
		i++
	}
	for ; i < len(b); i++ {
		c := b[i]
		if kind == 0x9b && c >= 0x40 && c <= 0x7e {
			return i + 1 // CSI ends at its final byte
		}
		if kind == 0x9d && (c == 0x07 || c == '\n') {
			return i + 1 // a string ends at BEL (or, here, the line's end)
		}
		if kind == 0x9d && c == 0x1b && i+1 < len(b) && b[i+1] == '\\' {
			return i + 2 // or at ST
		}
	}
	return i
}
