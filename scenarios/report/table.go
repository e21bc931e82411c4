package report

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/egresslab/egresslab/probe"
	"github.com/egresslab/egresslab/scenarios/policy"
)

// The truth table's layout, in the manner of Kubernetes' netpol truth
// tables: a short cell per probe makes a large failure readable at a glance.
// Each cell is the expected verb's letter and the observed glyph ("dX": deny
// expected, dropped observed), with '!' when they disagree. Neighbouring ports
// whose cells are the same for every user share one column ("26-65535/tcp"),
// so a sweep of every port is a handful of columns; a table wider than the
// terminal wraps into blocks that each repeat the users.

const (
	colGap  = "  "
	hostGap = "  |  " // hosts are the coarsest grouping; a rule shows where one ends
)

// cell is what the table shows of one probe: compact, because a sweep has a
// cell per port until the columns fold.
type cell struct {
	probed   bool
	expected byte // verbLetter
	glyph    byte
	pass     bool
}

type table struct {
	users   []string
	hosts   []*hostCols
	missing bool // some user × column has no result
}

type hostCols struct {
	name  string
	addrs []*addrCols
}

type addrCols struct {
	addr netip.Addr
	cols []*column // after folding

	// While the table is built: a column per port, its cells by user.
	ports []policy.Port
	cells [][]cell
	index map[uint32]int32 // portKey -> column
}

// column is a run of ports with the same cells (often one port).
type column struct {
	first, last policy.Port
	cells       []cell // by user index
}

// newTable lays out columns in the order results first name them, grouped
// by host, then address, then port, and folds runs of equal columns.
func newTable(results []Result) *table {
	t := &table{}
	users := map[string]int{}
	for _, res := range results {
		src := res.SourceName() // a client's row is "web@docker0"
		u, ok := users[src]
		if !ok {
			u = len(t.users)
			users[src] = u
			t.users = append(t.users, src)
		}
		a := t.host(res.Host).addr(res.Address)
		i := a.column(res.Port)
		for len(a.cells) <= u {
			a.cells = append(a.cells, nil)
		}
		if n := len(a.cells[u]); n <= i {
			a.cells[u] = slices.Grow(a.cells[u], len(a.ports)-n)[:len(a.ports)]
		}
		a.cells[u][i] = cell{probed: true, expected: verbLetter(res.Expect), glyph: glyph(res.Observed), pass: res.Pass()}
	}
	for _, h := range t.hosts {
		for _, a := range h.addrs {
			t.fold(a)
		}
	}
	return t
}

func (t *table) host(name string) *hostCols {
	for _, h := range t.hosts {
		if h.name == name {
			return h
		}
	}
	h := &hostCols{name: name}
	t.hosts = append(t.hosts, h)
	return h
}

func (h *hostCols) addr(a netip.Addr) *addrCols {
	for _, c := range h.addrs {
		if c.addr == a {
			return c
		}
	}
	c := &addrCols{addr: a, index: map[uint32]int32{}}
	h.addrs = append(h.addrs, c)
	return c
}

// column is the index of p's column, new or not.
func (a *addrCols) column(p policy.Port) int {
	key := uint32(p.Number)
	if p.Proto == "udp" {
		key |= 1 << 16
	}
	if i, ok := a.index[key]; ok {
		return int(i)
	}
	a.index[key] = int32(len(a.ports))
	a.ports = append(a.ports, p)
	return len(a.ports) - 1
}

