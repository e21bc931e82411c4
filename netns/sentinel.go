package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The sentinel is the lab's own nft table, added after the candidate's. Its
// main chain hooks the very end of the egress path (postrouting, the highest
// priority there is): a packet that gets there has passed every rule of the
// candidate, nft and iptables flavours alike; one the candidate drops never
// does. Because a SYN or datagram that OUTPUT accepts passes postrouting
// before connect() or sendto() returns, the sentinel tells "dropped" from
// "still on its way" at once, without a timeout.
//
// It records probe ports (unique within a lab): the source port of what a
// probe sends, the destination port of what comes back to it. Sets:
//
//	syn, sent  a probe's TCP SYN / UDP datagram passed the end of egress
//	err        a REJECT's TCP reset or ICMP unreachable to a probe passed it
//	           (the port inside an ICMP error sits at a fixed offset: probes
//	           send no IP options)
//	req_arr    a probe's packet to a loopback listener entered prerouting
//	req_in     ... and passed the end of INPUT
//	rep_gen    a loopback listener's reply entered OUTPUT
//	rep_out    ... and passed the end of egress
//	rep_arr    a reply (from lo or the uplink) entered prerouting
//	rep_in     ... and passed the end of INPUT
//
// A packet seen entering the candidate's rules and never seen leaving them
// was dropped by them: that decides a return-path drop without waiting out
// the backstop.
const (
	sentinelTable = "egresslab_sentinel"
	probePorts    = "1024-32767" // probePortFirst-probePortLast
)

// sentinelChains names each chain's hook, priority and rule count, which
// CheckSentinel verifies.
var sentinelChains = map[string]struct {
	hook     *nftables.ChainHook
	priority int64
	rules    int
}{
	"post":      {nftables.ChainHookPostrouting, math.MaxInt32, 7},
	"first_out": {nftables.ChainHookOutput, math.MinInt32, 1},
	"first_in":  {nftables.ChainHookPrerouting, math.MinInt32, 2},
	"last_in":   {nftables.ChainHookInput, math.MaxInt32, 2},
}

var sentinelSets = []string{"syn", "sent", "err", "req_arr", "req_in", "rep_gen", "rep_out", "rep_arr", "rep_in"}

var sentinelRuleset = fmt.Sprintf(`table inet %[1]s {
	set syn { type inet_service; flags dynamic; }
	set sent { type inet_service; flags dynamic; }
	set err { type inet_service; flags dynamic; }
	set req_arr { type inet_service; flags dynamic; }
	set req_in { type inet_service; flags dynamic; }
	set rep_gen { type inet_service; flags dynamic; }
	set rep_out { type inet_service; flags dynamic; }
	set rep_arr { type inet_service; flags dynamic; }
	set rep_in { type inet_service; flags dynamic; }
	chain post {
		type filter hook postrouting priority %[2]d; policy accept;
		tcp flags & (syn|ack) == syn add @syn { tcp sport }
		meta l4proto udp add @sent { udp sport }
		tcp flags & rst == rst add @err { tcp dport }
		icmp type destination-unreachable add @err { @th,224,16 }
		icmpv6 type destination-unreachable add @err { @th,384,16 }
		tcp dport %[4]s add @rep_out { tcp dport }
		udp dport %[4]s add @rep_out { udp dport }
	}
	chain first_out {
		type filter hook output priority %[3]d; policy accept;
		meta l4proto { tcp, udp } th dport %[4]s add @rep_gen { th dport }
	}
	chain first_in {
		type filter hook prerouting priority %[3]d; policy accept;
		meta l4proto { tcp, udp } th sport %[4]s add @req_arr { th sport }
		meta l4proto { tcp, udp } th dport %[4]s add @rep_arr { th dport }
	}
	chain last_in {
		type filter hook input priority %[2]d; policy accept;
		meta l4proto { tcp, udp } th sport %[4]s add @req_in { th sport }
		meta l4proto { tcp, udp } th dport %[4]s add @rep_in { th dport }
	}
}
`, sentinelTable, math.MaxInt32, math.MinInt32, probePorts)

type sentinel struct {
	mu    sync.Mutex
	conn  *nftables.Conn
	table *nftables.Table
	sets  map[string]*nftables.Set
	// query asks for single elements: a plain netlink GETSETELEM is a read,
	// unlike a delete, which would be a whole (and, when the element is
	// missing, slow to abort) nftables transaction.
	query *netlink.Conn
}

// InstallSentinel adds the lab's sentinel. Call it after the candidate ruleset
// has loaded (which may flush everything), and CheckSentinel before trusting
// a verdict.
func (l *Lab) InstallSentinel(ctx context.Context) error {
	cmd := l.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = bytes.NewBufferString(sentinelRuleset)
	if out, err := combinedOutput(cmd); err != nil {
		return fmt.Errorf("install the drop sentinel in lab %s: nft: %s: %w", l.cfg.Name, bytes.TrimSpace(out), err)
	}
	conn, err := nftables.New(nftables.WithNetNSFd(l.labFD), nftables.AsLasting())
	if err != nil {
		return fmt.Errorf("nftables netlink in lab %s: %w", l.cfg.Name, err)
	}
	s := &sentinel{conn: conn, table: &nftables.Table{Name: sentinelTable, Family: nftables.TableFamilyINet}, sets: map[string]*nftables.Set{}}
	l.sentinel = s
	for _, name := range sentinelSets {
		set, err := conn.GetSetByName(s.table, name)
		if err != nil {
			return fmt.Errorf("find the sentinel's set %s in lab %s: %w", name, l.cfg.Name, err)
		}
		s.sets[name] = set
	}
	if s.query, err = netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: l.labFD}); err != nil {
		return fmt.Errorf("netfilter netlink in lab %s: %w", l.cfg.Name, err)
	}
	l.ports.onWrap = s.reset
	return l.CheckSentinel()
}

