package policy

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/goccy/go-yaml/ast"
)

func (pd *policyDecoder) decodeHosts(f field) error {
	fields, err := pd.mapping(f.value, "hosts", false)
	if err != nil {
		return err
	}
	if len(fields) == 0 {
		return pd.errorf(f.node, "no hosts: want at least one destination to probe")
	}
	for _, hf := range fields {
		pd.hosts = append(pd.hosts, hf.key) // named, even when in error
		pd.hostNodes[hf.key] = hf.node
		if err := checkDNSName("host", hf.key); err != nil {
			pd.fail(pd.errorf(hf.node, "%v", err))
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

func (pd *policyDecoder) host(hf field) (Host, error) {
	h := Host{Name: hf.key}
	what := fmt.Sprintf("host %q", h.Name)
	fields, err := pd.mapping(hf.value, what, false)
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
		switch f.key {
		case "addresses":
			hasAddresses = true
			items, err := pd.list(f.value, "addresses of "+what)
			if err != nil {
				fail(err)
				continue
			}
			if len(items) == 0 {
				fail(pd.errorf(f.value, "%s has an empty list of addresses: want at least one", what))
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
			items, err := pd.list(f.value, "ports of "+what)
			if err != nil {
				fail(err)
				continue
			}
			if len(items) == 0 {
				fail(pd.errorf(f.value, "%s has an empty list of ports: want at least one", what))
				continue
			}
			for _, item := range items {
				p, err := pd.port(item, "port of "+what)
				if err != nil {
					fail(err)
					continue
				}
				if err := overlap(h.Ports, p); err != "" {
					fail(pd.errorf(item, "%s in %s", err, what))
					continue
				}
				h.Ports = append(h.Ports, p)
				portNodes = append(portNodes, item)
			}
		case "served-by":
			name, err := pd.str(f.value, "served-by of "+what)
			if err != nil {
				fail(err)
				continue
			}
			if !slices.Contains(pd.users, name) {
				fail(pd.errorf(f.value, "served-by: unknown user %q in %s: want one of %s", name, what, OrList(pd.users)))
				continue fieldLoop
			}
			h.ServedBy, servedByNode = name, f.value
		default:
			fail(pd.errorf(f.node, "unknown key %q in %s: want addresses, ports or served-by", f.key, what))
		}
	}
	if bad {
		return h, errReported
	}
	for _, a := range h.Addresses {
		if servedByNode != nil && !a.IsLoopback() {
			return h, pd.errorf(servedByNode, "served-by in %s: only loopback hosts run on this host (address %s is one hop away, beyond the uplink)", what, a)
		}
	}
	switch {
	case !hasAddresses:
		return h, pd.errorf(hf.node, "%s has no addresses: want addresses: [...]", what)
	case !hasPorts:
		return h, pd.errorf(hf.node, "%s has no ports: want ports: [...]", what)
	}
	for _, dns := range labDNS {
		if !slices.Contains(h.Addresses, dns) {
			continue
		}
		for i, p := range h.Ports {
			if p.First <= 53 && 53 <= p.Last {
				return h, pd.errorf(portNodes[i], "%s serves %s on %s, where the lab's own DNS listens: use another address or port", what, p, dns)
			}
		}
	}
	return h, nil
}

func (pd *policyDecoder) address(n ast.Node, host string) (netip.Addr, error) {
	s, err := pd.str(n, fmt.Sprintf("address of host %q", host))
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := parseAddr(s)
	if err != nil {
		return a, pd.errorf(n, "host %q: %v", host, err)
	}
	switch other, ok := pd.owner[a]; {
	case ok && other == host:
		return a, pd.errorf(n, "address %s is listed twice in host %q", a, host)
	case ok:
		return a, pd.errorf(n, "address %s of host %q already belongs to host %q: the lab serves each address once", a, host, other)
	}
	return a, nil
}

// port reads a port or a range of ports of a host or an expectation: N/tcp,
// N/udp, a bare N, or N-M in any of those forms.
func (pd *policyDecoder) port(n ast.Node, what string) (PortRange, error) {
	var s string
	switch v := n.(type) {
	case *ast.IntegerNode:
		s = nodeName(v)
	case *ast.StringNode:
		s = v.Value
	default:
		return PortRange{}, pd.errorf(n, "%s: want a port such as 25/tcp, 53/udp, 25 or a range such as 1-1024/tcp, found %s", what, describe(n))
	}
	p, err := ParsePorts(s)
	if err != nil {
		return p, pd.errorf(n, "%s: %v", what, err)
	}
	return p, nil
}

// overlap says how p repeats a port of have, or "" when it does not.
func overlap(have []PortRange, p PortRange) string {
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

func (pd *policyDecoder) decodeMX(f field) error {
	fields, err := pd.mapping(f.value, "mx", true)
	if err != nil {
		return err
	}
	for _, mf := range fields {
		if err := checkDNSName("mx domain", mf.key); err != nil {
			pd.fail(pd.errorf(mf.node, "%v", err))
			continue
		}
		host, err := pd.str(mf.value, fmt.Sprintf("mx %q", mf.key))
		if err != nil {
			pd.fail(err)
			continue
		}
		if !slices.Contains(pd.hosts, host) {
			pd.fail(pd.errorf(mf.value, "mx %q: unknown host %q: want one of hosts: %s", mf.key, host, OrList(pd.hosts)))
			continue
		}
		pd.p.MX = append(pd.p.MX, MX{Domain: mf.key, Host: host})
	}
	return nil
}

func (pd *policyDecoder) decodeLab(f field) error {
	lab := Lab{Uplink: "eth0", Backend: "nft"}
	fields, err := pd.mapping(f.value, "lab", true)
	if err != nil {
		return err
	}
	for _, lf := range fields {
		switch lf.key {
		case "uplink":
			s, err := pd.str(lf.value, "lab uplink")
			if err != nil {
				return err
			}
			if err := checkInterface(s); err != nil {
				return pd.errorf(lf.value, "%v", err)
			}
			lab.Uplink = s
		case "addresses":
			items, err := pd.list(lf.value, "lab addresses")
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
			s, err := pd.str(lf.value, "lab backend")
			if err != nil {
				return err
			}
			if s != "nft" && s != "legacy" {
				return pd.errorf(lf.value, "unknown lab backend %q: want nft or legacy", s)
			}
			lab.Backend = s
		default:
			return pd.errorf(lf.node, "unknown key %q in lab: want uplink, addresses or backend", lf.key)
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
			return pd.errorf(f.node, "no default lab address for %s is free of host addresses: set lab.addresses", fam)
		}
		lab.Addresses = append(lab.Addresses, defaultLabAddresses[fam][i])
	}
	pd.p.Lab = lab
	return nil
}

func (pd *policyDecoder) labAddress(n ast.Node, have []netip.Prefix) (netip.Prefix, error) {
	s, err := pd.str(n, "lab address")
	if err != nil {
		return netip.Prefix{}, err
	}
	p, err := parseLabPrefix(s)
	if err != nil {
		return p, pd.errorf(n, "%v", err)
	}
	for _, q := range have {
		if Family(q.Addr()) == Family(p.Addr()) {
			return p, pd.errorf(n, "lab address %s is a second %s address (after %s): want at most one per family", p, Family(p.Addr()), q)
		}
	}
	if h := pd.hostIn(p); h != "" {
		return p, pd.errorf(n, "lab address %s is on the same network as host %q: hosts live one hop away, beyond the uplink; pick another prefix", p, h)
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