// fold makes the address's columns: each port joins the column before it
// when it is the next port of the same protocol and every user's cell is the
// same; a user with no result for a port shows "-" there.
func (t *table) fold(a *addrCols) {
	at := func(u, i int) cell {
		if u < len(a.cells) && i < len(a.cells[u]) {
			return a.cells[u][i]
		}
		return cell{}
	}
	same := func(i, j int) bool {
		for u := range t.users {
			if at(u, i) != at(u, j) {
				return false
			}
		}
		return true
	}
	for i, p := range a.ports {
		if n := len(a.cols); n > 0 && i > 0 {
			prev := a.cols[n-1]
			if prev.last.Proto == p.Proto && int(prev.last.Number)+1 == int(p.Number) && same(i-1, i) {
				prev.last = p
				continue
			}
		}
		c := &column{first: p, last: p, cells: make([]cell, len(t.users))}
		for u := range c.cells {
			c.cells[u] = at(u, i)
			t.missing = t.missing || !c.cells[u].probed
		}
		a.cols = append(a.cols, c)
	}
	a.ports, a.cells, a.index = nil, nil, nil
}

func (c *column) label() string {
	if c.first == c.last {
		return c.first.String()
	}
	return fmt.Sprintf("%d-%d/%s", c.first.Number, c.last.Number, c.first.Proto)
}

func (a *addrCols) label() string {
	if policy.Family(a.addr) == "ipv4" {
		return "v4 " + a.addr.String()
	}
	return "v6 " + a.addr.String()
}

// ref is one column with the host and address it belongs to.
type ref struct {
	h *hostCols
	a *addrCols
	c *column
}

// write writes the table, in blocks no wider than width when width > 0 (a
// column wider than that on its own still gets a block).
func (t *table) write(b *bytes.Buffer, paint func(code, s string) string, width int) {
	side := 0
	for _, u := range t.users {
		side = max(side, textWidth(u))
	}
	var all []ref
	for _, h := range t.hosts {
		for _, a := range h.addrs {
			for _, c := range a.cols {
				all = append(all, ref{h, a, c})
			}
		}
	}
	for i, block := range t.blocks(all, side, width) {
		if i > 0 {
			b.WriteString("\n")
		}
		t.writeBlock(b, paint, side, block)
	}
}

// blocks cuts the columns into runs that fit in width.
func (t *table) blocks(all []ref, side, width int) [][]ref {
	if width <= 0 {
		return [][]ref{all}
	}
	var out [][]ref
	start := 0
	var g grouping
	g.reset(side)
	for i, r := range all {
		if g.add(r) > width && i > start {
			out = append(out, all[start:i])
			start = i
			g.reset(side)
			g.add(r)
		}
	}
	return append(out, all[start:])
}

// grouping tracks a block's width as columns are added, in constant time
// per column: finished hosts, finished addresses of the current host, and
// the columns of the current address.
type grouping struct {
	h             *hostCols
	a             *addrCols
	doneHosts     int // width of finished hosts, with their gaps
	doneAddrs     int // width of finished addresses of the current host, with gaps
	cols, nCols   int // the current address's columns: width without gaps, count
	addrW, hostsN int
}

func (g *grouping) reset(side int) { *g = grouping{doneHosts: side} }

// add adds a column and returns the block's width with it.
func (g *grouping) add(r ref) int {
	if r.h != g.h {
		if g.h != nil {
			g.doneHosts += len(hostGap) + g.hostWidth()
		} else {
			g.doneHosts += len(colGap)
		}
		g.h, g.a, g.doneAddrs, g.cols, g.nCols = r.h, nil, 0, 0, 0
	}
	if r.a != g.a {
		if g.a != nil {
			g.doneAddrs += g.addrWidth() + len(colGap)
		}
		g.a, g.cols, g.nCols = r.a, 0, 0
	}
	g.cols += colWidth(r.c)
	g.nCols++
	return g.doneHosts + g.hostWidth()
}

func (g *grouping) addrWidth() int {
	return max(g.cols+len(colGap)*(g.nCols-1), textWidth(g.a.label()))
}

func (g *grouping) hostWidth() int {
	return max(g.doneAddrs+g.addrWidth(), textWidth(g.h.name))
}

// colWidth fits the port label and the widest cell ("d.!").
func colWidth(c *column) int { return max(textWidth(c.label()), 3) }

