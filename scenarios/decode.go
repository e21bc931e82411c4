package scenarios

import (
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/netip"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"golang.org/x/sys/unix"
)

// policyDecoder builds a Policy from the AST, section by section, in an order
// where every name is defined before it is used.
type policyDecoder struct {
	*decoder
	p     *Policy
	read  func(rel string) ([]byte, error) // a ruleset file, relative to the policy
	users []string                         // names, for lookups and messages
	hosts []string
	owner map[netip.Addr]string // address -> host: the lab serves each address once
	// What networks.go has seen so far: client names (which share the users'
	// namespace) with their network, client addresses, network prefixes.
	clientNames     []string
	clientNetwork   map[string]string
	clientAddrs     map[netip.Addr]string
	networkPrefixes []networkPrefix
	errs            []*Error // every policy error found so far
	// hostNodes and expectNodes place warnings about a host or an entry.
	hostNodes   map[string]ast.Node
	expectNodes []ast.Node
}

// errReported is returned by a part of the decoder that has already recorded
// its errors: its caller goes on with the next part.
var errReported = errors.New("policy error already reported")

// maxReportedErrors bounds the errors of one pass: a file of hostile junk
// gets a screenful, not a flood.
const maxReportedErrors = 20

// fail records a policy error and lets decoding go on, so that one run
// reports every mistake of the file.
func (pd *policyDecoder) fail(err error) {
	var e *Error
	switch {
	case err == nil, errors.Is(err, errReported):
	case errors.As(err, &e):
		pd.errs = append(pd.errs, e)
	default:
		pd.errs = append(pd.errs, &Error{File: pd.file, Msg: err.Error()})
	}
}

