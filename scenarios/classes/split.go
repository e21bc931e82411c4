package classes

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/egresslab/egresslab/scenarios/classes/space"
)

// Splitting: per family and protocol, the cells are split one dimension at a
// time (port, address, uid, gid, in the order the rules favour), each split
// drawn only by the rules still
// able to match in that part of the space; a rule whose remaining
// dimensions are all decided no longer splits anything and is folded into
// the part's signature. Two parts of one split stay together when every rule
// that looks at that dimension matches both or neither. That keeps a ruleset
// whose rules each look at one dimension linear in its rules, not a product.

// The dimensions.
const (
	dimPort = iota
	dimAddr
	dimUID
	dimGID
	dims
)

var dimNames = [dims]string{"dport", "daddr", "uid", "gid"}

// DefaultMaxClasses bounds the classes Split makes before it gives up.
const DefaultMaxClasses = 1_000_000

// TooManyError says a ruleset splits into more classes than allowed.
type TooManyError struct{ Max int }

func (e *TooManyError) Error() string {
	return fmt.Sprintf("the ruleset splits into more than %d classes", e.Max)
}

// signature identifies the set of rules that match a cell: the XOR of a
// random 128-bit value per rule.
type signature struct{ a, b uint64 }

func (s signature) xor(t signature) signature { return signature{s.a ^ t.a, s.b ^ t.b} }

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// matched is a persistent list of the rules with unsplit matches or notes
// that match a part: shared by every part below where they were folded.
type matched struct {
	rule int32
	next *matched
}

type leaf struct {
	family Family
	proto  Proto
	box    [dims]space.Set
	sig    signature
	rules  *matched
}

type splitter struct {
	rules  []Rule
	hashes []signature
	family Family
	proto  Proto
	leaves []leaf
	max    int
	// neutral caches groupsNeutral per hint user: it reads every rule, and
	// every class asks it.
	neutral map[int]bool
	// forward: a split of forwarded traffic, whose uid dimension holds the
	// client's source address (forward.go).
	forward bool
}

func (s *splitter) whole(d int) space.Span {
	if s.forward && d == dimSrc {
		return space.WholeAddr(s.family)
	}
	switch d {
	case dimPort:
		return space.WholePort()
	case dimAddr:
		return space.WholeAddr(s.family)
	}
	return space.WholeID()
}

func (s *splitter) dimSet(r int32, d int) *space.Set {
	x := &s.rules[r]
	switch d {
	case dimPort:
		return x.Port
	case dimAddr:
		return x.Addr
	case dimUID:
		return x.UID
	}
	return x.GID
}

// node splits the part box, which rules (every one touching a dimension of
// remaining) can still match, on the dimensions of remaining: first the one
// most of them look at, so that rules on that dimension alone are decided
// once, not again in every part another dimension makes.
func (s *splitter) node(remaining uint8, rules []int32, box [dims]space.Set, sig signature, m *matched) error {
	// fold the rules that decide nothing in what remains
	live := rules[:0:0]
	var count [dims]int
	for _, r := range rules {
		touches := false
		for e := 0; e < dims; e++ {
			if remaining&(1<<e) != 0 && s.dimSet(r, e) != nil {
				touches = true
				count[e]++
			}
		}
		if touches {
			live = append(live, r)
			continue
		}
		sig = sig.xor(s.hashes[r])
		if x := s.rules[r]; len(x.Unsplit) > 0 || len(x.Notes) > 0 || x.SupplGroups {
			m = &matched{r, m}
		}
	}
	d := -1
	for e := 0; e < dims; e++ {
		if remaining&(1<<e) != 0 && (d < 0 || count[e] > count[d]) {
			d = e
		}
	}
	if d < 0 || count[d] == 0 {
		for e := 0; e < dims; e++ {
			if remaining&(1<<e) != 0 {
				box[e] = space.Set{s.whole(e)}
			}
		}
		if len(s.leaves) >= s.max {
			return &TooManyError{s.max}
		}
		s.leaves = append(s.leaves, leaf{s.family, s.proto, box, sig, m})
		return nil
	}
	rest := remaining &^ (1 << d)
	whole := s.whole(d)
	var touching, others []int32
	for _, r := range live {
		if st := s.dimSet(r, d); st != nil {
			touching = append(touching, r)
		} else {
			others = append(others, r)
		}
	}
	// the elementary intervals every touching rule's boundaries make
	points := []space.Point{whole.First}
	for _, r := range touching {
		for _, x := range *s.dimSet(r, d) {
			points = append(points, x.First)
			if x.Last != whole.Last {
				points = append(points, x.Last.Next())
			}
		}
	}
	slices.SortFunc(points, space.Point.Compare)
	points = slices.Compact(points)
	index := func(p space.Point) int {
		i, _ := slices.BinarySearchFunc(points, p, space.Point.Compare)
		return i
	}
	// each interval's signature over the touching rules: XOR differences
	diff := make([]signature, len(points)+1)
	type cover struct{ from, to int } // elementary intervals [from, to)
	covers := make([][]cover, len(touching))
	for k, r := range touching {
		for _, x := range *s.dimSet(r, d) {
			c := cover{index(x.First), len(points)}
			if x.Last != whole.Last {
				c.to = index(x.Last.Next())
			}
			diff[c.from] = diff[c.from].xor(s.hashes[r])
			diff[c.to] = diff[c.to].xor(s.hashes[r])
			covers[k] = append(covers[k], c)
		}
	}
	group := make([]int, len(points))
	groupOf := map[signature]int{}
	var reps []int // the first elementary interval of each group
	var acc signature
	for i := range points {
		acc = acc.xor(diff[i])
		g, ok := groupOf[acc]
		if !ok {
			g = len(reps)
			groupOf[acc] = g
			reps = append(reps, i)
		}
		group[i] = g
	}
	// which touching rules hold each group: those covering its first
	// interval (reps are ascending, so a cover's groups are a run of them)
	holders := make([][]int32, len(reps))
	for k, r := range touching {
		for _, c := range covers[k] {
			for j, _ := slices.BinarySearch(reps, c.from); j < len(reps) && reps[j] < c.to; j++ {
				holders[j] = append(holders[j], r)
			}
		}
	}
	spans := make([][]space.Span, len(reps))
	for i, p := range points {
		last := whole.Last
		if i+1 < len(points) {
			last = points[i+1].Prev()
		}
		g := group[i]
		if n := len(spans[g]); n > 0 && spans[g][n-1].Last.Next() == p {
			spans[g][n-1].Last = last
		} else {
			spans[g] = append(spans[g], space.Span{First: p, Last: last})
		}
	}
	for g := range reps {
		child := append(slices.Clip(others), slices.Compact(holders[g])...)
		box[d] = spans[g]
		if err := s.node(rest, child, box, sig, m); err != nil {
			return err
		}
	}
	return nil
}