// writeBlock writes the header rows and one row per user for a run of
// columns. Extra width for an address label goes to its last column, and for
// a host name to the host's last column.
func (t *table) writeBlock(b *bytes.Buffer, paint func(code, s string) string, side int, block []ref) {
	type span struct {
		label string
		cols  []int // indexes into block
	}
	widths := make([]int, len(block))
	var hosts, addrs []span
	for i, r := range block {
		widths[i] = colWidth(r.c)
		if i == 0 || r.h != block[i-1].h {
			hosts = append(hosts, span{label: r.h.name})
		}
		if i == 0 || r.a != block[i-1].a {
			addrs = append(addrs, span{label: r.a.label()})
		}
		hosts[len(hosts)-1].cols = append(hosts[len(hosts)-1].cols, i)
		addrs[len(addrs)-1].cols = append(addrs[len(addrs)-1].cols, i)
	}
	spanWidth := func(s span) int {
		n := len(colGap) * (len(s.cols) - 1)
		for _, i := range s.cols {
			n += widths[i]
		}
		return n
	}
	for _, group := range [][]span{addrs, hosts} {
		for _, s := range group {
			if extra := textWidth(s.label) - spanWidth(s); extra > 0 {
				widths[s.cols[len(s.cols)-1]] += extra
			}
		}
	}
	// A row: the side column, then a text per span; spans of one host are
	// joined by colGap, hosts by hostGap.
	row := func(lead string, spans []span, text func(s span) string) {
		var parts, cur []string
		h := block[0].h
		for _, s := range spans {
			if block[s.cols[0]].h != h {
				parts, cur, h = append(parts, strings.Join(cur, colGap)), nil, block[s.cols[0]].h
			}
			cur = append(cur, text(s))
		}
		parts = append(parts, strings.Join(cur, colGap))
		b.WriteString(strings.TrimRight(pad(lead, side)+colGap+strings.Join(parts, hostGap), " ") + "\n")
	}
	each := make([]span, len(block))
	for i := range block {
		each[i] = span{cols: []int{i}}
	}
	label := func(s span) string { return pad(s.label, spanWidth(s)) }
	row("", hosts, label)
	row("", addrs, label)
	row("", each, func(s span) string { return pad(block[s.cols[0]].c.label(), widths[s.cols[0]]) })
	for u, name := range t.users {
		row(name, each, func(s span) string { return cellText(block[s.cols[0]].c.cells[u], widths[s.cols[0]], paint) })
	}
}

// cellText is the expected verb's letter and the observed glyph, '!' when
// the policy expected otherwise, padded to w.
func cellText(c cell, w int, paint func(code, s string) string) string {
	if !c.probed {
		return pad("-", w)
	}
	s, code := string([]byte{c.expected, c.glyph}), green
	if !c.pass {
		s, code = s+"!", red
	}
	return paint(code, s) + strings.Repeat(" ", max(w-textWidth(s), 0))
}

// legend explains the cells.
func (t *table) legend() string {
	s := "cells:  expected  a allow   d deny   x drop   r reject\n" +
		"        observed  . connected   R refused or rejected   X dropped   E probe error\n" +
		"        ! not what the policy expects"
	if t.missing {
		s += "   - not probed"
	}
	return s
}

func verbLetter(v policy.Verb) byte {
	switch v {
	case policy.Allow:
		return 'a'
	case policy.Deny:
		return 'd'
	case policy.Drop:
		return 'x'
	case policy.Reject:
		return 'r'
	}
	return '?'
}

func glyph(o probe.Outcome) byte {
	switch o {
	case probe.Connected:
		return '.'
	case probe.Refused, probe.Rejected:
		return 'R'
	case probe.Dropped:
		return 'X'
	}
	return 'E'
}

func pad(s string, w int) string { return s + strings.Repeat(" ", max(w-textWidth(s), 0)) }

func textWidth(s string) int { return utf8.RuneCountInString(s) }