// result is nil, the one error, or all of them in file order.
func (pd *policyDecoder) result() error {
	// The policy's own errors first, then those in the files it names.
	slices.SortStableFunc(pd.errs, func(a, b *Error) int {
		if a.File != b.File {
			if a.File == pd.file || b.File == pd.file {
				return map[bool]int{true: -1, false: 1}[a.File == pd.file]
			}
			return strings.Compare(a.File, b.File)
		}
		if a.Line != b.Line {
			if a.Line == 0 || b.Line == 0 { // unplaced last: the first error has a place
				return b.Line - a.Line
			}
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	errs := slices.CompactFunc(pd.errs, func(a, b *Error) bool { return *a == *b })
	switch {
	case len(errs) == 0:
		return nil
	case len(errs) == 1:
		return errs[0]
	case len(errs) > maxReportedErrors:
		more := len(errs) - maxReportedErrors
		errs = append(errs[:maxReportedErrors:maxReportedErrors], &Error{File: pd.file, Msg: fmt.Sprintf("%d more policy errors not shown: fix these first", more)})
	}
	return Errors(errs)
}

func parse(file, defaultName string, data []byte, read func(string) ([]byte, error)) (*Policy, error) {
	if len(data) > maxPolicySize {
		return nil, &Error{File: file, Line: 1, Column: 1, Msg: fmt.Sprintf("policy is %d bytes: want at most %d", len(data), maxPolicySize)}
	}
	d := &decoder{file: file}
	body, err := d.parseYAML(data)
	if err != nil {
		return nil, err
	}
	if body == nil {
		return nil, &Error{File: file, Line: 1, Column: 1, Msg: "empty policy: want version: 1, users, hosts and expect"}
	}
	pd := &policyDecoder{
		decoder:       d,
		p:             &Policy{Name: defaultName, File: file},
		read:          read,
		owner:         map[netip.Addr]string{},
		hostNodes:     map[string]ast.Node{},
		clientNetwork: map[string]string{},
		clientAddrs:   map[netip.Addr]string{},
	}
	pd.fail(pd.decode(body))
	if err := pd.result(); err != nil {
		return nil, err
	}
	pd.p.Warnings = pd.warnings()
	return pd.p, nil
}

var sections = []string{"version", "name", "users", "groups", "hosts", "mx", "lab", "networks", "ruleset", "expect"}

func (pd *policyDecoder) decode(body ast.Node) error {
	// Until the file shows it is meant as a policy (a mapping with a version
	// key), no message quotes it: -f may name any file the caller can read.
	m, ok := pd.resolve(body).(*ast.MappingNode)
	if !ok {
		return pd.errorf(body, "policy: want a mapping of version, users, hosts and expect, found %s", kind(pd.resolve(body)))
	}
	hasVersion := false
	for _, mv := range m.Values {
		if mv != nil {
			k, _ := scalarText(pd.resolve(mv.Key))
			hasVersion = hasVersion || k == "version"
		}
	}
	if !hasVersion {
		return pd.errorf(body, "missing key \"version\": a policy needs version, users, hosts and expect")
	}
	top, err := pd.mapping(body, "policy", false)
	if err != nil {
		return err
	}
	found := map[string]field{}
	for _, f := range top {
		if !slices.Contains(sections, f.key) {
			pd.fail(pd.errorf(f.node, "unknown key %q: want %s", f.key, orList(sections)))
			continue
		}
		found[f.key] = f
	}
	missing, misspelt := false, len(pd.errs) > 0
	for _, key := range []string{"version", "users", "hosts", "expect"} {
		if _, ok := found["networks"]; ok && key == "users" {
			continue // clients are sources enough
		}
		if _, ok := found[key]; !ok {
			missing = true
			if !misspelt { // else the misspelt key is the error to fix
				pd.fail(pd.errorf(body, "missing key %q: a policy needs version, users, hosts and expect", key))
			}
		}
	}
	if missing {
		return errReported // what is there would only add errors about what is not
	}
	steps := []struct {
		key    string
		decode func(field) error
	}{
		{"version", pd.version}, {"name", pd.name}, {"users", pd.decodeUsers}, {"groups", pd.decodeGroups},
		{"hosts", pd.decodeHosts}, {"mx", pd.decodeMX}, {"lab", pd.decodeLab}, {"networks", pd.decodeNetworks},
		{"ruleset", pd.decodeRuleset},
		{"expect", pd.decodeExpect},
	}
	for _, s := range steps {
		f, ok := found[s.key]
		switch {
		case ok:
		case s.key == "lab": // absent, yet its defaults depend on the hosts
			f.node = found["hosts"].node // where to complain if no default fits
		default:
			continue
		}
		pd.fail(s.decode(f))
	}
	if len(pd.errs) > 0 {
		return errReported // coverage of a policy with holes in it says nothing
	}
	if n := pd.p.services(); n > MaxServices {
		return pd.errorf(found["hosts"].node, "the hosts serve %d addresses and ports (each address of a host × each port or port range of it, a socket each): a policy may have at most %d; split it into several policies",
			n, MaxServices)
	}
	if n := pd.p.sizeAtMost(MaxProbes); n > MaxProbes {
		return pd.errorf(found["hosts"].node, "the matrix (%s × each host's addresses × its ports) is %s probes: a policy may have at most %d; split it into several policies, or probe fewer ports or %s",
			sourcesWord(pd.p), probeCount(pd.p), MaxProbes, sourcesWord(pd.p))
	}
	return pd.coverage(found["expect"].node)
}

// probeCount says how many probes p's matrix holds, or that it is more than
// a 64-bit count can say.
func probeCount(p *Policy) string {
	n := new(big.Int)
	for _, h := range p.Hosts {
		ports := new(big.Int)
		for _, r := range h.Ports {
			ports.Add(ports, big.NewInt(int64(r.Len())))
		}
		n.Add(n, ports.Mul(ports, big.NewInt(int64(len(h.Addresses)))))
	}
	return n.Mul(n, big.NewInt(int64(p.sources()))).String()
}

func (pd *policyDecoder) version(f field) error {
	if i, ok := f.value.(*ast.IntegerNode); ok {
		if v := nodeName(i); v != "1" {
			return pd.errorf(f.value, "unsupported version %s: want version: 1", v)
		}
		return nil
	}
	return pd.errorf(f.value, "version: want 1, found %s", describe(f.value))
}

func (pd *policyDecoder) name(f field) error {
	name, err := pd.str(f.value, "name")
	if err != nil {
		return err
	}
	if !policyName.MatchString(name) {
		return pd.errorf(f.value, "invalid name %q: want letters, digits, '.', '_' or '-', at most 63 characters", name)
	}
	pd.p.Name = name
	return nil
}

func (pd *policyDecoder) decodeUsers(f field) error {
	fields, err := pd.mapping(f.value, "users", false)
	if err != nil {
		return err
	}
	if len(fields) == 0 {
		return pd.errorf(f.node, "no users: want at least one identity to probe as")
	}
	uids := map[uint32]string{0: "root"}
	for _, uf := range fields {
		// A user in error still has a name: entries that name it are not
		// wrong because of it.
		pd.users = append(pd.users, uf.key)
		if err := checkAccount("user", uf.key); err != nil {
			pd.fail(pd.errorf(uf.node, "%v", err))
			continue
		}
		u, uidNode, err := pd.user(uf)
		if err != nil {
			pd.fail(err)
			continue
		}
		switch other := uids[u.UID]; {
		case u.Name == "root" && (u.UID != 0 || u.GID != 0):
			pd.fail(pd.errorf(uf.node, "user root must be uid 0, gid 0: the lab's /etc/passwd already holds root"))
			continue
		case other == "root" && u.Name != "root":
			pd.fail(pd.errorf(uidNode, "uid 0 is root's, whom the lab's /etc/passwd already holds: name this user root, or pick another uid"))
			continue
		case other != "" && other != u.Name:
			pd.fail(pd.errorf(uidNode, "uid %d already belongs to user %q: two names for one uid are one identity to the kernel", u.UID, other))
			continue
		}
		uids[u.UID] = u.Name
		pd.p.Users = append(pd.p.Users, u)
	}
	return nil
}

func (pd *policyDecoder) user(uf field) (User, ast.Node, error) {
	u := User{Name: uf.key}
	what := fmt.Sprintf("user %q", u.Name)
	fields, err := pd.mapping(uf.value, what, false)
	if err != nil {
		return u, nil, err
	}
	var uidNode ast.Node
	hasGID, bad := false, false
fieldLoop:
	for _, f := range fields {
		switch f.key {
		case "uid":
			v, err := pd.number(f.value, "uid of "+what, 65535)
			if err != nil {
				pd.fail(err)
				bad = true
				continue
			}
			u.UID, uidNode = uint32(v), f.value
		case "gid":
			v, err := pd.number(f.value, "gid of "+what, 65535)
			if err != nil {
				pd.fail(err)
				bad = true
				continue
			}
			u.GID, hasGID = uint32(v), true
		case "groups":
			items, err := pd.list(f.value, "groups of "+what)
			if err != nil {
				pd.fail(err)
				bad = true
				continue
			}
			for _, item := range items {
				v, err := pd.number(item, "group of "+what, 65535)
				if err == nil && slices.Contains(u.Groups, uint32(v)) {
					err = pd.errorf(item, "gid %d is listed twice in the groups of %s", v, what)
				}
				if err != nil {
					pd.fail(err)
					bad = true
					continue fieldLoop
				}
				u.Groups = append(u.Groups, uint32(v))
			}
		default:
			pd.fail(pd.errorf(f.node, "unknown key %q in %s: want uid, gid or groups", f.key, what))
			bad = true
		}
	}
	if bad {
		return u, nil, errReported
	}
	if uidNode == nil {
		return u, nil, pd.errorf(uf.node, "%s has no uid: want uid: N", what)
	}
	if !hasGID {
		u.GID = u.UID
	}
	return u, uidNode, nil
}

func (pd *policyDecoder) decodeGroups(f field) error {
	fields, err := pd.mapping(f.value, "groups", true)
	if err != nil {
		return err
	}
	named := map[uint32]string{0: "root"}
	var nodes []ast.Node // of each group of pd.p.Groups
	for _, gf := range fields {
		if err := checkAccount("group", gf.key); err != nil {
			pd.fail(pd.errorf(gf.node, "%v", err))
			continue
		}
		v, err := pd.number(gf.value, fmt.Sprintf("gid of group %q", gf.key), 65535)
		if err != nil {
			pd.fail(err)
			continue
		}
		g := Group{Name: gf.key, GID: uint32(v)}
		switch other := named[g.GID]; {
		case g.Name == "root" && g.GID != 0:
			pd.fail(pd.errorf(gf.value, "group root must be gid 0: the lab's /etc/group already holds root"))
			continue
		case other != "" && other != g.Name:
			pd.fail(pd.errorf(gf.value, "gid %d is already named %q: want one name per gid", g.GID, other))
			continue
		}
		named[g.GID] = g.Name
		pd.p.Groups = append(pd.p.Groups, g)
		nodes = append(nodes, gf.node)
	}
	// A user whose gid no group names gets a private group of its own name
	// (SPEC.md); a group of that name with another gid would be ambiguous.
	for i, g := range pd.p.Groups {
		for _, u := range pd.p.Users {
			if u.Name == g.Name && u.GID != g.GID && named[u.GID] == "" {
				pd.fail(pd.errorf(nodes[i], "group %q (gid %d) clashes with the private group of user %q (gid %d): name gid %d in groups, or rename the group",
					g.Name, g.GID, u.Name, u.GID, u.GID))
			}
		}
	}
	return nil
}

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
				fail(pd.errorf(f.value, "served-by: unknown user %q in %s: want one of %s", name, what, orList(pd.users)))
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
	p, err := parsePorts(s)
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
			pd.fail(pd.errorf(mf.value, "mx %q: unknown host %q: want one of hosts: %s", mf.key, host, orList(pd.hosts)))
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
		if slices.ContainsFunc(lab.Addresses, func(p netip.Prefix) bool { return family(p.Addr()) == fam }) {
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
		if family(q.Addr()) == family(p.Addr()) {
			return p, pd.errorf(n, "lab address %s is a second %s address (after %s): want at most one per family", p, family(p.Addr()), q)
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

func (pd *policyDecoder) decodeRuleset(f field) error {
	fields, err := pd.mapping(f.value, "ruleset", true)
	if err != nil {
		return err
	}
	for _, rf := range fields {
		pd.fail(pd.rulesetFile(rf))
	}
	return nil
}

// rulesetFile reads one file of ruleset into the policy.
func (pd *policyDecoder) rulesetFile(rf field) error {
	rs := &pd.p.Ruleset
	var slot **RulesetFile
	switch rf.key {
	case "iptables":
		slot = &rs.IPTables
	case "ip6tables":
		slot = &rs.IP6Tables
	case "nft":
		slot = &rs.NFT
	case "script":
		slot = &rs.Script
	default:
		return pd.errorf(rf.node, "unknown key %q in ruleset: want iptables, ip6tables, nft or script", rf.key)
	}
	rel, err := pd.str(rf.value, "ruleset "+rf.key)
	if err != nil {
		return err
	}
	switch {
	case rel == "":
		return pd.errorf(rf.value, "ruleset %s: empty path: want a file relative to the policy", rf.key)
	case path.IsAbs(rel) || filepath.IsAbs(rel):
		return pd.errorf(rf.value, "ruleset %s: %q is absolute: want a path relative to the policy file", rf.key, rel)
	}
	data, err := pd.read(rel)
	if err != nil {
		return pd.errorf(rf.value, "ruleset %s: %q %s", rf.key, rel, readProblem(err))
	}
	file := &RulesetFile{Path: rel, Data: data}
	if rf.key == "nft" {
		if file.Includes, err = pd.nftIncludes(rf.value, rel, data); err != nil {
			return err
		}
	}
	if err := pd.checkOwners(file); err != nil {
		return err
	}
	*slot = file
	return nil
}

// readProblem says what was wrong with reading a file the policy names,
// without anything of its content.
func readProblem(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist: want a file relative to the policy file"
	case errors.Is(err, unix.ELOOP):
		return "is a chain of too many symbolic links: want a file"
	case errors.Is(err, unix.EISDIR):
		return "is a directory: want a regular file"
	}
	return err.Error()
}

var verbs = []string{string(Allow), string(Deny), string(Drop), string(Reject)}

func (pd *policyDecoder) decodeExpect(f field) error {
	entries, err := pd.list(f.value, "expect")
	if err != nil {
		return err
	}
	for _, e := range entries {
		x, err := pd.expectation(e)
		if err != nil {
			pd.fail(err)
			continue
		}
		pd.p.Expect = append(pd.p.Expect, x)
		pd.expectNodes = append(pd.expectNodes, e)
	}
	return nil
}

func (pd *policyDecoder) expectation(e ast.Node) (Expectation, error) {
	var x Expectation
	if _, ok := e.(*ast.MappingNode); !ok {
		return x, pd.errorf(e, "expect entry: want a verb and what it matches, such as - deny: {port: 25/tcp}, found %s", describe(e))
	}
	fields, err := pd.mapping(e, "expect entry", false)
	if err != nil {
		return x, err
	}
	switch {
	case len(fields) == 0:
		return x, pd.errorf(e, "empty expect entry: want one of %s, such as deny: {}", orList(verbs))
	case len(fields) > 1:
		return x, pd.errorf(fields[1].node, "second verb %q in one expect entry (after %q): want exactly one verb per entry", fields[1].key, fields[0].key)
	case !slices.Contains(verbs, fields[0].key):
		return x, pd.errorf(fields[0].node, "unknown verb %q: want %s", fields[0].key, orList(verbs))
	}
	x.Verb = Verb(fields[0].key)
	x.Line, _ = position(fields[0].node)
	if v := fields[0].value; !isNull(v) {
		if _, ok := v.(*ast.MappingNode); !ok {
			return x, pd.errorf(v, "%s: want a mapping of user, client, host, address, port or family, such as {user: postfix}, found %s", x.Verb, describe(v))
		}
	}
	body, err := pd.mapping(fields[0].value, string(x.Verb), true)
	if err != nil {
		return x, err
	}
	bad := false
	for _, f := range body {
		switch f.key {
		case "user":
			x.Users, err = pd.selectNames(f.value, "user", pd.users)
			err = pd.nameSources(&x, UserSource, f, err)
		case "client":
			x.Clients, err = pd.selectNames(f.value, "client", pd.clientNames)
			err = pd.nameSources(&x, ClientSource, f, err)
		case "address":
			x.Addresses, err = pd.selectAddresses(f.value)
		case "host":
			x.Hosts, err = pd.selectNames(f.value, "host", pd.hosts)
		case "port":
			x.Ports, err = pd.selectPorts(f.value)
		case "family":
			x.Family, err = pd.str(f.value, "family")
			if err == nil && x.Family != "ipv4" && x.Family != "ipv6" {
				err = pd.errorf(f.value, "unknown family %q: want ipv4 or ipv6 (leave family out for both)", x.Family)
			}
		default:
			err = pd.errorf(f.node, "unknown key %q in %s: want user, client, host, address, port or family", f.key, x.Verb)
		}
		if err != nil {
			pd.fail(err)
			bad = true
		}
	}
	if bad {
		return x, errReported
	}
	return x, nil
}

// selectNames reads user or host of an expectation: "*" (nil, any), one
// defined name, or a list of them.
func (pd *policyDecoder) selectNames(n ast.Node, kind string, known []string) ([]string, error) {
	if s, ok := n.(*ast.StringNode); ok && s.Value == "*" {
		return nil, nil
	}
	items := []ast.Node{n}
	if _, ok := n.(*ast.SequenceNode); ok {
		items, _ = pd.list(n, kind)
		if len(items) == 0 {
			return nil, pd.errorf(n, "%s: an empty list matches nothing: want a name, a list of names or \"*\"", kind)
		}
	}
	names := []string{}
	for _, item := range items {
		s, ok := item.(*ast.StringNode)
		switch {
		case !ok:
			return nil, pd.errorf(item, "%s: want a name, a list of names or \"*\", found %s", kind, describe(item))
		case s.Value == "*":
			return nil, pd.errorf(item, "%s: \"*\" inside a list: write %s: \"*\" on its own", kind, kind)
		case !slices.Contains(known, s.Value):
			return nil, pd.errorf(item, "unknown %s %q: want one of %s", kind, s.Value, orList(known))
		case slices.Contains(names, s.Value):
			return nil, pd.errorf(item, "%s %q is listed twice", kind, s.Value)
		}
		names = append(names, s.Value)
	}
	return names, nil
}

// selectPorts reads port of an expectation. A port no host serves is
// allowed: a policy may well deny ports in general.
func (pd *policyDecoder) selectPorts(n ast.Node) ([]PortRange, error) {
	if s, ok := n.(*ast.StringNode); ok && s.Value == "*" {
		return nil, nil
	}
	items := []ast.Node{n}
	if _, ok := n.(*ast.SequenceNode); ok {
		items, _ = pd.list(n, "port")
		if len(items) == 0 {
			return nil, pd.errorf(n, "port: an empty list matches nothing: want a port, a list of ports or \"*\"")
		}
	}
	ports := []PortRange{}
	for _, item := range items {
		if s, ok := item.(*ast.StringNode); ok && s.Value == "*" {
			return nil, pd.errorf(item, "port: \"*\" inside a list: write port: \"*\" on its own")
		}
		p, err := pd.port(item, "port")
		if err != nil {
			return nil, err
		}
		if err := overlap(ports, p); err != "" {
			return nil, pd.errorf(item, "%s", err)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// coverage makes an uncovered probe a policy error: a cell nobody decided is
// a question the run could not answer. It walks the matrix without keeping it.
func (pd *policyDecoder) coverage(at ast.Node) error {
	var missing []string
	total, uncovered := 0, 0
	for pr := range pd.p.Probes() {
		total++
		if pr.Rule < 0 {
			uncovered++
			if len(missing) < 3 {
				missing = append(missing, pr.String())
			}
		}
	}
	if uncovered == 0 {
		return nil
	}
	shown := strings.Join(missing, ", ")
	if uncovered > 3 {
		shown = "e.g. " + shown + ", ..."
	}
	return pd.errorf(at, "no expectation covers %d of %d probes (%s): add entries for them, or end expect with a catch-all such as - deny: {}",
		uncovered, total, shown)
}

// orList writes "a, b or c", at most twelve names.
func orList(names []string) string {
	if len(names) > 12 {
		return strings.Join(names[:12], ", ") + ", ..."
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
