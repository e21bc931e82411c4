package sentinel

import (
	"errors"
	"fmt"
	"sync"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	vnetlink "github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/egresslab/egresslab/netns"
)

// The sentinel is the lab's own nft table, added after the candidate's. Its
// main chain hooks the very end of the egress path (postrouting, the highest
// priority there is): a packet that gets there has passed every rule of the
// candidate, nft and iptables flavours alike; one the candidate drops never
// does. Because a SYN or datagram that OUTPUT accepts passes postrouting
// before connect() or sendto() returns, the sentinel tells "dropped" from
// "still on its way" at once, without a timeout.
//
// Evidence is keyed by a probe's whole flow — its own address and port, the
// destination's address and port, and the protocol — so a source port the
// kernel hands out again later never inherits an earlier probe's evidence.
// Each set exists once per family (NAME4, NAME6):
//
//	out      a probe's TCP SYN / UDP datagram passed the end of egress
//	rst      a TCP reset addressed to a probe passed it (a REJECT's answer)
//	icmp_tcp, icmp_udp  an ICMP unreachable about a probe's packet passed it (the inner
//	         header names the flow; probes send no IP options)
//	req_arr  a probe's packet entered prerouting (on its way to a loopback listener)
//	req_in   ... and passed the end of INPUT
//	rep_gen  a loopback listener's answer (SYN-ACK, UDP reply) entered OUTPUT
//	rep_out  ... and passed the end of egress
//	rep_arr  an answer (from lo or the uplink) entered prerouting
//	rep_in   ... and passed the end of INPUT
//
// and, keyed by the target address, neighbour discovery (ICMPv6 135 and 136)
// in both directions: the lab soliciting its next hop (ns_gen, ns_out, na_arr,
// na_in) and the router soliciting the lab (rns_arr, rns_in, rna_gen, rna_out).
//
// A packet seen entering the candidate's rules and never seen leaving them
// was dropped by them: that decides a return-path or neighbour-discovery drop
// without waiting out the backstop. Flow elements expire on their own (the
// sets' timeout) and a probe removes its own as soon as it has its verdict;
// nothing is ever flushed while probes run.
const sentinelTable = "egresslab_sentinel"

// flowSets are the per-flow evidence sets, without their family suffix.
var flowSets = []string{"out", "rst", "req_arr", "req_in", "rep_gen", "rep_out", "rep_arr", "rep_in"}

// icmpSets hold the flows that ICMP errors name, one set per inner protocol:
// nft 1.0.6 cannot list a set whose key is five raw fields (it aborts, and
// `nft list ruleset` with it), so the protocol picks the set instead.
var icmpSets = map[string]string{"tcp": "icmp_tcp", "udp": "icmp_udp"}

// ndSets are the neighbour-discovery sets, keyed by target address.
var ndSets = []string{"ns_gen", "ns_out", "na_arr", "na_in", "rns_arr", "rns_in", "rna_gen", "rna_out"}

// Sentinel is the lab's drop sentinel, installed: the evidence of where the
// candidate's rules let each probe's packets go.
type Sentinel struct {
	lab   *netns.Lab
	mu    sync.Mutex
	conn  *nftables.Conn
	table *nftables.Table
	// query asks for single elements: a plain netlink GETSETELEM is a read,
	// not a transaction (elemquery.go). forget removes flows' elements, in
	// batches.
	query   *elemQueries
	forget  *netlink.Conn
	forgets forgetQueue // forget.go
	// host reads the lab's links and routes for HostRefusal: one handle
	// for the lab's life, not one per question.
	host *vnetlink.Handle
}

// Queue adds the sentinel's table to c's batch; nothing is sent until the
// caller flushes c, with whatever else it queued (the trace table), in one
// transaction. Call it after the candidate ruleset has loaded (which may
// flush everything).
func Queue(c *nftables.Conn) error { return buildSentinel(c) }

