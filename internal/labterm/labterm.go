// Package labterm gives `egresslab exec` and `shell` a terminal of the lab's
// own: a pty whose slave is the command's controlling terminal, while
// egresslab copies between the operator's terminal (in raw mode, restored on
// every exit, its size forwarded) and the master.
package labterm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Terminal is a terminal of the lab's own for `exec` and `shell`: a pty
// whose slave is the command's controlling terminal, in a session of its
// own, while egresslab copies between the operator's terminal and the
// master. Nothing in the lab ever holds the operator's terminal, so a
// TIOCSTI (or anything else done to /dev/tty) inside the lab reaches the
// lab's pty only.
type Terminal struct {
	master  *os.File
	slave   *os.File
	restore func() // the operator's terminal as it was; nil if not changed
	outDone chan struct{}
	winch   chan os.Signal
}

// Attach gives c our standard streams: those that are terminals as
// the slave of a new pty, the others (pipes, files) as they are. Where none
// is a terminal it allocates nothing and returns nil.
func Attach(c *exec.Cmd) (*Terminal, error) {
	streams := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	var sizeFrom *os.File
	for _, f := range streams {
		if IsTerminal(f) && sizeFrom == nil {
			sizeFrom = f
		}
	}
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	if sizeFrom == nil {
		return nil, nil
	}
	master, slave, err := openPty()
	if err != nil {
		return nil, err
	}
	t := &Terminal{master: master, slave: slave, outDone: make(chan struct{})}
	ctty := -1
	for i, f := range streams {
		if !IsTerminal(f) {
			continue
		}
		if ctty < 0 {
			ctty = i
		}
		switch i {
		case 0:
			c.Stdin = slave
		case 1:
			c.Stdout = slave
		case 2:
			c.Stderr = slave
		}
	}
	if c.SysProcAttr == nil {
		c.SysProcAttr = &syscall.SysProcAttr{}
	}
	c.SysProcAttr.Setsid, c.SysProcAttr.Setctty, c.SysProcAttr.Ctty = true, true, ctty
	copyWindowSize(sizeFrom, master)
	t.winch = make(chan os.Signal, 1)
	signal.Notify(t.winch, syscall.SIGWINCH)
	go func() {
		for range t.winch {
			copyWindowSize(sizeFrom, master)
		}
	}()
	// What the lab writes to its terminal goes to ours; where only stdin
	// is a terminal, the pty's echo has nowhere to go.
	var out io.Writer = io.Discard
	if IsTerminal(os.Stdout) {
		out = os.Stdout
	} else if IsTerminal(os.Stderr) {
		out = os.Stderr
	}
	go func() {
		defer close(t.outDone)
		_, _ = io.Copy(out, master) // until EIO: every holder of the slave is gone
	}()
	if IsTerminal(os.Stdin) {
		restore, err := makeRaw(os.Stdin)
		if err != nil {
			t.Close()
			return nil, err
		}
		t.restore = restore
		go func() { _, _ = io.Copy(master, os.Stdin) }()
	}
	return t, nil
}

// Started drops our copy of the slave: the lab's processes hold it now, and
// the master reads EIO once the last of them is gone.
func (t *Terminal) Started() {
	if t != nil {
		t.slave.Close()
	}
}

// Finish waits for what the lab wrote to reach our terminal (call it once
// the lab is closed, so that nothing holds the slave any more) and restores
// the operator's terminal.
func (t *Terminal) Finish() {
	if t == nil {
		return
	}
	t.slave.Close()
	<-t.outDone
	t.Close()
}

// Close restores the operator's terminal at once; safe to call again.
func (t *Terminal) Close() {
	if t == nil {
		return
	}
	if t.restore != nil {
		t.restore()
		t.restore = nil
	}
	if t.winch != nil {
		signal.Stop(t.winch)
		close(t.winch)
		t.winch = nil
	}
	t.slave.Close()
}

// openPty allocates a pty pair: the master, and its slave opened without
// becoming anyone's controlling terminal (the command's session takes it).
func openPty() (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("allocate a terminal for the lab: %w", err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("unlock the lab's terminal: %w", err)
	}
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		unix.Close(m)
		return nil, nil, fmt.Errorf("open the lab's terminal: %w", errno)
	}
	return os.NewFile(uintptr(m), "/dev/ptmx"), os.NewFile(s, "lab-terminal"), nil
}

func copyWindowSize(from, to *os.File) {
	if ws, err := unix.IoctlGetWinsize(int(from.Fd()), unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(to.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// makeRaw puts terminal f in raw mode (keys, ^C included, go to the lab's
// terminal, whose own line discipline interprets them) and returns what
// restores it.
func makeRaw(f *os.File) (func(), error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, errors.New("read the terminal's settings: " + err.Error())
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETSW, &raw); err != nil {
		return nil, errors.New("set the terminal raw: " + err.Error())
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETSW, old) }, nil
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
