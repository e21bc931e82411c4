package scenarios

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/egresslab/egresslab/probe"
)

// The truth table's layout, in the manner of Kubernetes' netpol truth
// tables: one character per cell makes a large failure readable at a glance.

const (
	colGap  = "  "
	hostGap = "  |  " // hosts are the coarsest grouping; a rule shows where one ends
)

type table struct {
	users   []string
	hosts   []*hostCols
	cells   map[cellKey]Result
	missing bool // some user × column has no result
}

type hostCols struct {
	name  string
	addrs []*addrCols
}

type addrCols struct {
	addr   netip.Addr
	ports  []Port
	widths []int // one per port
}

type cellKey struct {
	user, host string
	addr       netip.Addr
	port       Port
}

// newTable lays out columns in the order results first name them, grouped
// by host, then address, then port.
func newTable(results []Result) *table {
	t := &table{cells: map[cellKey]Result{}}
	for _, res := range results {
		if !slices.Contains(t.users, res.User.Name) {
			t.users = append(t.users, res.User.Name)
		}
		h := t.host(res.Host)
		a := h.addr(res.Address)
		if !slices.Contains(a.ports, res.Port) {
			a.ports = append(a.ports, res.Port)
		}
		t.cells[cellKey{res.User.Name, res.Host, res.Address, res.Port}] = res
	}
	for _, h := range t.hosts {
		for _, a := range h.addrs {
			for _, p := range a.ports {
				a.widths = append(a.widths, max(width(p.String()), 2)) // 2: glyph and '!'
			}
			widen(a.widths, width(a.label())-sum(a.widths, len(colGap)))
		}
		last := h.addrs[len(h.addrs)-1]
		widen(last.widths, width(h.name)-h.span())
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
	c := &addrCols{addr: a}
	h.addrs = append(h.addrs, c)
	return c
}

func (a *addrCols) label() string {
	if family(a.addr) == "ipv4" {
		return "v4 " + a.addr.String()
	}
	return "v6 " + a.addr.String()
}

func (h *hostCols) span() int {
	n := 0
	for _, a := range h.addrs {
		n += sum(a.widths, len(colGap))
	}
	return n + len(colGap)*(len(h.addrs)-1)
}

func (t *table) write(b *bytes.Buffer, paint func(code, s string) string) {
	side := 0
	for _, u := range t.users {
		side = max(side, width(u))
	}
	line := func(cells func(h *hostCols) []string) {
		var parts []string
		for _, h := range t.hosts {
			parts = append(parts, strings.Join(cells(h), colGap))
		}
		b.WriteString(strings.TrimRight(strings.Join(parts, hostGap), " ") + "\n")
	}
	// The side column is written into the first host's first cell, so that
	// the joins above stay simple.
	lead := func(label string, s string) string { return pad(label, side) + colGap + s }

	line(func(h *hostCols) []string {
		s := pad(h.name, h.span())
		if h == t.hosts[0] {
			s = lead("", s)
		}
		return []string{s}
	})
	line(func(h *hostCols) []string {
		var out []string
		for _, a := range h.addrs {
			out = append(out, pad(a.label(), sum(a.widths, len(colGap))))
		}
		if h == t.hosts[0] {
			out[0] = lead("", out[0])
		}
		return out
	})
	line(func(h *hostCols) []string {
		var out []string
		for _, a := range h.addrs {
			for i, p := range a.ports {
				out = append(out, pad(p.String(), a.widths[i]))
			}
		}
		if h == t.hosts[0] {
			out[0] = lead("", out[0])
		}
		return out
	})
	for _, u := range t.users {
		line(func(h *hostCols) []string {
			var out []string
			for _, a := range h.addrs {
				for i, p := range a.ports {
					out = append(out, t.cell(cellKey{u, h.name, a.addr, p}, a.widths[i], paint))
				}
			}
			if h == t.hosts[0] {
				out[0] = lead(u, out[0])
			}
			return out
		})
	}
}

// cell is one glyph, '!' when the policy expected otherwise, padded to w.
func (t *table) cell(k cellKey, w int, paint func(code, s string) string) string {
	res, ok := t.cells[k]
	if !ok {
		t.missing = true
		return pad("-", w)
	}
	g := glyph(res.Observed)
	code := green
	if !res.Pass() {
		g, code = g+"!", red
	}
	return paint(code, g) + strings.Repeat(" ", max(w-width(g), 0))
}

func glyph(o probe.Outcome) string {
	switch o {
	case probe.Connected:
		return "."
	case probe.Refused, probe.Rejected:
		return "R"
	case probe.Dropped:
		return "X"
	}
	return "E"
}

func pad(s string, w int) string { return s + strings.Repeat(" ", max(w-width(s), 0)) }

func width(s string) int { return utf8.RuneCountInString(s) }

// sum is the width of columns joined by gaps of width gap.
func sum(widths []int, gap int) int {
	n := 0
	for _, w := range widths {
		n += w
	}
	return n + gap*max(len(widths)-1, 0)
}

// widen gives extra width, if any, to the last column.
func widen(widths []int, extra int) {
	if extra > 0 && len(widths) > 0 {
		widths[len(widths)-1] += extra
	}
}
