package policy

import (
	"fmt"
	"net/netip"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/egresslab/egresslab/netns/ruleset/nftinclude"
	"github.com/egresslab/egresslab/scenarios/policy/rulesetfile"
	"github.com/egresslab/egresslab/scenarios/policy/value"
	"github.com/egresslab/egresslab/scenarios/policy/yamlnode"
	"github.com/goccy/go-yaml/ast"
)

func (pd *policyDecoder) decodeRuleset(f yamlnode.Field) error {
	fields, err := pd.Mapping(f.Value, "ruleset", true)
	if err != nil {
		return err
	}
	for _, rf := range fields {
		pd.fail(pd.rulesetFile(rf))
	}
	return nil
}

// rulesetFile reads one file of ruleset into the policy.
func (pd *policyDecoder) rulesetFile(rf yamlnode.Field) error {
	rs := &pd.p.Ruleset
	var slot **RulesetFile
	switch rf.Key {
	case "iptables":
		slot = &rs.IPTables
	case "ip6tables":
		slot = &rs.IP6Tables
	case "nft":
		slot = &rs.NFT
	case "script":
		slot = &rs.Script
	default:
		return pd.Errorf(rf.Node, "unknown key %q in ruleset: want iptables, ip6tables, nft or script", rf.Key)
	}
	rel, err := pd.Str(rf.Value, "ruleset "+rf.Key)
	if err != nil {
		return err
	}
	switch {
	case rel == "":
		return pd.Errorf(rf.Value, "ruleset %s: empty path: want a file relative to the policy", rf.Key)
	case path.IsAbs(rel) || filepath.IsAbs(rel):
		return pd.Errorf(rf.Value, "ruleset %s: %q is absolute: want a path relative to the policy file", rf.Key, rel)
	}
	data, err := pd.read(rel)
	if err != nil {
		return pd.Errorf(rf.Value, "ruleset %s: %q %s", rf.Key, rel, rulesetfile.Problem(err))
	}
	file := &RulesetFile{Path: rel, Data: data}
	if rf.Key == "nft" {
		if file.Includes, err = pd.nftIncludes(rf.Value, rel, data); err != nil {
			return err
		}
	}
	if err := pd.checkOwners(file); err != nil {
		return err
	}
	*slot = file
	return nil
}

var verbs = []string{string(Allow), string(Deny), string(Drop), string(Reject)}

