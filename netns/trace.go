package netns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Tracing names the rule that decided a probe. The lab's own table
// egresslab_trace, added after the candidate's rules, sets nftrace on the
// probes' packets only: requests to the matrix's destinations (a TCP SYN or a
// UDP datagram) and the answers from them (SYN-ACK, reset, UDP reply), on
// output and on prerouting. `nft -a monitor trace`, run inside the lab, then
// prints each chain such a packet enters and each rule or policy that gave it
// a verdict, with the rule's handle; a probe's flow picks its own packets out
// of that. The iptables-legacy flavour's rules are not nf_tables rules and
// cannot be traced: the lab says so rather than guess.

const traceTable = "egresslab_trace"

// marker is where the lab sends a datagram that its trace table drops at
// once: when the monitor prints it, every trace before it has been read.
var markerDst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 127, 127, 127}), 7)

// Rule is what decided a probe, as the kernel's trace named it.
type Rule struct {
	Family   string `json:"family,omitempty"` // ip, ip6, inet
	Table    string `json:"table,omitempty"`
	Chain    string `json:"chain,omitempty"`
	Position int    `json:"position,omitempty"` // 1-based in its chain; 0 for the chain's policy
	Handle   int    `json:"handle,omitempty"`
	// Text is the rule as nft prints it, or iptables-save's line for a rule of
	// iptables-nft; "policy drop" when no rule matched.
	Text    string `json:"text,omitempty"`
	Verdict string `json:"verdict,omitempty"` // accept, drop or reject
	Policy  bool   `json:"policy,omitempty"`  // the chain's policy decided: no rule matched
	Packet  string `json:"packet,omitempty"`  // "request", "answer" or "neighbour-discovery": the packet it decided
	// Note says what the rule matched on that a reader may not expect.
	Note string `json:"note,omitempty"`
	// Untraced says why no rule can be named; every other field is empty.
	Untraced string `json:"untraced,omitempty"`
}

func (r *Rule) String() string {
	if r.Untraced != "" {
		return "rule not traced: " + r.Untraced
	}
	where := fmt.Sprintf("%s %s %s", r.Family, r.Table, r.Chain)
	s := fmt.Sprintf("%s rule %d: %s", where, r.Position, r.Text)
	if r.Policy {
		s = fmt.Sprintf("%s policy %s (no rule matched)", where, r.Verdict)
	}
	switch r.Packet {
	case "answer":
		s += " (on the answer)"
	case "neighbour-discovery":
		s += " (on neighbour discovery)"
	}
	if r.Note != "" {
		s += " — " + r.Note
	}
	return s
}

// Trace follows the probes' packets through the candidate's rules.
type Trace struct {
	lab      *Lab
	untraced string // set when the lab cannot trace at all
	index    ruleIndex
	cmd      *exec.Cmd
	stdout   io.ReadCloser

	mu      sync.Mutex
	events  map[string][]traceEvent // by "src>dst/proto" of the packet
	markers map[uint16]chan struct{}
	readErr error
	done    chan struct{}
}

// traceEvent is one verdict a traced packet met.
type traceEvent struct {
	family, table, chain string
	handle               int
	text                 string
	verdict              string // accept, drop, jump, continue, return ...
	policy               bool
}

// StartTrace installs the lab's trace table for the given destinations and
// starts the monitor; call it after the candidate's ruleset has loaded.
func (l *Lab) StartTrace(ctx context.Context, dsts []netip.AddrPort) (*Trace, error) {
	t := &Trace{lab: l, events: map[string][]traceEvent{}, markers: map[uint16]chan struct{}{}, done: make(chan struct{})}
	if l.cfg.Backend == "legacy" {
		t.untraced = "the iptables-legacy flavour cannot be traced (its rules are not nf_tables rules)"
		close(t.done)
		return t, nil
	}
	var err error
	if t.index, err = l.indexRules(ctx); err != nil {
		return nil, err
	}
	path, err := l.stage("egresslab-trace.nft", []byte(traceRuleset(dsts)))
	if err != nil {
		return nil, err
	}
	if out, err := combinedOutput(l.Command(ctx, "nft", "-f", path)); err != nil {
		return nil, fmt.Errorf("install the trace table in lab %s: %v: %s", l.cfg.Name, err, out)
	}
	t.cmd = l.Command(context.WithoutCancel(ctx), "nft", "-a", "monitor", "trace")
	if t.stdout, err = t.cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if err := t.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nft monitor trace in lab %s: %w", l.cfg.Name, err)
	}
	go t.read()
	// The monitor prints nothing when it starts listening; it listens once
	// it prints a marker. Markers sent before that are lost, so they go out
	// again, every few milliseconds, until one comes back.
	if err := t.sync(ctx, 5*time.Millisecond); err != nil {
		t.Stop()
		return nil, err
	}
	return t, nil
}

