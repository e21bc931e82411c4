package complete

import (
	"fmt"
	"io"
)

// Flip is a class whose outcome differs between two --complete runs:
// the same class (the same identities, addresses, ports, protocol and
// family) in both rulesets, or one only a side has (Old or New nil): a
// ruleset change that moves a boundary makes new classes and ends old ones.
type Flip struct {
	Old, New *Row
}

// Regression says the class met its expectation before and fails now (a
// class only the new ruleset has counts when it fails).
func (f Flip) Regression() bool {
	return f.New != nil && !f.New.Pass && (f.Old == nil || f.Old.Pass)
}

// Compare lists the classes whose outcome changed, in the new run's
// order, then those only the old run had.
func Compare(oldRows, newRows []Row) []Flip {
	before := map[string]*Row{}
	for i := range oldRows {
		before[key(oldRows[i])] = &oldRows[i]
	}
	var flips []Flip
	seen := map[string]bool{}
	for i := range newRows {
		n := &newRows[i]
		k := key(*n)
		o := before[k]
		seen[k] = true
		if o == nil || o.Observed != n.Observed || o.Pass != n.Pass {
			flips = append(flips, Flip{Old: o, New: n})
		}
	}
	for i := range oldRows {
		if o := &oldRows[i]; !seen[key(*o)] {
			flips = append(flips, Flip{Old: o})
		}
	}
	return flips
}

// key is the class's bounds, which name it across runs.
func key(c Row) string {
	return fmt.Sprint(c.Class.Family, c.Class.Proto, c.Class.Source.UIDs, c.Class.Source.GIDs, c.Class.Network, c.Class.Sources, c.Class.Addresses, c.Class.Ports)
}

// Regressions counts the flips that fail now and did not before.
func Regressions(flips []Flip) int {
	n := 0
	for _, f := range flips {
		if f.Regression() {
			n++
		}
	}
	return n
}

// WriteFlips prints the changed classes below a diff's cells, after each
// side's completeness line.
func WriteFlips(w io.Writer, flips []Flip, oldLine, newLine string) {
	side := func(c *Row) string {
		if c == nil {
			return "(no such class)"
		}
		word := "pass"
		if !c.Pass {
			word = "FAIL"
		}
		return fmt.Sprintf("%s (expected %s: %s)", c.Observed, c.Expected, word)
	}
	fmt.Fprintf(w, "\nclasses: old %s; new %s\n", oldLine, newLine)
	for _, f := range flips {
		mark := " "
		if f.Regression() {
			mark = "!"
		}
		c := f.New
		if c == nil {
			c = f.Old
		}
		fmt.Fprintf(w, "%s class %s, probed as %s/%s: %s -> %s\n", mark, Name(c.Class), c.Probed, c.Proto, side(f.Old), side(f.New))
	}
	fmt.Fprintf(w, "%s changed, %d now failing that passed\n", countOf(len(flips), "class", "classes"), Regressions(flips))
}

// JSONFlip is a changed class in diff's JSON document.
type JSONFlip struct {
	Old *JSONClass `json:"old"`
	New *JSONClass `json:"new"`
}

// JSONFlips are the changed classes for diff's JSON document.
func JSONFlips(flips []Flip) []JSONFlip {
	out := []JSONFlip{}
	for _, f := range flips {
		var j JSONFlip
		if f.Old != nil {
			c := toJSON(*f.Old)
			j.Old = &c
		}
		if f.New != nil {
			c := toJSON(*f.New)
			j.New = &c
		}
		out = append(out, j)
	}
	return out
}
