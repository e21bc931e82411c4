package sentinel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	vnetlink "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A candidate script can change the lab host itself: switch IPv6 off, set an
// interface down, add unreachable or blackhole routes. A real host would
// suffer the same, so probes get the kernel's verdict; HostRefusal finds the
// state behind it, so the verdict can name its cause.

// Refusal is the lab host's own state that keeps it from reaching a destination.
type Refusal struct {
	What      RefusalKind
	Link      string       // the interface, for LinkDown; the sysctl's scope for IPv6Off
	Route     netip.Prefix // for RouteType
	RouteType string       // "unreachable", "prohibit", "blackhole" or "throw"
}

// RefusalKind is which part of the host's state refused.
type RefusalKind int

const (
	IPv6Off   RefusalKind = iota + 1 // net.ipv6.conf.*.disable_ipv6=1
	LinkDown                         // the interface the destination is reached through is down
	RouteType                        // a route of a type that refuses (unreachable, prohibit, blackhole, throw)
	NoRoute                          // no route at all
)

func (r Refusal) String() string {
	switch r.What {
	case IPv6Off:
		return fmt.Sprintf("IPv6 is switched off on this host by the candidate's sysctl (net.ipv6.conf.%s.disable_ipv6=1)", r.Link)
	case LinkDown:
		return fmt.Sprintf("interface %s is down on this host (set down by the candidate)", r.Link)
	case RouteType:
		return fmt.Sprintf("route %s %s, added by the candidate", r.Route, r.RouteType)
	case NoRoute:
		return "this host has no route to it (the candidate removed the route)"
	}
	return "unknown host state"
}

// HostRefusal looks for the lab host's state that keeps it from sending to
// dst. ok is false when nothing in the host's state explains a refusal.
func (s *Sentinel) HostRefusal(dst netip.Addr) (r Refusal, ok bool, err error) {
	if s == nil {
		return r, false, errors.New("the drop sentinel is not installed")
	}
	link := s.lab.Uplink()
	if dst.IsLoopback() {
		link = "lo"
	}
	if dst.Is6() {
		for _, scope := range []string{"all", link} {
			off, err := s.sysctl("net/ipv6/conf/" + scope + "/disable_ipv6")
			if err != nil {
				return r, false, err
			}
			if off == "1" {
				return Refusal{What: IPv6Off, Link: scope}, true, nil
			}
		}
	}
	h := s.host
	if lk, err := h.LinkByName(link); err == nil && lk.Attrs().Flags&net.FlagUp == 0 {
		return Refusal{What: LinkDown, Link: link}, true, nil
	}
	family := vnetlink.FAMILY_V4
	if dst.Is6() {
		family = vnetlink.FAMILY_V6
	}
	routes, err := h.RouteListFiltered(family, &vnetlink.Route{Table: unix.RT_TABLE_UNSPEC}, vnetlink.RT_FILTER_TABLE)
	if err != nil {
		return r, false, fmt.Errorf("list routes in lab %s: %w", s.lab.Name(), err)
	}
	best := -1
	for _, rt := range routes {
		name, refusing := refusingTypes[rt.Type]
		if !refusing {
			continue
		}
		p := netip.MustParsePrefix("0.0.0.0/0")
		if dst.Is6() {
			p = netip.MustParsePrefix("::/0")
		}
		if rt.Dst != nil {
			a, _ := netip.AddrFromSlice(rt.Dst.IP)
			bits, _ := rt.Dst.Mask.Size()
			p = netip.PrefixFrom(a.Unmap(), bits)
		}
		if p.Contains(dst) && p.Bits() > best {
			best, r = p.Bits(), Refusal{What: RouteType, Route: p, RouteType: name}
		}
	}
	if best >= 0 {
		return r, true, nil
	}
	if _, err := h.RouteGet(dst.AsSlice()); err != nil {
		if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) {
			return Refusal{What: NoRoute}, true, nil
		}
	}
	return r, false, nil
}

var refusingTypes = map[int]string{
	unix.RTN_UNREACHABLE: "unreachable",
	unix.RTN_PROHIBIT:    "prohibit",
	unix.RTN_BLACKHOLE:   "blackhole",
	unix.RTN_THROW:       "throw",
}

// sysctl reads one of the lab's network sysctls (path under /proc/sys).
func (s *Sentinel) sysctl(path string) (string, error) {
	var v string
	err := s.lab.Do(func() error {
		b, err := os.ReadFile("/proc/sys/" + path)
		if errors.Is(err, os.ErrNotExist) {
			return nil // an interface without IPv6 settings
		}
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read %s in lab %s: %w", strings.ReplaceAll(path, "/", "."), s.lab.Name(), err)
	}
	return v, nil
}