// CheckSentinel verifies that the sentinel is still in place and unchanged: a
// candidate script could have removed or altered it, and then "never got
// there" would no longer mean "dropped".
func (l *Lab) CheckSentinel() error {
	s := l.sentinel
	if s == nil {
		return errors.New("the drop sentinel is not installed")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	chains, err := s.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("list chains in lab %s: %w", l.cfg.Name, err)
	}
	found := 0
	for _, c := range chains {
		want, ok := sentinelChains[c.Name]
		if c.Table.Name != sentinelTable || !ok {
			continue
		}
		if c.Hooknum == nil || *c.Hooknum != *want.hook ||
			c.Priority == nil || int64(*c.Priority) != want.priority ||
			c.Policy == nil || *c.Policy != nftables.ChainPolicyAccept {
			return fmt.Errorf("the drop sentinel in lab %s was altered: chain %s's hook, priority or policy", l.cfg.Name, c.Name)
		}
		rules, err := s.conn.GetRules(s.table, c)
		if err != nil {
			return fmt.Errorf("list the sentinel's rules in lab %s: %w", l.cfg.Name, err)
		}
		if len(rules) != want.rules {
			return fmt.Errorf("the drop sentinel in lab %s was altered: chain %s has %d rules, want %d", l.cfg.Name, c.Name, len(rules), want.rules)
		}
		found++
	}
	if found != len(sentinelChains) {
		return fmt.Errorf("the drop sentinel in lab %s is gone or incomplete: the candidate removed table inet %s or a chain of it", l.cfg.Name, sentinelTable)
	}
	return nil
}

// seen reports whether port is an element of the named set. Probe ports are
// unique until they wrap, and the sets are emptied when they do, so an
// element is never left over from another probe.
func (s *sentinel) seen(set string, port uint16) (bool, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NFTA_SET_ELEM_LIST_TABLE, sentinelTable)
	ae.String(unix.NFTA_SET_ELEM_LIST_SET, set)
	ae.Nested(unix.NFTA_SET_ELEM_LIST_ELEMENTS, func(ae *netlink.AttributeEncoder) error {
		ae.Nested(unix.NFTA_LIST_ELEM, func(ae *netlink.AttributeEncoder) error {
			ae.Nested(unix.NFTA_SET_ELEM_KEY, func(ae *netlink.AttributeEncoder) error {
				ae.Bytes(unix.NFTA_DATA_VALUE, []byte{byte(port >> 8), byte(port)})
				return nil
			})
			return nil
		})
		return nil
	})
	attrs, err := ae.Encode()
	if err != nil {
		return false, err
	}
	// nfgenmsg: family inet, version 0, resource id 0.
	data := append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...)
	_, err = s.query.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETSETELEM),
			Flags: netlink.Request,
		},
		Data: data,
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return false, nil
	default:
		return false, fmt.Errorf("read the drop sentinel: %w", err)
	}
}

// reset forgets everything the sentinel saw; called when probe ports wrap.
func (s *sentinel) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, set := range s.sets {
		s.conn.FlushSet(set)
	}
	_ = s.conn.Flush()
}

func (s *sentinel) close() {
	_ = s.conn.CloseLasting()
	if s.query != nil {
		s.query.Close()
	}
}

// Left reports whether the probe's first packet from port (a TCP SYN, or a
// UDP datagram) passed every egress rule and left towards its destination.
func (l *Lab) Left(proto string, port uint16) (bool, error) {
	if l.sentinel == nil {
		return false, errors.New("the drop sentinel is not installed")
	}
	if proto == "udp" {
		return l.sentinel.seen("sent", port)
	}
	return l.sentinel.seen("syn", port)
}

// Answered reports whether the lab's rules sent back a TCP reset or an ICMP
// unreachable addressed to port, and let it through: a REJECT's answer.
func (l *Lab) Answered(port uint16) (bool, error) {
	if l.sentinel == nil {
		return false, errors.New("the drop sentinel is not installed")
	}
	return l.sentinel.seen("err", port)
}

// WhereDropped tells, from the sentinel's evidence, where the lab's rules
// dropped the traffic of a probe whose first packet left (port is the
// probe's): its packet on the way into a loopback listener, the listener's
// reply on its way out, or a reply on its way in. It returns "" when there is
// no such evidence (yet).
func (l *Lab) WhereDropped(port uint16) (string, error) {
	if l.sentinel == nil {
		return "", errors.New("the drop sentinel is not installed")
	}
	for _, step := range []struct{ entered, passed, where string }{
		{"req_arr", "req_in", "the lab's INPUT rules dropped it on its way into the loopback listener"},
		{"rep_gen", "rep_out", "the listener answered, and the lab's OUTPUT rules dropped the answer"},
		{"rep_arr", "rep_in", "the answer came back, and the lab's INPUT rules dropped it"},
	} {
		entered, err := l.sentinel.seen(step.entered, port)
		if err != nil || !entered {
			if err != nil {
				return "", err
			}
			continue
		}
		passed, err := l.sentinel.seen(step.passed, port)
		if err != nil {
			return "", err
		}
		if !passed {
			return step.where, nil
		}
	}
	return "", nil
}