// PreMade is the tampering a failed install means when the candidate made a
// table of the sentinel's name before the lab did: the lab never merges its
// evidence into a table the candidate could have filled.
func PreMade(lab *netns.Lab, flushErr error) error {
	if !errors.Is(flushErr, unix.EEXIST) {
		return nil
	}
	return &netns.TamperError{Lab: lab.Name(), What: "the drop sentinel (the candidate made a table inet " + sentinelTable + " before the lab did)"}
}

// Start takes up the sentinel the caller's flushed batch installed in lab,
// and checks it. It closes with the lab.
func Start(lab *netns.Lab) (*Sentinel, error) {
	conn, err := nftables.New(nftables.WithNetNSFd(lab.NetNSFD()), nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("nftables netlink in lab %s: %w", lab.Name(), err)
	}
	s := &Sentinel{lab: lab, conn: conn, table: &nftables.Table{Name: sentinelTable, Family: nftables.TableFamilyINet}}
	lab.OnClose(func() error { s.close(); return nil })
	s.query = newElemQueries(lab)
	if s.forget, err = netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: lab.NetNSFD()}); err != nil {
		return nil, fmt.Errorf("netfilter netlink in lab %s: %w", lab.Name(), err)
	}
	if s.host, err = vnetlink.NewHandleAt(vnetns.NsHandle(lab.NetNSFD())); err != nil {
		return nil, fmt.Errorf("rtnetlink in lab %s: %w", lab.Name(), err)
	}
	if err := installAfterNAT(lab); err != nil {
		return nil, err
	}
	s.forgets.init()
	go s.forgets.run(s)
	return s, s.Check()
}

// Check verifies that the sentinel is still in place and unchanged: a
// candidate script could have removed or altered it, and then "never got
// there" would no longer mean "dropped". A change is a *netns.TamperError.
func (s *Sentinel) Check() error {
	if s == nil {
		return errors.New("the drop sentinel is not installed")
	}
	l := s.lab
	s.mu.Lock()
	defer s.mu.Unlock()
	chains, err := s.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("list chains in lab %s: %w", l.Name(), err)
	}
	// Each chain's hook, priority and rule count, the forward path's too in
	// a lab with networks.
	type want struct {
		hook     nftables.ChainHook
		priority int32
		rules    int
	}
	wanted := map[string]want{}
	_, spec := sentinelSpec()
	for _, c := range spec {
		wanted[c.name] = want{*c.hook, c.priority, len(c.rules)}
	}
	post := wanted["post"]
	post.rules += natRules
	wanted["post"] = post
	if l.Forwarding() {
		hooks := map[string]nftables.ChainHook{"forward": *nftables.ChainHookForward, "postrouting": *nftables.ChainHookPostrouting}
		for _, c := range forwardChainSpec() {
			w := want{hooks[c.hook], c.priority, len(c.rules)}
			if c.name == "fwd_post" {
				w.rules += leftAsRules
			}
			wanted[c.name] = w
		}
	}
	found := 0
	for _, c := range chains {
		if c.Table.Name != sentinelTable {
			continue
		}
		want, ok := wanted[c.Name]
		if !ok {
			return &netns.TamperError{Lab: l.Name(), What: fmt.Sprintf("the drop sentinel (a chain %s that is not the lab's)", c.Name)}
		}
		if c.Hooknum == nil || *c.Hooknum != want.hook ||
			c.Priority == nil || int32(*c.Priority) != want.priority ||
			c.Policy == nil || *c.Policy != nftables.ChainPolicyAccept {
			return &netns.TamperError{Lab: l.Name(), What: fmt.Sprintf("the drop sentinel's chain %s (its hook, priority or policy)", c.Name)}
		}
		rules, err := s.countRules(c.Name)
		if err != nil {
			return fmt.Errorf("list the sentinel's rules in lab %s: %w", l.Name(), err)
		}
		if rules != want.rules {
			return &netns.TamperError{Lab: l.Name(), What: fmt.Sprintf("the drop sentinel's chain %s (%d rules, want %d)", c.Name, rules, want.rules)}
		}
		found++
	}
	if found != len(wanted) {
		return &netns.TamperError{Lab: l.Name(), What: "the drop sentinel (table inet " + sentinelTable + " or a chain of it is gone)"}
	}
	return nil
}

