// Package nfttest compares a table that the lab builds over netlink with
// what nft makes of the same table in its own syntax, each in a network
// namespace of the test's own. For the tests of netns/sentinel and
// netns/trace only.
package nfttest

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// SameAsNft loads ruleset with nft in one network namespace and build's
// table in another, and compares the two as nft lists them: every rule's
// byte code, and the sets and chains.
func SameAsNft(t *testing.T, table, ruleset string, build func(*nftables.Conn) error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root: it makes network namespaces (run the suite as root, as CI does)")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatal("needs nft (apt-get install nftables)")
	}
	byNft, built := newTestNetns(t), newTestNetns(t)
	if out, err := runInNetns(byNft, ruleset, "nft", "-f", "-"); err != nil {
		t.Fatalf("nft -f the reference: %v: %s", err, out)
	}
	c, err := nftables.New(nftables.WithNetNSFd(built))
	if err != nil {
		t.Fatal(err)
	}
	if err := build(c); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("build the table: %v", err)
	}
	for _, args := range [][]string{
		{"--debug=netlink", "list", "table", "inet", table}, // rules' byte code
		{"list", "table", "inet", table},                    // sets and chains as nft shows them
	} {
		want, err := runInNetns(byNft, "", "nft", args...)
		if err != nil {
			t.Fatalf("nft %s: %v: %s", strings.Join(args, " "), err, want)
		}
		got, err := runInNetns(built, "", "nft", args...)
		if err != nil {
			t.Fatalf("nft %s: %v: %s", strings.Join(args, " "), err, got)
		}
		w, g := comparable(want), comparable(got)
		if len(w) < 20 {
			t.Fatalf("nft %s listed only %d lines", strings.Join(args, " "), len(w))
		}
		for i := range max(len(w), len(g)) {
			var wl, gl string
			if i < len(w) {
				wl = w[i]
			}
			if i < len(g) {
				gl = g[i]
			}
			if wl != gl {
				t.Fatalf("nft %s differs at line %d:\n nft made:   %q\n we built:   %q", strings.Join(args, " "), i+1, wl, gl)
			}
		}
	}
}

var (
	setType = regexp.MustCompile(`^(\s*)(typeof|type) .*$`)
	handles = regexp.MustCompile(`^(inet \S+ \S+)( \d+)+$`)
)

// comparable drops what may differ by construction: a set's key type line
// (nft's typeof of raw fields against our typed fields; the key length is
// in the byte code's loads and in the elements' use) and rule handles.
func comparable(listing []byte) []string {
	var out []string
	for _, ln := range strings.Split(string(listing), "\n") {
		ln = setType.ReplaceAllString(ln, "${1}KEY")
		ln = handles.ReplaceAllString(ln, "$1")
		out = append(out, ln)
	}
	return out
}

func newTestNetns(t *testing.T) int {
	t.Helper()
	fdc, errc := make(chan int, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies in the new namespace
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		fdc <- fd
	}()
	select {
	case fd := <-fdc:
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	case err := <-errc:
		t.Fatalf("make a network namespace: %v", err)
		return -1
	}
}

// runInNetns runs a command in the network namespace fd (through nsenter:
// only package netns switches threads' namespaces), with stdin as its input.
func runInNetns(fd int, stdin string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command("nsenter", append([]string{"--net=/proc/self/fd/3", "--", name}, args...)...)
	cmd.ExtraFiles = []*os.File{os.NewFile(uintptr(fd), "netns")}
	cmd.Stdin = strings.NewReader(stdin)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.Bytes(), err
}
