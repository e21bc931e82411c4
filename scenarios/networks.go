package scenarios

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/goccy/go-yaml/ast"
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
		if family(a.Addr()) == fam {
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
		if family(a) == family(dst) {
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


// decodeNetworks reads `networks:`. Users, hosts and groups are decoded
// before it: client names share the users' namespace, and network addresses
// must stay clear of the hosts.
func (pd *policyDecoder) decodeNetworks(f field) error {
	fields, err := pd.mapping(f.value, "networks", true)
	if err != nil {
		return err
	}
	names := map[string]ast.Node{}
	for _, nf := range fields {
		if err := checkNetworkName(nf.key); err != nil {
			pd.fail(pd.errorf(nf.node, "%v", err))
			continue
		}
		if nf.key == pd.p.Lab.Uplink {
			pd.fail(pd.errorf(nf.node, "network %q has the name of the lab's uplink: want another interface name", nf.key))
			continue
		}
		names[nf.key] = nf.node
		n, err := pd.network(nf)
		if err != nil {
			pd.fail(err)
			continue
		}
		pd.p.Networks = append(pd.p.Networks, n)
	}
	return nil
}

func (pd *policyDecoder) network(nf field) (Network, error) {
	n := Network{Name: nf.key}
	what := fmt.Sprintf("network %q", n.Name)
	fields, err := pd.mapping(nf.value, what, false)
	if err != nil {
		return n, err
	}
	var clientsField *field
	hasAddresses, bad := false, false
	for _, f := range fields {
		switch f.key {
		case "addresses":
			hasAddresses = true
			items, err := pd.list(f.value, "addresses of "+what)
			if err != nil {
				pd.fail(err)
				bad = true
				continue
			}
			if len(items) == 0 {
				pd.fail(pd.errorf(f.value, "%s has an empty list of addresses: want the host's address on it, such as 172.17.0.1/16", what))
				bad = true
			}
			for _, item := range items {
				p, err := pd.networkAddress(item, what, n.Addresses)
				if err != nil {
					pd.fail(err)
					bad = true
					continue
				}
				n.Addresses = append(n.Addresses, p)
				pd.networkPrefixes = append(pd.networkPrefixes, networkPrefix{network: n.Name, prefix: p})
			}
		case "clients":
			clientsField = &f
		default:
			pd.fail(pd.errorf(f.node, "unknown key %q in %s: want addresses or clients", f.key, what))
			bad = true
		}
	}
	if !hasAddresses {
		pd.fail(pd.errorf(nf.node, "%s has no addresses: want the host's own address on it with its prefix, such as addresses: [172.17.0.1/16]", what))
		bad = true
	}
	if clientsField != nil {
		// Clients are read even when the addresses are wrong, so that
		// every mistake shows in one pass.
		n.Clients = pd.clients(*clientsField, n, what, !bad)
	}
	if bad {
		return n, errReported
	}
	return n, nil
}

// networkPrefix is a network's address, kept to check later addresses
// against it.
type networkPrefix struct {
	network string
	prefix  netip.Prefix
}

// networkAddress reads one of the host's addresses on a network: an address
// with its prefix length, inside neither another network nor the lab's
// uplink, holding no host of the policy.
func (pd *policyDecoder) networkAddress(n ast.Node, what string, have []netip.Prefix) (netip.Prefix, error) {
	s, err := pd.str(n, "address of "+what)
	if err != nil {
		return netip.Prefix{}, err
	}
	p, err := parseNetworkPrefix(s)
	if err != nil {
		return p, pd.errorf(n, "%s: %v", what, err)
	}
	if host, ok := pd.owner[p.Addr()]; ok {
		return p, pd.errorf(n, "%s: address %s is an address of host %q: hosts live one hop away, beyond the uplink; the host's address on a network is its clients' gateway", what, p.Addr(), host)
	}
	if h := pd.hostIn(p); h != "" {
		return p, pd.errorf(n, "%s: prefix %s holds host %q: hosts live one hop away, beyond the uplink, not on a network the host routes for; pick another prefix", what, p.Masked(), h)
	}
	for _, q := range have {
		if family(q.Addr()) == family(p.Addr()) {
			return p, pd.errorf(n, "%s: %s is a second %s address (after %s): want at most one per family", what, p, familyName(family(p.Addr())), q)
		}
	}
	for _, u := range pd.p.Lab.Addresses {
		if u.Overlaps(p) {
			return p, pd.errorf(n, "%s: prefix %s overlaps the lab's uplink address %s: a network behind the host is not its uplink's; pick another prefix or set lab.addresses", what, p.Masked(), u)
		}
	}
	for _, o := range pd.networkPrefixes {
		if o.prefix.Overlaps(p) {
			return p, pd.errorf(n, "%s: prefix %s overlaps %s of network %q: the host routes each prefix to one interface", what, p.Masked(), o.prefix.Masked(), o.network)
		}
	}
	return p, nil
}

// clients reads a network's clients; those in error are left out, their
// errors recorded.
func (pd *policyDecoder) clients(f field, n Network, what string, placeable bool) []Client {
	fields, err := pd.mapping(f.value, "clients of "+what, false)
	if err != nil {
		pd.fail(err)
		return nil
	}
	if len(fields) == 0 {
		pd.fail(pd.errorf(f.node, "%s has no clients: want at least one, such as web: {addresses: [172.17.0.2]}, or leave clients out", what))
		return nil
	}
	var cs []Client
	for _, cf := range fields {
		if err := checkAccount("client", cf.key); err != nil {
			pd.fail(pd.errorf(cf.node, "%v", err))
			continue
		}
		if err := pd.claimSourceName(cf, n.Name); err != nil {
			pd.fail(err)
			continue
		}
		c, err := pd.client(cf, n, placeable)
		if err != nil {
			pd.fail(err)
			continue
		}
		cs = append(cs, c)
	}
	return cs
}

// claimSourceName makes sure a client's name is no user's and no other
// client's: probes, tables and `client:` in expect name a source by it.
func (pd *policyDecoder) claimSourceName(cf field, network string) error {
	if slices.Contains(pd.users, cf.key) {
		return pd.errorf(cf.node, "client %q of network %q has the name of a user: users and clients share one namespace; rename the client", cf.key, network)
	}
	if other, ok := pd.clientNetwork[cf.key]; ok {
		if other == network {
			return pd.errorf(cf.node, "client %q is listed twice in network %q", cf.key, network)
		}
		return pd.errorf(cf.node, "client %q of network %q is already a client of network %q: want one name per client", cf.key, network, other)
	}
	pd.clientNetwork[cf.key] = network
	pd.clientNames = append(pd.clientNames, cf.key)
	return nil
}

// client reads one client; with placeable false (its network's addresses are
// in error) where its addresses lie is not checked.
func (pd *policyDecoder) client(cf field, n Network, placeable bool) (Client, error) {
	c := Client{Name: cf.key, Network: n.Name}
	what := fmt.Sprintf("client %q of network %q", c.Name, n.Name)
	fields, err := pd.mapping(cf.value, what, false)
	if err != nil {
		return c, err
	}
	hasAddresses, bad := false, false
	for _, f := range fields {
		switch f.key {
		case "addresses":
			hasAddresses = true
			items, err := pd.list(f.value, "addresses of "+what)
			if err != nil {
				pd.fail(err)
				bad = true
				continue
			}
			if len(items) == 0 {
				pd.fail(pd.errorf(f.value, "%s has an empty list of addresses: want at least one", what))
				bad = true
			}
			for _, item := range items {
				a, err := pd.clientAddress(item, what, n, placeable, c.Addresses)
				if err != nil {
					pd.fail(err)
					bad = true
					continue
				}
				c.Addresses = append(c.Addresses, a)
			}
		case "uid", "gid", "groups":
			pd.fail(pd.errorf(f.node, "%s: %s does not apply to a client: it probes as the root of its own machine; to probe as a host identity, make it a user", what, f.key))
			bad = true
		default:
			pd.fail(pd.errorf(f.node, "unknown key %q in %s: want addresses", f.key, what))
			bad = true
		}
	}
	if !hasAddresses {
		pd.fail(pd.errorf(cf.node, "%s has no addresses: want addresses: [...], inside the network's prefixes", what))
		bad = true
	}
	if bad {
		return c, errReported
	}
	return c, nil
}

func (pd *policyDecoder) clientAddress(n ast.Node, what string, net Network, placeable bool, have []netip.Addr) (netip.Addr, error) {
	s, err := pd.str(n, "address of "+what)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := parseAddr(s)
	if err != nil {
		return a, pd.errorf(n, "%s: %v", what, err)
	}
	if a.IsLoopback() {
		return a, pd.errorf(n, "%s: address %s is loopback: want an address inside the network's prefixes", what, a)
	}
	if !placeable {
		return a, nil // the network's own error is the one to fix
	}
	gw, ok := net.Gateway(family(a))
	switch {
	case !ok || !gw.Contains(a):
		return a, pd.errorf(n, "%s: address %s is outside the network's prefixes (%s): a client's address lies inside one of them", what, a, prefixList(net.Addresses))
	case a == gw.Addr():
		return a, pd.errorf(n, "%s: address %s is the host's own address on the network (the clients' gateway): want another address in %s", what, a, gw.Masked())
	case a == gw.Masked().Addr():
		return a, pd.errorf(n, "%s: address %s is the network's own address: want a host address in %s", what, a, gw.Masked())
	case a.Is4() && a == lastAddr(gw.Masked()):
		return a, pd.errorf(n, "%s: address %s is the broadcast address of %s: want a host address in it", what, a, gw.Masked())
	case slices.Contains(have, a):
		return a, pd.errorf(n, "%s: address %s is listed twice", what, a)
	case slices.ContainsFunc(have, func(h netip.Addr) bool { return family(h) == family(a) }):
		return a, pd.errorf(n, "%s: %s is a second %s address: want at most one per family (a client's source in each family is its one address)", what, a, familyName(family(a)))
	}
	if other, ok := pd.clientAddrs[a]; ok {
		return a, pd.errorf(n, "%s: address %s already belongs to client %q: want one address per client", what, a, other)
	}
	pd.clientAddrs[a] = what
	return a, nil
}

func prefixList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Masked().String()
	}
	return orList(s)
}

