package policy

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	"github.com/egresslab/egresslab/scenarios/policy/rulesetfile"
	"github.com/egresslab/egresslab/scenarios/policy/yamlnode"
	"github.com/goccy/go-yaml/ast"
)

// policyDecoder builds a Policy from the AST, section by section, in an order
// where every name is defined before it is used.
type policyDecoder struct {
	*yamlnode.Decoder
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
		pd.errs = append(pd.errs, &Error{File: pd.File, Msg: err.Error()})
	}
}

// result is nil, the one error, or all of them in file order.
func (pd *policyDecoder) result() error {
	// The policy's own errors first, then those in the files it names.
	slices.SortStableFunc(pd.errs, func(a, b *Error) int {
		if a.File != b.File {
			if a.File == pd.File || b.File == pd.File {
				return map[bool]int{true: -1, false: 1}[a.File == pd.File]
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
		errs = append(errs[:maxReportedErrors:maxReportedErrors], &Error{File: pd.File, Msg: fmt.Sprintf("%d more policy errors not shown: fix these first", more)})
	}
	return Errors(errs)
}

func parse(file, defaultName string, data []byte, read func(string) ([]byte, error)) (*Policy, error) {
	if len(data) > rulesetfile.MaxPolicySize {
		return nil, &Error{File: file, Line: 1, Column: 1, Msg: fmt.Sprintf("policy is %d bytes: want at most %d", len(data), rulesetfile.MaxPolicySize)}
	}
	d := &yamlnode.Decoder{File: file}
	body, err := d.Parse(data)
	if err != nil {
		return nil, err
	}
	if body == nil {
		return nil, &Error{File: file, Line: 1, Column: 1, Msg: "empty policy: want version: 1, users, hosts and expect"}
	}
	pd := &policyDecoder{
		Decoder:       d,
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
	m, ok := pd.Resolve(body).(*ast.MappingNode)
	if !ok {
		return pd.Errorf(body, "policy: want a mapping of version, users, hosts and expect, found %s", yamlnode.Kind(pd.Resolve(body)))
	}
	hasVersion := false
	for _, mv := range m.Values {
		if mv != nil {
			k, _ := yamlnode.ScalarText(pd.Resolve(mv.Key))
			hasVersion = hasVersion || k == "version"
		}
	}
	if !hasVersion {
		return pd.Errorf(body, "missing key \"version\": a policy needs version, users, hosts and expect")
	}
	top, err := pd.Mapping(body, "policy", false)
	if err != nil {
		return err
	}
	found := map[string]yamlnode.Field{}
	for _, f := range top {
		if !slices.Contains(sections, f.Key) {
			pd.fail(pd.Errorf(f.Node, "unknown key %q: want %s", f.Key, OrList(sections)))
			continue
		}
		found[f.Key] = f
	}
	missing, misspelt := false, len(pd.errs) > 0
	for _, key := range []string{"version", "users", "hosts", "expect"} {
		if _, ok := found["networks"]; ok && key == "users" {
			continue // clients are sources enough
		}
		if _, ok := found[key]; !ok {
			missing = true
			if !misspelt { // else the misspelt key is the error to fix
				pd.fail(pd.Errorf(body, "missing key %q: a policy needs version, users, hosts and expect", key))
			}
		}
	}
	if missing {
		return errReported // what is there would only add errors about what is not
	}
	steps := []struct {
		key    string
		decode func(yamlnode.Field) error
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
			f.Node = found["hosts"].Node // where to complain if no default fits
		default:
			continue
		}
		pd.fail(s.decode(f))
	}
	if len(pd.errs) > 0 {
		return errReported // coverage of a policy with holes in it says nothing
	}
	if n := pd.p.services(); n > MaxServices {
		return pd.Errorf(found["hosts"].Node, "the hosts serve %d addresses and ports (each address of a host × each port or port range of it, a socket each): a policy may have at most %d; split it into several policies",
			n, MaxServices)
	}
	if n := pd.p.sizeAtMost(MaxProbes); n > MaxProbes {
		return pd.Errorf(found["hosts"].Node, "the matrix (%s × each host's addresses × its ports) is %s probes: a policy may have at most %d; split it into several policies, or probe fewer ports or %s",
			sourcesWord(pd.p), probeCount(pd.p), MaxProbes, sourcesWord(pd.p))
	}
	return pd.coverage(found["expect"].Node)
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

func (pd *policyDecoder) version(f yamlnode.Field) error {
	if i, ok := f.Value.(*ast.IntegerNode); ok {
		if v := yamlnode.NodeName(i); v != "1" {
			return pd.Errorf(f.Value, "unsupported version %s: want version: 1", v)
		}
		return nil
	}
	return pd.Errorf(f.Value, "version: want 1, found %s", yamlnode.Describe(f.Value))
}

func (pd *policyDecoder) name(f yamlnode.Field) error {
	name, err := pd.Str(f.Value, "name")
	if err != nil {
		return err
	}
	if !policyName.MatchString(name) {
		return pd.Errorf(f.Value, "invalid name %q: want letters, digits, '.', '_' or '-', at most 63 characters", name)
	}
	pd.p.Name = name
	return nil
}
