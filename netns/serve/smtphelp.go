package serve

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
)

// go-smtp answers HELP with 502 "not implemented", and a bare `curl smtp://`
// sends HELP and exits 8 on that answer, as if the port were broken. So the
// lab's SMTP listeners answer HELP themselves, in front of go-smtp, which
// speaks every other command.

const helpReply = "214-egresslab's lab mail server accepts any mail and keeps none\r\n" +
	"214 HELO EHLO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT STARTTLS\r\n"

type helpListener struct{ net.Listener }

func (h *helpListener) Accept() (net.Conn, error) {
	c, err := h.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &helpConn{Conn: c, in: bufio.NewReader(c)}, nil
}

// helpConn hands the server one client line per Read, so the server has
// answered each command before the next line is looked at, and answers a
// HELP line itself. The message of DATA (after the server's 354, until the
// lone ".") and everything after STARTTLS's 220 pass through untouched.
type helpConn struct {
	net.Conn
	in      *bufio.Reader
	pending []byte // the rest of a line the server has not read yet
	midLine bool   // the last chunk ended inside a line

	mu      sync.Mutex // Read and Write share what the server said
	inData  bool
	raw     bool // TLS after STARTTLS: bytes, not lines
	greeted bool
}

func (c *helpConn) state() (inData, raw bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inData, c.raw
}

func (c *helpConn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		inData, raw := c.state()
		if raw {
			return c.in.Read(p) // what bufio holds first, then the socket
		}
		line, err := c.in.ReadSlice('\n')
		if len(line) > 0 {
			atStart := !c.midLine
			c.midLine = line[len(line)-1] != '\n'
			switch {
			case inData && atStart && !c.midLine && strings.TrimRight(string(line), "\r\n") == ".":
				c.mu.Lock()
				c.inData = false
				c.mu.Unlock()
			case !inData && atStart && !c.midLine && isHelp(line):
				if _, werr := c.Conn.Write([]byte(helpReply)); werr != nil {
					return 0, werr
				}
				continue
			}
			c.pending = append(c.pending[:0], line...)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if len(c.pending) == 0 {
				return 0, err
			}
			break
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// Write watches the server's replies: 354 starts a message, and a 220 after
// the greeting is STARTTLS's go-ahead.
func (c *helpConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	for _, ln := range bytes.Split(b, []byte("\n")) {
		switch {
		case bytes.HasPrefix(ln, []byte("354")):
			c.inData = true
		case bytes.HasPrefix(ln, []byte("220 ")) && c.greeted:
			c.raw = true
		}
	}
	c.greeted = true
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func isHelp(line []byte) bool {
	f := strings.Fields(string(line))
	return len(f) > 0 && strings.EqualFold(f[0], "HELP")
}
