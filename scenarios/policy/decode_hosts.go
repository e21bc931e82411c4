package policy

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/egresslab/egresslab/scenarios/policy/value"
	"github.com/egresslab/egresslab/scenarios/policy/yamlnode"
	"github.com/goccy/go-yaml/ast"
)

func (pd *policyDecoder) decodeHosts(f yamlnode.Field) error {
	fields, err := pd.Mapping(f.Value, "hosts", false)
	if err != nil {
		return err
	}
	if len(fields) == 0 {
		return pd.Errorf(f.Node, "no hosts: want at least one destination to probe")
	}
	for _, hf := range fields {
		pd.hosts = append(pd.hosts, hf.Key) // named, even when in error
		pd.hostNodes[hf.Key] = hf.Node
		if err := value.CheckDNSName("host", hf.Key); err != nil {
			pd.fail(pd.Errorf(hf.Node, "%v", err))
			continue
		}
		h, err := pd.host(hf)
		if err != nil {
			pd.fail(err)
			continue
		}
		pd.p.Hosts = append(pd.p.Hosts, h)
	}
	return nil
}

func (pd *policyDecoder) host(hf yamlnode.Field) (Host, error) {
	h := Host{Name: hf.Key}
	what := fmt.Sprintf("host %q", h.Name)
	fields, err := pd.Mapping(hf.Value, what, false)
	if err != nil {
		return h, err
	}
	var portNodes []ast.Node
	var servedByNode ast.Node
	var hasAddresses, hasPorts, bad bool
	// fail records an error of one key and goes on with the next.
	fail := func(err error) { pd.fail(err); bad = true }
fieldLoop:
	for _, f := range fields {
		switch f.Key {
		case "addresses":
			hasAddresses = true
			items, err := pd.List(f.Value, "addresses of "+what)
			if err != nil {
				fail(err)
				continue
			}
			if len(items) == 0 {
				fail(pd.Errorf(f.Value, "%s has an empty list of addresses: want at least one", what))
				continue
			}
			for _, item := range items {
				a, err := pd.address(item, h.Name)
				if err != nil {
					fail(err)
					continue
				}
				h.Addresses = append(h.Addresses, a)
				pd.owner[a] = h.Name
			}
		case "ports":
			hasPorts = true
			items, err := pd.List(f.Value, "ports of "+what)
			if err != nil {
				fail(err)
				continue
			}
			if len(items) == 0 {
				fail(pd.Errorf(f.Value, "%s has an empty list of ports: want at least one", what))
				continue
			}
			for _, item := range items {
				p, err := pd.port(item, "port of "+what)
				if err != nil {
					fail(err)
					continue
				}
				if err := value.Repeated(h.Ports, p); err != "" {
					fail(pd.Errorf(item, "%s in %s", err, what))
					continue
				}
				h.Ports = append(h.Ports, p)
				portNodes = append(portNodes, item)
			}
		case "served-by":
			name, err := pd.Str(f.Value, "served-by of "+what)
			if err != nil {
				fail(err)
				continue
			}
			if !slices.Contains(pd.users, name) {
				fail(pd.Errorf(f.Value, "served-by: unknown user %q in %s: want one of %s", name, what, OrList(pd.users)))
				continue fieldLoop
			}
			h.ServedBy, servedByNode = name, f.Value
		default:
			fail(pd.Errorf(f.Node, "unknown key %q in %s: want addresses, ports or served-by", f.Key, what))
		}
	}
	if bad {
		return h, errReported
	}
	for _, a := range h.Addresses {
		if servedByNode != nil && !a.IsLoopback() {
			return h, pd.Errorf(servedByNode, "served-by in %s: only loopback hosts run on this host (address %s is one hop away, beyond the uplink)", what, a)
		}
	}
	switch {
	case !hasAddresses:
		return h, pd.Errorf(hf.Node, "%s has no addresses: want addresses: [...]", what)
	case !hasPorts:
		return h, pd.Errorf(hf.Node, "%s has no ports: want ports: [...]", what)
	}
	for _, dns := range labDNS {
		if !slices.Contains(h.Addresses, dns) {
			continue
		}
		for i, p := range h.Ports {
			if p.First <= 53 && 53 <= p.Last {
				return h, pd.Errorf(portNodes[i], "%s serves %s on %s, where the lab's own DNS listens: use another address or port", what, p, dns)
			}
		}
	}
	return h, nil
}

func (pd *policyDecoder) address(n ast.Node, host string) (netip.Addr, error) {
	s, err := pd.Str(n, fmt.Sprintf("address of host %q", host))
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := value.ParseAddr(s)
	if err != nil {
		return a, pd.Errorf(n, "host %q: %v", host, err)
	}
	switch other, ok := pd.owner[a]; {
	case ok && other == host:
		return a, pd.Errorf(n, "address %s is listed twice in host %q", a, host)
	case ok:
		return a, pd.Errorf(n, "address %s of host %q already belongs to host %q: the lab serves each address once", a, host, other)
	}
	return a, nil
}