func traceRuleset(dsts []netip.AddrPort) string {
	var v4, v6 []string
	for _, d := range dsts {
		if d.Addr().Is4() {
			v4 = append(v4, fmt.Sprintf("%s . %d", d.Addr(), d.Port()))
		} else {
			v6 = append(v6, fmt.Sprintf("%s . %d", d.Addr(), d.Port()))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", traceTable)
	fmt.Fprintf(&b, "\tset dst4 { type ipv4_addr . inet_service; %s}\n", elements(v4))
	fmt.Fprintf(&b, "\tset dst6 { type ipv6_addr . inet_service; %s}\n", elements(v6))
	const request = "tcp flags & (syn|ack) == syn"
	for _, hook := range []string{"output", "prerouting"} {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority -2147483648; policy accept;\n", hook, hook)
		if hook == "output" {
			fmt.Fprintf(&b, "\t\tip daddr %s udp dport %d meta nftrace set 1 drop\n", markerDst.Addr(), markerDst.Port())
		}
		// A probe to an IPv6 neighbour needs neighbour discovery first.
		b.WriteString("\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } meta nftrace set 1\n")
		for _, fam := range []string{"ip", "ip6"} {
			set := map[string]string{"ip": "@dst4", "ip6": "@dst6"}[fam]
			fmt.Fprintf(&b, "\t\t%s daddr . tcp dport %s %s meta nftrace set 1\n", fam, set, request)
			for _, answer := range []string{"tcp flags & (syn|ack) == syn|ack", "tcp flags & rst == rst"} {
				fmt.Fprintf(&b, "\t\t%s saddr . tcp sport %s %s meta nftrace set 1\n", fam, set, answer)
			}
			fmt.Fprintf(&b, "\t\t%s daddr . udp dport %s meta nftrace set 1\n", fam, set)
			fmt.Fprintf(&b, "\t\t%s saddr . udp sport %s meta nftrace set 1\n", fam, set)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func elements(es []string) string {
	if len(es) == 0 {
		return ""
	}
	return "elements = { " + strings.Join(es, ", ") + " }; "
}

var (
	traceLine   = regexp.MustCompile(`^trace id ([0-9a-f]+) (\S+) (\S+) (\S+) (packet|rule|policy|verdict)(?::)? ?(.*)$`)
	handleAndV  = regexp.MustCompile(`^(.*) # handle (\d+) \(verdict (\w+)[^)]*\)\s*$`)
	counterText = regexp.MustCompile(`counter packets \d+ bytes \d+`)
)

// read parses the monitor's lines until it exits.
func (t *Trace) read() {
	defer close(t.done)
	current := map[string]string{} // trace id -> the packet's "src>dst/proto"
	sc := bufio.NewScanner(t.stdout)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		m := traceLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		id, family, table, chain, kind, rest := m[1], m[2], m[3], m[4], m[5], strings.TrimSpace(m[6])
		if kind == "packet" {
			key, sport, isMarker := packetKey(rest)
			if strings.Contains(rest, "icmpv6 type nd-neighbor-") {
				key = ndKey
			}
			current[id] = key
			if isMarker {
				t.mu.Lock()
				if ch, ok := t.markers[sport]; ok {
					for p, c := range t.markers { // markers sent again share ch
						if c == ch {
							delete(t.markers, p)
						}
					}
					closeOnce(ch)
				}
				t.mu.Unlock()
			}
			continue
		}
		key := current[id]
		if key == "" || strings.HasPrefix(table, "egresslab_") {
			continue
		}
		ev := traceEvent{family: family, table: table, chain: chain}
		switch kind {
		case "rule":
			mm := handleAndV.FindStringSubmatch(rest)
			if mm == nil {
				continue
			}
			ev.text = strings.TrimSpace(counterText.ReplaceAllString(mm[1], "counter"))
			ev.handle, _ = strconv.Atoi(mm[2])
			ev.verdict = mm[3]
		case "policy":
			ev.policy, ev.verdict = true, strings.Fields(rest + " ?")[0]
		default:
			continue
		}
		t.mu.Lock()
		t.events[key] = append(t.events[key], ev)
		t.mu.Unlock()
	}
	t.mu.Lock()
	t.readErr = sc.Err()
	t.mu.Unlock()
}

// packetKey reads "ip saddr A ip daddr B ... tcp sport P tcp dport Q".
func packetKey(s string) (key string, sport uint16, marker bool) {
	f := strings.Fields(s)
	var src, dst, proto string
	var sp, dp string
	for i := 0; i+2 < len(f); i++ {
		switch {
		case (f[i] == "ip" || f[i] == "ip6") && f[i+1] == "saddr":
			src = f[i+2]
		case (f[i] == "ip" || f[i] == "ip6") && f[i+1] == "daddr":
			dst = f[i+2]
		case (f[i] == "tcp" || f[i] == "udp") && f[i+1] == "sport":
			proto, sp = f[i], f[i+2]
		case (f[i] == "tcp" || f[i] == "udp") && f[i+1] == "dport":
			dp = f[i+2]
		}
	}
	a, err1 := netip.ParseAddr(src)
	b, err2 := netip.ParseAddr(dst)
	s1, err3 := strconv.ParseUint(sp, 10, 16)
	d1, err4 := strconv.ParseUint(dp, 10, 16)
	if errors.Join(err1, err2, err3, err4) != nil {
		return "", 0, false
	}
	from, to := netip.AddrPortFrom(a, uint16(s1)), netip.AddrPortFrom(b, uint16(d1))
	return flowKey(from, to, proto), uint16(s1), to == markerDst && proto == "udp"
}

// ndKey collects the traces of neighbour discovery, which no flow owns.
const ndKey = "neighbour-discovery"

func flowKey(src, dst netip.AddrPort, proto string) string {
	return src.String() + ">" + dst.String() + "/" + proto
}

// sync sends a marker and waits until the monitor has printed it; with a
// nonzero resend, it sends a new marker that often until one is printed.
func (t *Trace) sync(ctx context.Context, resend time.Duration) error {
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	var tick <-chan time.Time
	if resend > 0 {
		ticker := time.NewTicker(resend)
		defer ticker.Stop()
		tick = ticker.C
	}
	seen := make(chan struct{})
	for {
		if err := t.sendMarker(seen); err != nil {
			return err
		}
		select {
		case <-seen:
			return nil
		case <-tick:
			continue
		case <-t.done:
			return fmt.Errorf("nft monitor trace in lab %s ended before its marker came", t.lab.cfg.Name)
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return fmt.Errorf("nft monitor trace in lab %s did not print its marker within 10s", t.lab.cfg.Name)
		}
	}
}

// closeOnce closes ch unless it is closed: a marker sent again may be
// printed after the first one already was.
func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// sendMarker sends one marker datagram; seen is closed when it is printed.
func (t *Trace) sendMarker(seen chan struct{}) error {
	var port uint16
	err := t.lab.inLab(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return err
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return err
		}
		port = uint16(sa.(*unix.SockaddrInet4).Port)
		t.mu.Lock()
		t.markers[port] = seen
		t.mu.Unlock()

		// Our own trace chain drops it (EPERM): that is the point.
		_ = unix.Sendto(fd, []byte("egresslab trace marker"), 0, &unix.SockaddrInet4{Addr: markerDst.Addr().As4(), Port: int(markerDst.Port())})
		return nil
	})
	if err != nil {
		return fmt.Errorf("send a trace marker in lab %s: %w", t.lab.cfg.Name, err)
	}
	return nil
}

// Stop reads every trace up to now and ends the monitor. Decide works after.
func (t *Trace) Stop() error {
	if t.cmd == nil {
		return nil
	}
	err := t.sync(context.Background(), 0)
	_ = t.cmd.Process.Kill()
	_ = t.cmd.Wait()
	<-t.done
	t.cmd = nil
	return err
}
