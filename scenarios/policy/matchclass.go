package policy

import (
	"net/netip"
	"slices"
)

// MatchClass returns the first expectation that covers a class of
// verify --complete at its representative: user is the policy user it is
// probed as, or "" for a synthetic identity, which only an entry naming no
// user (or user: "*") covers; an address outside every host only an entry
// naming no host, or an address prefix that holds it, covers. A class is
// the host's own traffic, so an entry naming clients never covers it.
func (p *Policy) MatchClass(user string, addr netip.Addr, port Port) (int, bool) {
	return p.matchClass(source{UserSource, user}, addr, port)
}

// MatchClientClass is MatchClass for a class of forwarded traffic: client
// is the policy client that represents it, or "" for a synthetic one, which
// only entries naming no client cover.
func (p *Policy) MatchClientClass(client string, addr netip.Addr, port Port) (int, bool) {
	return p.matchClass(source{ClientSource, client}, addr, port)
}

// matchClass is the first expectation covering a class whose representative
// is src (its name "" for a synthetic one) to addr and port.
func (p *Policy) matchClass(src source, addr netip.Addr, port Port) (int, bool) {
	var hosts []string
	for _, h := range p.Hosts {
		if slices.Contains(h.Addresses, addr) {
			hosts = append(hosts, h.Name)
		}
	}
	for i, x := range p.Expect {
		named := x.Users
		if src.kind == ClientSource {
			named = x.Clients
		}
		if x.Sources != AnySource && x.Sources != src.kind ||
			named != nil && (src.name == "" || !slices.Contains(named, src.name)) ||
			x.Hosts != nil && !slices.ContainsFunc(hosts, func(h string) bool { return slices.Contains(x.Hosts, h) }) ||
			!x.matchesAddress(addr) ||
			x.Ports != nil && !slices.ContainsFunc(x.Ports, func(r PortRange) bool { return r.Contains(port) }) ||
			x.Family != "" && x.Family != Family(addr) {
			continue
		}
		return i, true
	}
	return -1, false
}
