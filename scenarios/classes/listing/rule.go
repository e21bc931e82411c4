package listing

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/egresslab/egresslab/scenarios/classes/space"
)

// direction is which way through the lab a chain's packets go: a probe's
// packets leave through output and postrouting, its answers come in through
// prerouting and input. On the way in, the answer's source is the probe's
// destination: source address and port are the dimensions there.
type direction uint8

const (
	dirOut direction = 1 << iota
	dirIn
	dirFwd       // a client's packet forwarded by the lab host (forward.go)
	dirFwdAnswer // the answer to it

	dirForwarded = dirFwd | dirFwdAnswer
)

// directions are the ways a rule is read, one Rule each.
var directions = []direction{dirOut, dirIn, dirFwd, dirFwdAnswer}

// The kernel picks a client's source port from net.ipv4.ip_local_port_range
// (32768-60999 unless changed): a rule on that side of the port cannot be
// split, since the probe does not choose the port. A rule whose ports all lie
// outside the range can never meet a probe's packet there.
var ephemeral = space.Set{{First: space.NumPoint(32768), Last: space.NumPoint(60999)}}

// ruleBuilder collects one rule's matches; the parsers of each listing feed
// it, so the meaning of a match lives in one place.
type ruleBuilder struct {
	dir   direction
	rule  Rule
	notes []string
}

func newRuleBuilder(ref RuleRef, fams space.Family, dir direction) *ruleBuilder {
	return &ruleBuilder{dir: dir, rule: Rule{Ref: ref, Families: fams, Protos: space.TCP | space.UDP}}
}

func (b *ruleBuilder) unsplit(what string) { b.rule.Unsplit = append(b.rule.Unsplit, what) }
func (b *ruleBuilder) note(what string)    { b.notes = append(b.notes, what) }

// never marks the rule as one no probe can meet; why is noted.
func (b *ruleBuilder) never(why string) {
	b.rule.never = true
	b.note(why)
}

// protos restricts the rule to a protocol by its name or number.
func (b *ruleBuilder) protos(name string, negate bool) {
	var p space.Proto
	switch strings.ToLower(name) {
	case "tcp", "6":
		p = space.TCP
	case "udp", "17":
		p = space.UDP
	case "all", "0":
		p = space.TCP | space.UDP
	default:
		p = 0
	}
	if negate {
		p = (space.TCP | space.UDP) &^ p
	}
	b.rule.Protos &= p
	if b.rule.Protos == 0 {
		b.never("protocol " + name + " (not probed)")
	}
}

func (b *ruleBuilder) families(f space.Family) {
	b.rule.Families &= f
	if b.rule.Families == 0 {
		b.rule.never = true
	}
}

func and(have *space.Set, s space.Set) *space.Set {
	if have != nil {
		s = have.Intersect(s)
	}
	return &s
}

func maybeNegate(s space.Set, whole space.Span, negate bool) space.Set {
	s = s.Clip(whole)
	if negate {
		return s.Complement(whole)
	}
	return s
}

// uids, gids, ports: a match on that dimension.
func (b *ruleBuilder) uids(s space.Set, negate bool) { b.owner(&b.rule.UID, s, negate) }

func (b *ruleBuilder) gids(s space.Set, negate bool) { b.owner(&b.rule.GID, s, negate) }

// owner is a match on the socket's owner (dim: its uid or gid), which a
// forwarded packet has none of and an answer's is the lab's, not a probe's.
func (b *ruleBuilder) owner(dim **space.Set, s space.Set, negate bool) {
	if b.dir&dirForwarded != 0 {
		b.noSocket(negate, "owner")
		return
	}
	if b.dir == dirIn {
		b.unsplit("socket owner of an answer")
		return
	}
	*dim = and(*dim, maybeNegate(s, space.WholeID(), negate))
}