// checkNetworkName accepts a Linux interface name (dev_valid_name) that the
// lab does not use itself.
func checkNetworkName(name string) error {
	ok := name != "" && len(name) <= 15 && name != "." && name != ".."
	for _, r := range name {
		ok = ok && r > ' ' && r < 0x7f && r != '/' && r != ':'
	}
	switch {
	case !ok:
		return fmt.Errorf("invalid network name %q: want the interface name the ruleset sees, 1 to 15 printable characters without '/', ':' or spaces, such as docker0 or br-0123456789ab", name)
	case name == "lo":
		return fmt.Errorf("network %q is the loopback interface: want the bridge's name, such as docker0", name)
	}
	return nil
}

// parseNetworkPrefix accepts the host's address on a network with its
// prefix length, leaving room for at least one client.
func parseNetworkPrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("bad network address %q: want the host's address with prefix length, such as 172.17.0.1/16", s)
	}
	a, net := p.Addr(), p.Masked()
	maxBits := 127
	if a.Is4() {
		maxBits = 30
	}
	switch {
	case a.Is4In6():
		return p, fmt.Errorf("network address %q is IPv4-mapped: write it as IPv4", s)
	case a.IsLoopback(), a.IsUnspecified(), a.IsMulticast(), a.IsLinkLocalUnicast():
		return p, fmt.Errorf("network address %s cannot be routed for: want a unicast address such as 172.17.0.1/16", p)
	case p.Bits() > maxBits:
		return p, fmt.Errorf("network address %s leaves no room for a client: want a prefix of /%d or shorter", p, maxBits)
	case a == net.Addr():
		return p, fmt.Errorf("network address %s is the network's own address: want the host's address in it, such as %s/%d", p, net.Addr().Next(), p.Bits())
	case a.Is4() && a == lastAddr(net):
		return p, fmt.Errorf("network address %s is the broadcast address: want a host address in the prefix", p)
	}
	return p, nil
}