// countRules is how many rules the sentinel's chain holds: a GETRULE dump,
// counted (the netlink library cannot parse a ct expression of a given
// direction back, which the kernel dumps as one byte). Under s.mu.
func (s *Sentinel) countRules(chain string) (int, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NFTA_RULE_TABLE, sentinelTable)
	ae.String(unix.NFTA_RULE_CHAIN, chain)
	attrs, err := ae.Encode()
	if err != nil {
		return 0, err
	}
	msgs, err := s.forget.Execute(netlink.Message{
		Header: netlink.Header{Type: nftMsg(unix.NFT_MSG_GETRULE), Flags: netlink.Request | netlink.Dump},
		Data:   append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...),
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range msgs {
		if m.Header.Type == nftMsg(unix.NFT_MSG_NEWRULE) {
			n++
		}
	}
	return n, nil
}

// has reports whether key is an element of the named set.
func (s *Sentinel) has(set string, key []byte) (bool, error) {
	answers, err := s.query.has(elemReq{set, key})
	if err != nil {
		return false, err
	}
	return answers[0], nil
}

// nftMsgDestroySetElem deletes an element if it is there and is no error if
// it is not (Linux 6.3 and later): a probe removes its flow from every set
// without asking first which ones saw it.
const nftMsgDestroySetElem = 30

// removeBatch takes each flow's key out of its sets, in one transaction.
// Only the forgetter calls it.
func (s *Sentinel) removeBatch(flows []forgetRequest) error {
	batch := []netlink.Message{{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES},
	}}
	for _, f := range flows {
		for _, e := range f.elems {
			batch = append(batch, netlink.Message{
				Header: netlink.Header{Type: nftMsg(nftMsgDestroySetElem), Flags: netlink.Request},
				Data:   setElemMsg(e.set, e.key),
			})
		}
	}
	batch = append(batch, netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_END), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES},
	})
	// Only the last destroy is acknowledged: errors come back for any
	// message, and the last's ack says the kernel went through them all.
	batch[len(batch)-2].Header.Flags |= netlink.Acknowledge
	s.mu.Lock()
	defer s.mu.Unlock()
	sent, err := s.forget.SendMessages(batch)
	if err != nil {
		return fmt.Errorf("remove probes' evidence from the drop sentinel: %w", err)
	}
	last := sent[len(sent)-2].Header.Sequence
	for {
		msgs, err := s.forget.Receive()
		if err != nil {
			return fmt.Errorf("remove probes' evidence from the drop sentinel: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Sequence == last {
				return nil
			}
		}
	}
}

func nftMsg(t int) netlink.HeaderType {
	return netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | t)
}

// setElemMsg is an nfgenmsg (family inet) with one element of one set.
func setElemMsg(set string, key []byte) []byte {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NFTA_SET_ELEM_LIST_TABLE, sentinelTable)
	ae.String(unix.NFTA_SET_ELEM_LIST_SET, set)
	ae.Nested(unix.NFTA_SET_ELEM_LIST_ELEMENTS, func(ae *netlink.AttributeEncoder) error {
		ae.Nested(unix.NFTA_LIST_ELEM, func(ae *netlink.AttributeEncoder) error {
			ae.Nested(unix.NFTA_SET_ELEM_KEY, func(ae *netlink.AttributeEncoder) error {
				ae.Bytes(unix.NFTA_DATA_VALUE, key)
				return nil
			})
			return nil
		})
		return nil
	})
	attrs, _ := ae.Encode() // only fails on an encoder callback's error, and ours return none
	return append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...)
}

func (s *Sentinel) close() {
	if s.host != nil {
		s.host.Close()
	}
	if s.forgets.done != nil {
		s.forgets.close()
	}
	_ = s.conn.CloseLasting()
	if s.query != nil {
		s.query.close()
	}
	if s.forget != nil {
		s.forget.Close()
	}
}
