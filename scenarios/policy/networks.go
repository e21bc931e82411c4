package policy

import (
	"net/netip"
	"slices"
)

// Network is a network the host routes for (containers, VMs, a LAN): a bridge
// of the ruleset's interface name holding the host's own addresses on it,
// with the clients behind it.
type Network struct {
	Name      string         // the interface the ruleset sees: docker0, br-0123456789ab, virbr0
	Addresses []netip.Prefix // the host's addresses on it, as written (the clients' gateways)
	Clients   []Client
}

// Gateway is the host's address on the network in family fam ("ipv4" or
// "ipv6"): the default route of its clients in that family.
func (n Network) Gateway(fam string) (netip.Prefix, bool) {
	for _, a := range n.Addresses {
		if Family(a.Addr()) == fam {
			return a, true
		}
	}
	return netip.Prefix{}, false
}

// Client is a machine behind a network: a probe source of its own, which
// probes as the root of its own network namespace.
type Client struct {
	Name      string
	Network   string // the Network it sits behind
	Addresses []netip.Addr
}

// Source is the client's address in the family of dst, the one a packet of
// its to dst leaves it with; ok is false when it has none (the kernel then
// has no route for that family).
func (c Client) Source(dst netip.Addr) (netip.Addr, bool) {
	for _, a := range c.Addresses {
		if Family(a) == Family(dst) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// String is how reports name the client: "web@docker0".
func (c Client) String() string { return c.Name + "@" + c.Network }

// SourceKind is which probe sources an expectation selects.
type SourceKind string

const (
	AnySource    SourceKind = ""       // the entry names neither user nor client
	UserSource   SourceKind = "user"   // it names user: users only
	ClientSource SourceKind = "client" // it names client: clients only
)

// Clients lists every client of every network, in file order.
func (p *Policy) Clients() []Client {
	var cs []Client
	for _, n := range p.Networks {
		cs = append(cs, n.Clients...)
	}
	return cs
}

// Client finds a client by name.
func (p *Policy) Client(name string) (Client, bool) {
	for _, n := range p.Networks {
		for _, c := range n.Clients {
			if c.Name == name {
				return c, true
			}
		}
	}
	return Client{}, false
}

// matchesAddress says whether x's address selector admits a.
func (x Expectation) matchesAddress(a netip.Addr) bool {
	return x.Addresses == nil || slices.ContainsFunc(x.Addresses, func(p netip.Prefix) bool { return p.Contains(a) })
}

// sourcesWord is what messages call the probe sources of p.
func sourcesWord(p *Policy) string {
	if len(p.Networks) > 0 {
		return "users and clients"
	}
	return "users"
}
