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

// The sentinel is the lab's own nft table, hooked at the very end of the
// egress path (postrouting, the highest priority there is). A packet that gets
// there has passed every rule of the candidate, nft and iptables flavours
// alike; one the candidate drops never does. Because a SYN or datagram that
// OUTPUT accepts passes postrouting before connect() or sendto() returns, the
// sentinel tells "dropped" from "still on its way" at once, without a timeout.
// It records source ports (probe ports are unique within a lab): TCP SYNs,
// UDP datagrams, and the RSTs and ICMP unreachables that REJECT rules send
// back to a probe port (the port inside an ICMP error sits at a fixed offset,
// as probes send no IP options).
const (
	sentinelTable = "egresslab_sentinel"
	sentinelChain = "post"
	sentinelRules = 5
)

var sentinelRuleset = fmt.Sprintf(`table inet %[1]s {
	set syn { type inet_service; flags dynamic; }
	set sent { type inet_service; flags dynamic; }
	set err { type inet_service; flags dynamic; }
	chain %[2]s {
		type filter hook postrouting priority %[3]d; policy accept;
		tcp flags & (syn|ack) == syn add @syn { tcp sport }
		meta l4proto udp add @sent { udp sport }
		tcp flags & rst == rst add @err { tcp dport }
		icmp type destination-unreachable add @err { @th,224,16 }
		icmpv6 type destination-unreachable add @err { @th,384,16 }
	}
}
`, sentinelTable, sentinelChain, math.MaxInt32)

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
	for _, name := range []string{"syn", "sent", "err"} {
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
	for _, c := range chains {
		if c.Table.Name != sentinelTable || c.Name != sentinelChain {
			continue
		}
		if c.Hooknum == nil || *c.Hooknum != *nftables.ChainHookPostrouting ||
			c.Priority == nil || int64(*c.Priority) != math.MaxInt32 ||
			c.Policy == nil || *c.Policy != nftables.ChainPolicyAccept {
			return fmt.Errorf("the drop sentinel in lab %s was altered (hook, priority or policy)", l.cfg.Name)
		}
		rules, err := s.conn.GetRules(s.table, c)
		if err != nil {
			return fmt.Errorf("list the sentinel's rules in lab %s: %w", l.cfg.Name, err)
		}
		if len(rules) != sentinelRules {
			return fmt.Errorf("the drop sentinel in lab %s was altered: %d rules, want %d", l.cfg.Name, len(rules), sentinelRules)
		}
		return nil
	}
	return fmt.Errorf("the drop sentinel in lab %s is gone: the candidate removed table inet %s", l.cfg.Name, sentinelTable)
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