// port reads a port or a range of ports of a host or an expectation: N/tcp,
// N/udp, a bare N, or N-M in any of those forms.
func (pd *policyDecoder) port(n ast.Node, what string) (PortRange, error) {
	var s string
	switch v := n.(type) {
	case *ast.IntegerNode:
		s = yamlnode.NodeName(v)
	case *ast.StringNode:
		s = v.Value
	default:
		return PortRange{}, pd.Errorf(n, "%s: want a port such as 25/tcp, 53/udp, 25 or a range such as 1-1024/tcp, found %s", what, yamlnode.Describe(n))
	}
	p, err := value.ParsePorts(s)
	if err != nil {
		return p, pd.Errorf(n, "%s: %v", what, err)
	}
	return p, nil
}

func (pd *policyDecoder) decodeMX(f yamlnode.Field) error {
	fields, err := pd.Mapping(f.Value, "mx", true)
	if err != nil {
		return err
	}
	for _, mf := range fields {
		if err := value.CheckDNSName("mx domain", mf.Key); err != nil {
			pd.fail(pd.Errorf(mf.Node, "%v", err))
			continue
		}
		host, err := pd.Str(mf.Value, fmt.Sprintf("mx %q", mf.Key))
		if err != nil {
			pd.fail(err)
			continue
		}
		if !slices.Contains(pd.hosts, host) {
			pd.fail(pd.Errorf(mf.Value, "mx %q: unknown host %q: want one of hosts: %s", mf.Key, host, OrList(pd.hosts)))
			continue
		}
		pd.p.MX = append(pd.p.MX, MX{Domain: mf.Key, Host: host})
	}
	return nil
}

func (pd *policyDecoder) decodeLab(f yamlnode.Field) error {
	lab := Lab{Uplink: "eth0", Backend: "nft"}
	fields, err := pd.Mapping(f.Value, "lab", true)
	if err != nil {
		return err
	}
	for _, lf := range fields {
		switch lf.Key {
		case "uplink":
			s, err := pd.Str(lf.Value, "lab uplink")
			if err != nil {
				return err
			}
			if err := value.CheckInterface(s); err != nil {
				return pd.Errorf(lf.Value, "%v", err)
			}
			lab.Uplink = s
		case "addresses":
			items, err := pd.List(lf.Value, "lab addresses")
			if err != nil {
				return err
			}
			for _, item := range items {
				p, err := pd.labAddress(item, lab.Addresses)
				if err != nil {
					return err
				}
				lab.Addresses = append(lab.Addresses, p)
			}
		case "backend":
			s, err := pd.Str(lf.Value, "lab backend")
			if err != nil {
				return err
			}
			if s != "nft" && s != "legacy" {
				return pd.Errorf(lf.Value, "unknown lab backend %q: want nft or legacy", s)
			}
			lab.Backend = s
		default:
			return pd.Errorf(lf.Node, "unknown key %q in lab: want uplink, addresses or backend", lf.Key)
		}
	}
	// A family the file leaves out still needs an uplink address: take the
	// first default whose prefix holds no host, so every host stays one hop away.
	for _, fam := range []string{"ipv4", "ipv6"} {
		if slices.ContainsFunc(lab.Addresses, func(p netip.Prefix) bool { return Family(p.Addr()) == fam }) {
			continue
		}
		i := slices.IndexFunc(defaultLabAddresses[fam], func(p netip.Prefix) bool { return pd.hostIn(p) == "" })
		if i < 0 {
			return pd.Errorf(f.Node, "no default lab address for %s is free of host addresses: set lab.addresses", fam)
		}
		lab.Addresses = append(lab.Addresses, defaultLabAddresses[fam][i])
	}
	pd.p.Lab = lab
	return nil
}

func (pd *policyDecoder) labAddress(n ast.Node, have []netip.Prefix) (netip.Prefix, error) {
	s, err := pd.Str(n, "lab address")
	if err != nil {
		return netip.Prefix{}, err
	}
	p, err := value.ParseLabPrefix(s)
	if err != nil {
		return p, pd.Errorf(n, "%v", err)
	}
	for _, q := range have {
		if Family(q.Addr()) == Family(p.Addr()) {
			return p, pd.Errorf(n, "lab address %s is a second %s address (after %s): want at most one per family", p, Family(p.Addr()), q)
		}
	}
	if h := pd.hostIn(p); h != "" {
		return p, pd.Errorf(n, "lab address %s is on the same network as host %q: hosts live one hop away, beyond the uplink; pick another prefix", p, h)
	}
	return p, nil
}

// hostIn names a host with an address inside the prefix, in file order.
func (pd *policyDecoder) hostIn(p netip.Prefix) string {
	p = p.Masked()
	for _, h := range pd.p.Hosts {
		for _, a := range h.Addresses {
			if p.Contains(a) {
				return h.Name
			}
		}
	}
	return ""
}