// selectAddresses reads address of an expectation: "*" (nil, any), or one
// address or prefix, or a list of them. An address is a prefix of its full
// length.
func (pd *policyDecoder) selectAddresses(n ast.Node) ([]netip.Prefix, error) {
	if s, ok := n.(*ast.StringNode); ok && s.Value == "*" {
		return nil, nil
	}
	items := []ast.Node{n}
	if _, ok := n.(*ast.SequenceNode); ok {
		items, _ = pd.list(n, "address")
		if len(items) == 0 {
			return nil, pd.errorf(n, "address: an empty list matches nothing: want an address, a prefix, a list of them or \"*\"")
		}
	}
	var ps []netip.Prefix
	for _, item := range items {
		s, ok := item.(*ast.StringNode)
		switch {
		case !ok:
			return nil, pd.errorf(item, "address: want an address or prefix such as 2001:db8::25 or 2000::/3, a list of them or \"*\", found %s", describe(item))
		case s.Value == "*":
			return nil, pd.errorf(item, "address: \"*\" inside a list: write address: \"*\" on its own")
		}
		p, err := parseSelectPrefix(s.Value)
		if err != nil {
			return nil, pd.errorf(item, "address: %v", err)
		}
		if slices.Contains(ps, p) {
			return nil, pd.errorf(item, "address %s is listed twice", p)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func parseSelectPrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" || a.Is4In6() {
			return netip.Prefix{}, fmt.Errorf("bad address %q: want an address without zone, IPv4 written as IPv4", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("bad address %q: want an address such as 2001:db8::25 or a prefix such as 2000::/3", s)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("prefix %s has host bits set: write %s", p, p.Masked())
	}
	return p, nil
}

// matchesAddress says whether x's address selector admits a.
func (x Expectation) matchesAddress(a netip.Addr) bool {
	return x.Addresses == nil || slices.ContainsFunc(x.Addresses, func(p netip.Prefix) bool { return p.Contains(a) })
}

// nameSources records which kind of source an expectation names; naming
// both user and client is an error: an entry selects one kind or both.
func (pd *policyDecoder) nameSources(x *Expectation, kind SourceKind, f field, err error) error {
	if x.Sources != AnySource && x.Sources != kind {
		return pd.errorf(f.node, "%s: an entry names user or client, not both: user selects users only, client clients only; leave both out to match every source, or write two entries", x.Verb)
	}
	x.Sources = kind
	return err
}

// sourcesWord is what messages call the probe sources of p.
func sourcesWord(p *Policy) string {
	if len(p.Networks) > 0 {
		return "users and clients"
	}
	return "users"
}