// merge joins leaves with one signature that differ on one dimension only.
func merge(leaves []leaf) []leaf {
	for d := 0; d < dims; d++ {
		at := map[string]int{}
		var out []leaf
		var key []byte
		for _, l := range leaves {
			key = append(key[:0], byte(l.family), byte(l.proto))
			key = binary.LittleEndian.AppendUint64(key, l.sig.a)
			key = binary.LittleEndian.AppendUint64(key, l.sig.b)
			for e := 0; e < dims; e++ {
				if e == d {
					continue
				}
				key = binary.LittleEndian.AppendUint32(key, uint32(len(l.box[e])))
				for _, x := range l.box[e] {
					for _, v := range [4]uint64{x.First.Hi, x.First.Lo, x.Last.Hi, x.Last.Lo} {
						key = binary.LittleEndian.AppendUint64(key, v)
					}
				}
			}
			k := string(key)
			if i, ok := at[k]; ok {
				out[i].box[d] = space.Normalize(append(slices.Clone(out[i].box[d]), l.box[d]...))
				continue
			}
			at[k] = len(out)
			out = append(out, l)
		}
		leaves = out
	}
	return leaves
}

// Split splits the cells the ruleset can see into classes, and picks each
// class's representative, preferring the hints' values.
func Split(rs *Ruleset, hints Hints) ([]Class, error) {
	return SplitMax(rs, hints, DefaultMaxClasses)
}

// SplitMax is Split with a bound on the classes.
func SplitMax(rs *Ruleset, hints Hints, max int) ([]Class, error) {
	s := &splitter{rules: rs.Rules, max: max}
	s.hashes = make([]signature, len(rs.Rules))
	for i := range s.hashes {
		s.hashes[i] = signature{splitmix(uint64(2*i + 1)), splitmix(uint64(2*i + 2))}
	}
	for _, f := range []Family{IPv4, IPv6} {
		for _, p := range []Proto{TCP, UDP} {
			s.family, s.proto = f, p
			var rules []int32
			for i, r := range rs.Rules {
				if r.Families&f != 0 && r.Protos&p != 0 {
					rules = append(rules, int32(i))
				}
			}
			if err := s.node(1<<dims-1, rules, [dims]space.Set{}, signature{}, nil); err != nil {
				return nil, err
			}
		}
	}
	leaves := merge(s.leaves)
	classes := make([]Class, 0, len(leaves))
	for _, l := range leaves {
		classes = append(classes, s.class(l, hints))
	}
	return classes, nil
}

func (s *splitter) class(l leaf, hints Hints) Class {
	c := Class{Family: l.family, Proto: l.proto}
	for _, x := range l.box[dimUID] {
		c.Source.UIDs = append(c.Source.UIDs, IDRange{uint32(x.First.Lo), uint32(x.Last.Lo)})
	}
	for _, x := range l.box[dimGID] {
		c.Source.GIDs = append(c.Source.GIDs, IDRange{uint32(x.First.Lo), uint32(x.Last.Lo)})
	}
	for _, x := range l.box[dimPort] {
		c.Ports = append(c.Ports, PortRange{uint16(x.First.Lo), uint16(x.Last.Lo)})
	}
	for _, x := range l.box[dimAddr] {
		c.Addresses = append(c.Addresses, AddrRange{x.First.Addr(l.family), x.Last.Addr(l.family)})
	}
	var rules []int32
	for m := l.rules; m != nil; m = m.next {
		rules = append(rules, m.rule)
	}
	slices.Sort(rules)
	for _, r := range rules {
		rule := s.rules[r]
		if rule.SupplGroups {
			c.Source.SupplGroups = true
		}
		for _, u := range rule.Unsplit {
			c.Unsplit = append(c.Unsplit, Unsplit{Match: u, Rule: rule.Ref})
		}
		c.Notes = append(c.Notes, rule.Notes...)
	}
	c.Sampled = len(c.Unsplit) > 0
	c.Representative = s.represent(l, hints)
	return c
}