func (pd *policyDecoder) decodeExpect(f yamlnode.Field) error {
	entries, err := pd.List(f.Value, "expect")
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
		return x, pd.Errorf(e, "expect entry: want a verb and what it matches, such as - deny: {port: 25/tcp}, found %s", yamlnode.Describe(e))
	}
	fields, err := pd.Mapping(e, "expect entry", false)
	if err != nil {
		return x, err
	}
	switch {
	case len(fields) == 0:
		return x, pd.Errorf(e, "empty expect entry: want one of %s, such as deny: {}", OrList(verbs))
	case len(fields) > 1:
		return x, pd.Errorf(fields[1].Node, "second verb %q in one expect entry (after %q): want exactly one verb per entry", fields[1].Key, fields[0].Key)
	case !slices.Contains(verbs, fields[0].Key):
		return x, pd.Errorf(fields[0].Node, "unknown verb %q: want %s", fields[0].Key, OrList(verbs))
	}
	x.Verb = Verb(fields[0].Key)
	x.Line, _ = yamlnode.Position(fields[0].Node)
	if v := fields[0].Value; !yamlnode.IsNull(v) {
		if _, ok := v.(*ast.MappingNode); !ok {
			return x, pd.Errorf(v, "%s: want a mapping of user, client, host, address, port or family, such as {user: postfix}, found %s", x.Verb, yamlnode.Describe(v))
		}
	}
	body, err := pd.Mapping(fields[0].Value, string(x.Verb), true)
	if err != nil {
		return x, err
	}
	bad := false
	for _, f := range body {
		switch f.Key {
		case "user":
			x.Users, err = pd.selectNames(f.Value, "user", pd.users)
			err = pd.nameSources(&x, UserSource, f, err)
		case "client":
			x.Clients, err = pd.selectNames(f.Value, "client", pd.clientNames)
			err = pd.nameSources(&x, ClientSource, f, err)
		case "address":
			x.Addresses, err = pd.selectAddresses(f.Value)
		case "host":
			x.Hosts, err = pd.selectNames(f.Value, "host", pd.hosts)
		case "port":
			x.Ports, err = pd.selectPorts(f.Value)
		case "family":
			x.Family, err = pd.Str(f.Value, "family")
			if err == nil && x.Family != "ipv4" && x.Family != "ipv6" {
				err = pd.Errorf(f.Value, "unknown family %q: want ipv4 or ipv6 (leave family out for both)", x.Family)
			}
		default:
			err = pd.Errorf(f.Node, "unknown key %q in %s: want user, client, host, address, port or family", f.Key, x.Verb)
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
		items, _ = pd.List(n, kind)
		if len(items) == 0 {
			return nil, pd.Errorf(n, "%s: an empty list matches nothing: want a name, a list of names or \"*\"", kind)
		}
	}
	names := []string{}
	for _, item := range items {
		s, ok := item.(*ast.StringNode)
		switch {
		case !ok:
			return nil, pd.Errorf(item, "%s: want a name, a list of names or \"*\", found %s", kind, yamlnode.Describe(item))
		case s.Value == "*":
			return nil, pd.Errorf(item, "%s: \"*\" inside a list: write %s: \"*\" on its own", kind, kind)
		case !slices.Contains(known, s.Value):
			return nil, pd.Errorf(item, "unknown %s %q: want one of %s", kind, s.Value, OrList(known))
		case slices.Contains(names, s.Value):
			return nil, pd.Errorf(item, "%s %q is listed twice", kind, s.Value)
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
		items, _ = pd.List(n, "port")
		if len(items) == 0 {
			return nil, pd.Errorf(n, "port: an empty list matches nothing: want a port, a list of ports or \"*\"")
		}
	}
	ports := []PortRange{}
	for _, item := range items {
		if s, ok := item.(*ast.StringNode); ok && s.Value == "*" {
			return nil, pd.Errorf(item, "port: \"*\" inside a list: write port: \"*\" on its own")
		}
		p, err := pd.port(item, "port")
		if err != nil {
			return nil, err
		}
		if err := value.Repeated(ports, p); err != "" {
			return nil, pd.Errorf(item, "%s", err)
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
	return pd.Errorf(at, "no expectation covers %d of %d probes (%s): add entries for them, or end expect with a catch-all such as - deny: {}",
		uncovered, total, shown)
}

// OrList writes "a, b or c", at most twelve names.
func OrList(names []string) string {
	if len(names) > 12 {
		return strings.Join(names[:12], ", ") + ", ..."
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
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
		items, _ = pd.List(n, "address")
		if len(items) == 0 {
			return nil, pd.Errorf(n, "address: an empty list matches nothing: want an address, a prefix, a list of them or \"*\"")
		}
	}
	var ps []netip.Prefix
	for _, item := range items {
		s, ok := item.(*ast.StringNode)
		switch {
		case !ok:
			return nil, pd.Errorf(item, "address: want an address or prefix such as 2001:db8::25 or 2000::/3, a list of them or \"*\", found %s", yamlnode.Describe(item))
		case s.Value == "*":
			return nil, pd.Errorf(item, "address: \"*\" inside a list: write address: \"*\" on its own")
		}
		p, err := value.ParseSelectPrefix(s.Value)
		if err != nil {
			return nil, pd.Errorf(item, "address: %v", err)
		}
		if slices.Contains(ps, p) {
			return nil, pd.Errorf(item, "address %s is listed twice", p)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// nameSources records which kind of source an expectation names; naming
// both user and client is an error: an entry selects one kind or both.
func (pd *policyDecoder) nameSources(x *Expectation, kind SourceKind, f yamlnode.Field, err error) error {
	if x.Sources != AnySource && x.Sources != kind {
		return pd.Errorf(f.Node, "%s: an entry names user or client, not both: user selects users only, client clients only; leave both out to match every source, or write two entries", x.Verb)
	}
	x.Sources = kind
	return err
}

// nftIncludes is rulesetfile.NFTIncludes for a policy's ruleset: an error also names the
// policy's line that names the nft file.
func (pd *policyDecoder) nftIncludes(at ast.Node, rel string, data []byte) ([]nftinclude.File, error) {
	files, err := rulesetfile.NFTIncludes(pd.read, rel, data)
	if err != nil {
		return nil, pd.Errorf(at, "ruleset nft: %s", err)
	}
	return files, nil
}

// checkOwners makes an owner match on a name the policy does not list a
// policy error at that name in the ruleset file.
func (pd *policyDecoder) checkOwners(file *RulesetFile) error {
	users := append([]string{"root"}, pd.users...)
	groups := []string{"root"}
	named := map[uint32]bool{0: true}
	for _, g := range pd.p.Groups {
		groups = append(groups, g.Name)
		named[g.GID] = true
	}
	for _, u := range pd.p.Users {
		if !named[u.GID] { // a user private group, as the lab's /etc/group has it
			named[u.GID] = true
			groups = append(groups, u.Name)
		}
	}
	dir := filepath.Dir(pd.File)
	bad := false
	check := func(rel string, data []byte) {
		for _, o := range rulesetfile.OwnerNames(data) {
			known, what, section := users, "user", "users"
			if o.Group {
				known, what, section = groups, "group", "groups"
			}
			if slices.Contains(known, o.Name) {
				continue
			}
			bad = true
			pd.fail(&Error{File: filepath.Join(dir, rel), Line: o.Line, Column: o.Column, Msg: fmt.Sprintf(
				"%s %s: no %s %q in the policy: the lab's /etc/%s holds only root and the policy's %s (%s); add %s to %s",
				o.Option, o.Name, what, o.Name, map[bool]string{false: "passwd", true: "group"}[o.Group], section, strings.Join(known, ", "), o.Name, section)})
		}
	}
	check(file.Path, file.Data)
	for _, inc := range file.Includes {
		check(filepath.Join(filepath.Dir(file.Path), inc.Path), inc.Data)
	}
	if bad {
		return errReported
	}
	return nil
}
