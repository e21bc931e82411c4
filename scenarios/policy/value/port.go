package value

import (
	"fmt"
	"iter"
	"strconv"
	"strings"
)

// Port is a transport port a host serves.
type Port struct {
	Number uint16
	Proto  string // "tcp" or "udp"
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Number, p.Proto) }

// PortRange is the ports First to Last (inclusive) of one protocol: `N-M/tcp`,
// or `N/tcp` when First == Last. Hosts and expectations keep ranges as
// written, so a 65,535-port sweep costs one value, not 65,535.
type PortRange struct {
	First, Last uint16
	Proto       string // "tcp" or "udp"
}

func (r PortRange) String() string {
	if r.First == r.Last {
		return fmt.Sprintf("%d/%s", r.First, r.Proto)
	}
	return fmt.Sprintf("%d-%d/%s", r.First, r.Last, r.Proto)
}

// Len is the number of ports in the range.
func (r PortRange) Len() int { return int(r.Last) - int(r.First) + 1 }

// Contains reports whether p is one of the range's ports.
func (r PortRange) Contains(p Port) bool {
	return p.Proto == r.Proto && r.First <= p.Number && p.Number <= r.Last
}

// Overlaps reports whether the two ranges share a port.
func (r PortRange) Overlaps(o PortRange) bool {
	return r.Proto == o.Proto && r.First <= o.Last && o.First <= r.Last
}

// Ports yields the range's ports in order.
func (r PortRange) Ports() iter.Seq[Port] {
	return func(yield func(Port) bool) {
		for n := int(r.First); n <= int(r.Last); n++ {
			if !yield(Port{Number: uint16(n), Proto: r.Proto}) {
				return
			}
		}
	}
}

// ParsePorts reads N/tcp, N/udp or a bare N (tcp), or a range N-M in any of
// those forms, N and M from 1 to 65535 and N <= M.
func ParsePorts(s string) (PortRange, error) {
	spec, proto, found := strings.Cut(s, "/")
	if !found {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return PortRange{}, fmt.Errorf("bad protocol in port %q: want tcp or udp", s)
	}
	first, last, isRange := strings.Cut(spec, "-")
	if !isRange {
		last = first
	}
	lo, err1 := Decimal(first, 65535)
	hi, err2 := Decimal(last, 65535)
	switch {
	case isRange && (err1 != nil || err2 != nil || lo == 0 || hi == 0):
		return PortRange{}, fmt.Errorf("bad port range %q: want N-M/tcp or N-M/udp, N and M from 1 to 65535", s)
	case err1 != nil || lo == 0:
		return PortRange{}, fmt.Errorf("bad port %q: want N/tcp, N/udp or N, N from 1 to 65535, or a range N-M/tcp", s)
	case lo > hi:
		return PortRange{}, fmt.Errorf("bad port range %q: %d is above %d: want the lower port first, such as %d-%d/%s", s, lo, hi, hi, lo, proto)
	}
	return PortRange{First: uint16(lo), Last: uint16(hi), Proto: proto}, nil
}

// Decimal parses a plain decimal number from 0 to max.
func Decimal(s string, max uint64) (uint64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("want a decimal number from 0 to %d, found %s", max, s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > max {
		return 0, fmt.Errorf("%s is out of range: want 0 to %d", s, max)
	}
	return v, nil
}

// Repeated says how p repeats a port of have, or "" when it does not.
func Repeated(have []PortRange, p PortRange) string {
	for _, q := range have {
		switch {
		case !q.Overlaps(p):
		case q == p:
			return fmt.Sprintf("port %s is listed twice", p)
		default:
			return fmt.Sprintf("port %s overlaps %s: port %d/%s is listed twice", p, q, max(p.First, q.First), p.Proto)
		}
	}
	return ""
}
