package report

import (
	"fmt"
	"io"
)

// ClassFlip is a class whose outcome differs between two --complete runs:
// the same class (the same identities, addresses, ports, protocol and
// family) in both rulesets, or one only a side has (Old or New nil): a
// ruleset change that moves a boundary makes new classes and ends old ones.
type ClassFlip struct {
	Old, New *ClassResult
}

// Regression says the class met its expectation before and fails now (a
// class only the new ruleset has counts when it fails).
func (f ClassFlip) Regression() bool {
	return f.New != nil && !f.New.Pass() && (f.Old == nil || f.Old.Pass())
}

// CompareClasses lists the classes whose outcome changed, in the new run's
// order, then those only the old run had.
func CompareClasses(oldRep, newRep *Report) []ClassFlip {
	before := map[string]*ClassResult{}
	for i := range oldRep.Classes {
		before[oldRep.Classes[i].key()] = &oldRep.Classes[i]
	}
	var flips []ClassFlip
	seen := map[string]bool{}
	for i := range newRep.Classes {
		n := &newRep.Classes[i]
		k := n.key()
		o := before[k]
		seen[k] = true
		if o == nil || o.Observed != n.Observed || o.Pass() != n.Pass() {
			flips = append(flips, ClassFlip{Old: o, New: n})
		}
	}
	for i := range oldRep.Classes {
		if o := &oldRep.Classes[i]; !seen[o.key()] {
			flips = append(flips, ClassFlip{Old: o})
		}
	}
	return flips
}

// key is the class's bounds, which name it across runs.
func (c ClassResult) key() string {
	return fmt.Sprint(c.Class.Family, c.Class.Proto, c.Class.Source.UIDs, c.Class.Source.GIDs, c.Class.Addresses, c.Class.Ports)
}

// writeClassFlips prints the changed classes below the cells.
func (d *Diff) writeClassFlips(w io.Writer) {
	if d.Old.Completeness == nil || d.New.Completeness == nil {
		return
	}
	side := func(c *ClassResult) string {
		if c == nil {
			return "(no such class)"
		}
		word := "pass"
		if !c.Pass() {
			word = "FAIL"
		}
		return fmt.Sprintf("%s (expected %s: %s)", c.Observed, c.Expect, word)
	}
	fmt.Fprintf(w, "\nclasses: old %s; new %s\n", d.Old.CompletenessLine(), d.New.CompletenessLine())
	for _, f := range d.ClassFlips {
		mark := " "
		if f.Regression() {
			mark = "!"
		}
		c := f.New
		if c == nil {
			c = f.Old
		}
		fmt.Fprintf(w, "%s class %s, probed as %s/%s: %s -> %s\n", mark, c.Name(), c.representative(), c.Port.Proto, side(f.Old), side(f.New))
	}
	fmt.Fprintf(w, "%s changed, %d now failing that passed\n", countOf(len(d.ClassFlips), "class", "classes"), d.ClassRegressions())
}

// ClassRegressions counts the class flips that fail now and did not before.
func (d *Diff) ClassRegressions() int {
	n := 0
	for _, f := range d.ClassFlips {
		if f.Regression() {
			n++
		}
	}
	return n
}

type jsonClassFlip struct {
	Old *jsonClass `json:"old"`
	New *jsonClass `json:"new"`
}

func (d *Diff) jsonClassFlips() []jsonClassFlip {
	out := []jsonClassFlip{}
	if d.Old.Completeness == nil || d.New.Completeness == nil {
		return nil
	}
	for _, f := range d.ClassFlips {
		var j jsonClassFlip
		if f.Old != nil {
			c := toJSONClass(*f.Old)
			j.Old = &c
		}
		if f.New != nil {
			c := toJSONClass(*f.New)
			j.New = &c
		}
		out = append(out, j)
	}
	return out
}