// port is a match on the destination port (dst true) or the source port of
// a packet going b's way.
func (b *ruleBuilder) port(s space.Set, negate, dst bool, what string) {
	theirs := dst == b.dir.outward() // the far end's port: the probe's destination
	if !theirs {
		matched := maybeNegate(s, space.Span{First: space.NumPoint(0), Last: space.NumPoint(space.MaxPort)}, negate)
		if len(matched.Intersect(ephemeral)) > 0 {
			b.unsplit(what + " (the kernel's choice of source port)")
		} else {
			b.never(what + " outside the ephemeral ports")
		}
		return
	}
	b.rule.Port = and(b.rule.Port, maybeNegate(s, space.WholePort(), negate))
}

// addrs is a match on the destination (dst true) or source address of a
// packet going b's way, in family f.
func (b *ruleBuilder) addrs(f space.Family, s space.Set, negate, dst bool, what string) {
	b.families(f)
	theirs := dst == b.dir.outward()
	if !theirs && b.dir&dirForwarded != 0 {
		b.rule.Src = and(b.rule.Src, maybeNegate(s, space.WholeAddr(f), negate))
		return
	}
	if !theirs {
		b.note(what + " (the lab's own address)")
		return
	}
	b.rule.Addr = and(b.rule.Addr, maybeNegate(s, space.WholeAddr(f), negate))
}

func (b *ruleBuilder) iface(what string) { b.note(what) }

// done gives the rule, or false when no probe can meet it.
func (b *ruleBuilder) done() (Rule, []Note, bool) {
	var notes []Note
	for _, n := range b.notes {
		notes = append(notes, Note{What: n, Rule: b.rule.Ref})
	}
	return b.rule, notes, !b.rule.never
}

// parseIDRange reads "107" or "1000-60000".
func parseIDRange(s string) (space.Set, error) {
	a, z, isRange := strings.Cut(s, "-")
	first, err := strconv.ParseUint(a, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("id %q: want a number or a range A-B", s)
	}
	last := first
	if isRange {
		if last, err = strconv.ParseUint(z, 10, 32); err != nil || last < first {
			return nil, fmt.Errorf("id range %q: want A-B with A <= B", s)
		}
	}
	return space.Set{{First: space.NumPoint(first), Last: space.NumPoint(last)}}, nil
}

// parsePortRange reads "25", "1000:2000" or "1000-2000".
func parsePortRange(s string) (space.Span, error) {
	a, z, isRange := strings.Cut(strings.ReplaceAll(s, "-", ":"), ":")
	first, err := strconv.ParseUint(a, 10, 16)
	if a == "" {
		first, err = 0, nil
	}
	if err != nil {
		return space.Span{}, fmt.Errorf("port %q: want a number or a range A:B", s)
	}
	last := first
	if isRange {
		last = space.MaxPort
		if z != "" {
			if last, err = strconv.ParseUint(z, 10, 16); err != nil || last < first {
				return space.Span{}, fmt.Errorf("port range %q: want A:B with A <= B", s)
			}
		}
	}
	return space.Span{First: space.NumPoint(first), Last: space.NumPoint(last)}, nil
}

// parseAddrOrPrefix reads "192.0.2.1", "10.0.0.0/8", "10.0.0.0/255.0.0.0".
func parseAddrOrPrefix(s string) (space.Family, space.Span, error) {
	addr, mask, hasMask := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return 0, space.Span{}, fmt.Errorf("address %q: %v", s, err)
	}
	f := space.IPv4
	width := 32
	if a.Is6() && !a.Is4In6() {
		f, width = space.IPv6, 128
	}
	bits := width
	if hasMask {
		if n, err := strconv.Atoi(mask); err == nil {
			bits = n
		} else if m, err := netip.ParseAddr(mask); err == nil {
			bits = 0
			for _, x := range m.AsSlice() {
				for i := 7; i >= 0 && x&(1<<i) != 0; i-- {
					bits++
				}
			}
		} else {
			return 0, space.Span{}, fmt.Errorf("address %q: bad mask", s)
		}
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return 0, space.Span{}, fmt.Errorf("address %q: %v", s, err)
	}
	return f, space.PrefixSpan(p), nil
}
