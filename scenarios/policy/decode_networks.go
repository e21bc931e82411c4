package policy

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/egresslab/egresslab/scenarios/policy/value"
	"github.com/egresslab/egresslab/scenarios/policy/yamlnode"
	"github.com/goccy/go-yaml/ast"
)

// decodeNetworks reads `networks:`. Users, hosts and groups are decoded
// before it: client names share the users' namespace, and network addresses
// must stay clear of the hosts.
func (pd *policyDecoder) decodeNetworks(f yamlnode.Field) error {
	fields, err := pd.Mapping(f.Value, "networks", true)
	if err != nil {
		return err
	}
	names := map[string]ast.Node{}
	for _, nf := range fields {
		if err := value.CheckNetworkName(nf.Key); err != nil {
			pd.fail(pd.Errorf(nf.Node, "%v", err))
			continue
		}
		if nf.Key == pd.p.Lab.Uplink {
			pd.fail(pd.Errorf(nf.Node, "network %q has the name of the lab's uplink: want another interface name", nf.Key))
			continue
		}
		names[nf.Key] = nf.Node
		n, err := pd.network(nf)
		if err != nil {
			pd.fail(err)
			continue
		}
		pd.p.Networks = append(pd.p.Networks, n)
	}
	return nil
}

func (pd *policyDecoder) network(nf yamlnode.Field) (Network, error) {
	n := Network{Name: nf.Key}
	what := fmt.Sprintf("network %q", n.Name)
	fields, err := pd.Mapping(nf.Value, what, false)
	if err != nil {
		return n, err
	}
	var clientsField *yamlnode.Field
	hasAddresses, bad := false, false
	for _, f := range fields {
		switch f.Key {
		case "addresses":
			hasAddresses = true
			items, err := pd.List(f.Value, "addresses of "+what)
			if err != nil {
				pd.fail(err)
				bad = true
				continue
			}
			if len(items) == 0 {
				pd.fail(pd.Errorf(f.Value, "%s has an empty list of addresses: want the host's address on it, such as 172.17.0.1/16", what))
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
			pd.fail(pd.Errorf(f.Node, "unknown key %q in %s: want addresses or clients", f.Key, what))
			bad = true
		}
	}
	if !hasAddresses {
		pd.fail(pd.Errorf(nf.Node, "%s has no addresses: want the host's own address on it with its prefix, such as addresses: [172.17.0.1/16]", what))
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
	s, err := pd.Str(n, "address of "+what)
	if err != nil {
		return netip.Prefix{}, err
	}
	p, err := value.ParseNetworkPrefix(s)
	if err != nil {
		return p, pd.Errorf(n, "%s: %v", what, err)
	}
	if host, ok := pd.owner[p.Addr()]; ok {
		return p, pd.Errorf(n, "%s: address %s is an address of host %q: hosts live one hop away, beyond the uplink; the host's address on a network is its clients' gateway", what, p.Addr(), host)
	}
	if h := pd.hostIn(p); h != "" {
		return p, pd.Errorf(n, "%s: prefix %s holds host %q: hosts live one hop away, beyond the uplink, not on a network the host routes for; pick another prefix", what, p.Masked(), h)
	}
	for _, q := range have {
		if Family(q.Addr()) == Family(p.Addr()) {
			return p, pd.Errorf(n, "%s: %s is a second %s address (after %s): want at most one per family", what, p, familyName(Family(p.Addr())), q)
		}
	}
	for _, u := range pd.p.Lab.Addresses {
		if u.Overlaps(p) {
			return p, pd.Errorf(n, "%s: prefix %s overlaps the lab's uplink address %s: a network behind the host is not its uplink's; pick another prefix or set lab.addresses", what, p.Masked(), u)
		}
	}
	for _, o := range pd.networkPrefixes {
		if o.prefix.Overlaps(p) {
			return p, pd.Errorf(n, "%s: prefix %s overlaps %s of network %q: the host routes each prefix to one interface", what, p.Masked(), o.prefix.Masked(), o.network)
		}
	}
	return p, nil
}

// clients reads a network's clients; those in error are left out, their
// errors recorded.
func (pd *policyDecoder) clients(f yamlnode.Field, n Network, what string, placeable bool) []Client {
	fields, err := pd.Mapping(f.Value, "clients of "+what, false)
	if err != nil {
		pd.fail(err)
		return nil
	}
	if len(fields) == 0 {
		pd.fail(pd.Errorf(f.Node, "%s has no clients: want at least one, such as web: {addresses: [172.17.0.2]}, or leave clients out", what))
		return nil
	}
	var cs []Client
	for _, cf := range fields {
		if err := value.CheckAccount("client", cf.Key); err != nil {
			pd.fail(pd.Errorf(cf.Node, "%v", err))
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
func (pd *policyDecoder) claimSourceName(cf yamlnode.Field, network string) error {
	if slices.Contains(pd.users, cf.Key) {
		return pd.Errorf(cf.Node, "client %q of network %q has the name of a user: users and clients share one namespace; rename the client", cf.Key, network)
	}
	if other, ok := pd.clientNetwork[cf.Key]; ok {
		if other == network {
			return pd.Errorf(cf.Node, "client %q is listed twice in network %q", cf.Key, network)
		}
		return pd.Errorf(cf.Node, "client %q of network %q is already a client of network %q: want one name per client", cf.Key, network, other)
	}
	pd.clientNetwork[cf.Key] = network
	pd.clientNames = append(pd.clientNames, cf.Key)
	return nil
}

// client reads one client; with placeable false (its network's addresses are
// in error) where its addresses lie is not checked.
func (pd *policyDecoder) client(cf yamlnode.Field, n Network, placeable bool) (Client, error) {
	c := Client{Name: cf.Key, Network: n.Name}
	what := fmt.Sprintf("client %q of network %q", c.Name, n.Name)
	fields, err := pd.Mapping(cf.Value, what, false)
	if err != nil {
		return c, err
	}
	hasAddresses, bad := false, false
	for _, f := range fields {
		switch f.Key {
		case "addresses":
			hasAddresses = true
			items, err := pd.List(f.Value, "addresses of "+what)
			if err != nil {
				pd.fail(err)
				bad = true
				continue
			}
			if len(items) == 0 {
				pd.fail(pd.Errorf(f.Value, "%s has an empty list of addresses: want at least one", what))
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
			pd.fail(pd.Errorf(f.Node, "%s: %s does not apply to a client: it probes as the root of its own machine; to probe as a host identity, make it a user", what, f.Key))
			bad = true
		default:
			pd.fail(pd.Errorf(f.Node, "unknown key %q in %s: want addresses", f.Key, what))
			bad = true
		}
	}
	if !hasAddresses {
		pd.fail(pd.Errorf(cf.Node, "%s has no addresses: want addresses: [...], inside the network's prefixes", what))
		bad = true
	}
	if bad {
		return c, errReported
	}
	return c, nil
}

func (pd *policyDecoder) clientAddress(n ast.Node, what string, net Network, placeable bool, have []netip.Addr) (netip.Addr, error) {
	s, err := pd.Str(n, "address of "+what)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := value.ParseAddr(s)
	if err != nil {
		return a, pd.Errorf(n, "%s: %v", what, err)
	}
	if a.IsLoopback() {
		return a, pd.Errorf(n, "%s: address %s is loopback: want an address inside the network's prefixes", what, a)
	}
	if !placeable {
		return a, nil // the network's own error is the one to fix
	}
	gw, ok := net.Gateway(Family(a))
	switch {
	case !ok || !gw.Contains(a):
		return a, pd.Errorf(n, "%s: address %s is outside the network's prefixes (%s): a client's address lies inside one of them", what, a, prefixList(net.Addresses))
	case a == gw.Addr():
		return a, pd.Errorf(n, "%s: address %s is the host's own address on the network (the clients' gateway): want another address in %s", what, a, gw.Masked())
	case a == gw.Masked().Addr():
		return a, pd.Errorf(n, "%s: address %s is the network's own address: want a host address in %s", what, a, gw.Masked())
	case a.Is4() && a == value.LastAddr(gw.Masked()):
		return a, pd.Errorf(n, "%s: address %s is the broadcast address of %s: want a host address in it", what, a, gw.Masked())
	case slices.Contains(have, a):
		return a, pd.Errorf(n, "%s: address %s is listed twice", what, a)
	case slices.ContainsFunc(have, func(h netip.Addr) bool { return Family(h) == Family(a) }):
		return a, pd.Errorf(n, "%s: %s is a second %s address: want at most one per family (a client's source in each family is its one address)", what, a, familyName(Family(a)))
	}
	if other, ok := pd.clientAddrs[a]; ok {
		return a, pd.Errorf(n, "%s: address %s already belongs to client %q: want one address per client", what, a, other)
	}
	pd.clientAddrs[a] = what
	return a, nil
}

func prefixList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Masked().String()
	}
	return OrList(s)
}
