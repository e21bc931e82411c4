package netns

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// The sentinel as nft's own syntax writes it: the reference that the
// netlink-built sentinel (sentinel_build.go) must equal, rule for rule.

// Flow keys, as nft lays out a concatenation: every part padded to 4 bytes.
// IPv4: saddr . sport . daddr . dport . proto; IPv6 the same with 16-byte
// addresses. An answer's key is the same flow read backwards.
const (
	key4    = "ip saddr . th sport . ip daddr . th dport . meta l4proto"
	key4Rev = "ip daddr . th dport . ip saddr . th sport . meta l4proto"
	key6    = "ip6 saddr . th sport . ip6 daddr . th dport . meta l4proto"
	key6Rev = "ip6 daddr . th dport . ip6 saddr . th sport . meta l4proto"
	// the flow inside an ICMP / ICMPv6 error: 8 bytes of ICMP header, then
	// the offending packet's IP header and ports, as raw fields (its
	// protocol picks the set; probes send no IP options)
	icmpKey4   = "@th,160,32 . @th,224,16 . @th,192,32 . @th,240,16"
	icmpKey6   = "@th,128,128 . @th,384,16 . @th,256,128 . @th,400,16"
	icmpProto4 = "@th,136,8"
	icmpProto6 = "@th,112,8"
	ndTarget   = "@th,64,128"
)

// flowTimeout lets elements nobody removes (answers that belong to no probe,
// a probe abandoned mid-way) age out; probes remove their own at once.
const flowTimeout = "10m"

func sentinelRuleset() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", sentinelTable)
	set := func(name, k4, k6 string) {
		fmt.Fprintf(&b, "\tset %s4 { typeof %s; flags dynamic,timeout; timeout %s; size 4194304; }\n", name, k4, flowTimeout)
		fmt.Fprintf(&b, "\tset %s6 { typeof %s; flags dynamic,timeout; timeout %s; size 4194304; }\n", name, k6, flowTimeout)
	}
	for _, name := range flowSets {
		set(name, key4, key6)
	}
	for _, name := range []string{icmpSets["tcp"], icmpSets["udp"]} {
		set(name, icmpKey4, icmpKey6)
	}
	for _, name := range ndSets {
		fmt.Fprintf(&b, "\tset %s { typeof %s; flags dynamic; size 65536; }\n", name, ndTarget)
	}
	// A probe's first packet: a TCP SYN without ACK, or any UDP datagram
	// (answers are UDP too; their elements belong to no probe and age out).
	const v4, v6 = "meta nfproto ipv4", "meta nfproto ipv6"
	first := []string{"tcp flags & (syn|ack) == syn", "meta l4proto udp"}
	answer := []string{"tcp flags & (syn|ack) == syn|ack", "meta l4proto udp"}
	rules := func(chain string, hook string, prio int64, body []string) {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority %d; policy accept;\n", chain, hook, prio)
		for _, r := range body {
			fmt.Fprintf(&b, "\t\t%s\n", r)
		}
		b.WriteString("\t}\n")
	}
	both := func(set string, match []string, fwd bool) []string {
		var out []string
		for _, m := range match {
			k4, k6 := key4, key6
			if !fwd {
				k4, k6 = key4Rev, key6Rev
			}
			out = append(out, fmt.Sprintf("%s %s add @%s4 { %s }", v4, m, set, k4), fmt.Sprintf("%s %s add @%s6 { %s }", v6, m, set, k6))
		}
		return out
	}
	nd := func(typ, set string) string {
		return fmt.Sprintf("icmpv6 type %s add @%s { %s }", typ, set, ndTarget)
	}
	var post []string
	post = append(post, both("out", first, true)...)
	post = append(post,
		v4+" tcp flags & rst == rst add @rst4 { "+key4Rev+" }",
		v6+" tcp flags & rst == rst add @rst6 { "+key6Rev+" }",
		"icmp type destination-unreachable "+icmpProto4+" 6 add @icmp_tcp4 { "+icmpKey4+" }",
		"icmp type destination-unreachable "+icmpProto4+" 17 add @icmp_udp4 { "+icmpKey4+" }",
		"icmpv6 type destination-unreachable "+icmpProto6+" 6 add @icmp_tcp6 { "+icmpKey6+" }",
		"icmpv6 type destination-unreachable "+icmpProto6+" 17 add @icmp_udp6 { "+icmpKey6+" }")
	post = append(post, both("rep_out", answer, false)...)
	post = append(post, nd("nd-neighbor-solicit", "ns_out"), nd("nd-neighbor-advert", "rna_out"))
	rules("post", "postrouting", math.MaxInt32, post)

	firstOut := append(both("rep_gen", answer, false), nd("nd-neighbor-solicit", "ns_gen"), nd("nd-neighbor-advert", "rna_gen"))
	rules("first_out", "output", math.MinInt32, firstOut)

	firstIn := append(both("req_arr", first, true), both("rep_arr", answer, false)...)
	firstIn = append(firstIn, nd("nd-neighbor-solicit", "rns_arr"), nd("nd-neighbor-advert", "na_arr"))
	rules("first_in", "prerouting", math.MinInt32, firstIn)

	lastIn := append(both("req_in", first, true), both("rep_in", answer, false)...)
	lastIn = append(lastIn, nd("nd-neighbor-solicit", "rns_in"), nd("nd-neighbor-advert", "na_in"))
	rules("last_in", "input", math.MaxInt32, lastIn)
	b.WriteString("}\n")
	return b.String()
}

// The sentinel built in-process is what nft makes of sentinelRuleset: the
// same chains, the same byte code in every rule, the same sets (flags,
// timeout, size, key length), as the kernel lists them back. Only the sets'
// key types may differ where nft reads raw fields (it calls them integer).
func TestSentinelIsWhatNftMakesOfItsRuleset(t *testing.T) {
	sameAsNft(t, sentinelTable, sentinelRuleset(), buildSentinel)
}

// sameAsNft loads ruleset with nft in one network namespace and build's
// table in another, and compares the two as nft lists them: every rule's
// byte code, and the sets and chains.
func sameAsNft(t *testing.T, table, ruleset string, build func(*nftables.Conn) error) {
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

// runInNetns runs a command in the network namespace fd (forked from a
// thread inside it), with stdin as its input.
func runInNetns(fd int, stdin string, name string, args ...string) ([]byte, error) {
	var out []byte
	err := doIn(fd, func() error {
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run()
		out = buf.Bytes()
		return err
	})
	return out, err
}
