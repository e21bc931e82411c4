// Package policy is the policy file (docs/policy.md): it parses, validates
// and expands it into the probe matrix. It knows no lab and no probe: what a
// probe observed and how it compares is package report's.
package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"path/filepath"
	"strings"

	"github.com/egresslab/egresslab/netns/ruleset/nftinclude"
	"github.com/egresslab/egresslab/scenarios/policy/rulesetfile"
	"github.com/egresslab/egresslab/scenarios/policy/value"
	"github.com/egresslab/egresslab/scenarios/policy/yamlnode"
)

// Policy is a validated policy file (docs/policy.md, version 1). Everything in it has
// been checked: names resolve, addresses parse, and every probe of the matrix
// is covered by an expectation.
type Policy struct {
	Name     string // `name`, or the file's base name without extension
	File     string // the path as given to Load or LoadFS, for messages
	Users    []User
	Groups   []Group
	Hosts    []Host
	MX       []MX
	Lab      Lab
	Networks []Network // the networks it routes for, with their clients
	Ruleset  Ruleset
	Expect   []Expectation
	// Warnings are what loading found suspicious but valid, in file order.
	Warnings []Warning
}

// User is an identity probes run as.
type User struct {
	Name   string
	UID    uint32
	GID    uint32   // defaults to UID
	Groups []uint32 // supplementary gids
}

// Group is an extra group name the ruleset may use.
type Group struct {
	Name string
	GID  uint32
}

// Host is a name the lab's DNS answers, with every address it resolves to
// and the ports each of those addresses serves.
type Host struct {
	Name      string
	Addresses []netip.Addr
	Ports     []PortRange // disjoint; a single port is a range of one
	ServedBy  string      // the user its (loopback) listeners run as; "" is root
}

// Port is a transport port a host serves, such as 25/tcp (package value).
type Port = value.Port

// PortRange is the ports First to Last (inclusive) of one protocol, as a
// host or an expectation writes them (package value).
type PortRange = value.PortRange

// MX is a mail exchanger record: mail for Domain goes to Host.
type MX struct {
	Domain string
	Host   string
}

// User returns the policy's user called name.
func (p *Policy) User(name string) (User, bool) {
	for _, u := range p.Users {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

// WithRuleset returns a copy of p whose candidate is rs: the same users,
// hosts and expectations against another ruleset (a fix, or one broken on
// purpose).
func (p *Policy) WithRuleset(rs Ruleset) *Policy {
	q := *p
	q.Ruleset = rs
	return &q
}

// RulesetText is a ruleset part written in code; name stands for the file
// in messages (a tool's error names it and the line).
func RulesetText(name, text string) *RulesetFile {
	return &RulesetFile{Path: name, Data: []byte(text)}
}

// Lab describes the host's own side of the lab.
type Lab struct {
	Uplink    string         // default "eth0"
	Addresses []netip.Prefix // the host's uplink addresses: one per family, always both (as written, then defaults)
	Backend   string         // iptables flavour: "nft" (default) or "legacy"
}

// Ruleset is the candidate ruleset. Parts are nil when the policy leaves them
// out; they load in field order (docs/policy.md).
type Ruleset struct {
	IPTables, IP6Tables, NFT, Script *RulesetFile
}

// RulesetFile is one part of the ruleset, read when the policy was loaded so
// that what is verified is exactly what was validated.
type RulesetFile struct {
	Path string // as written in the policy, relative to the policy file
	Data []byte
	// Includes are the files an nft ruleset includes, by their paths relative
	// to its directory, read under the same rules as the ruleset itself.
	Includes []nftinclude.File
}

// Verb is what an expectation demands of a probe.
type Verb string

const (
	Allow  Verb = "allow"  // must connect
	Deny   Verb = "deny"   // must not connect, in any way
	Drop   Verb = "drop"   // must be dropped
	Reject Verb = "reject" // must be refused or rejected
)

// Expectation is one entry of `expect`. A nil list matches anything.
type Expectation struct {
	Verb Verb
	// Sources is the kind of source the entry names: naming user selects
	// users only (even user: "*"), naming client clients only.
	Sources   SourceKind
	Users     []string
	Clients   []string
	Hosts     []string
	Addresses []netip.Prefix // destination addresses; an address is a full-length prefix
	Ports     []PortRange    // disjoint
	Family    string         // "" for both, "ipv4" or "ipv6"
	Line      int            // line of the entry in the policy file
}

// Error is a policy error at a place in a policy file (or a file it names).
type Error = yamlnode.Error

// Errors is every policy error one pass over a file found, in file order.
type Errors = yamlnode.Errors

// Warning is something a valid policy probably did not mean: an expectation
// that selects no probe, a host with addresses of one family only. It fails
// nothing; verify and lint print it on stderr.
type Warning struct {
	File   string
	Line   int
	Column int
	Msg    string
	// MissingFamily is "ipv4" or "ipv6" when the warning is a host that has
	// no address of that family: --parity has nothing to compare there.
	MissingFamily string
	Host          string // the host of a MissingFamily warning
}

func (w Warning) String() string {
	return (&Error{File: w.File, Line: w.Line, Column: w.Column, Msg: "warning: " + w.Msg}).Error()
}

// Load reads and validates the policy file at path. Ruleset paths are
// relative to the file's directory and must stay inside its tree. A policy
// that cannot be read is a plain error wrapping the fs error; anything wrong
// inside it, or with a file it names, is an *Error, or Errors when there is
// more than one.
func Load(file string) (*Policy, error) {
	data, err := rulesetfile.ReadPolicy(file)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("read policy: %w", err)
		}
		return nil, fileError(file, err)
	}
	dir := filepath.Dir(file)
	read := func(rel string) ([]byte, error) { return rulesetfile.Read(dir, rel) }
	return parse(file, baseName(filepath.Base(file)), data, read)
}

// LoadFS is Load on a file system such as the embedded catalogue. Ruleset
// paths must stay inside fsys.
func LoadFS(fsys fs.FS, name string) (*Policy, error) {
	data, err := rulesetfile.ReadFS(fsys, name, rulesetfile.MaxPolicySize, "policy")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("read policy: %w", err)
		}
		return nil, fileError(name, err)
	}
	dir := path.Dir(name)
	read := func(rel string) ([]byte, error) {
		p := path.Join(dir, rel)
		if !fs.ValidPath(p) {
			return nil, rulesetfile.ErrLeavesTree
		}
		return rulesetfile.ReadFS(fsys, p, rulesetfile.MaxSize, "ruleset file")
	}
	return parse(name, baseName(path.Base(name)), data, read)
}

// fileError is a policy file that is no file to read as a policy; one too
// large is placed at its start.
func fileError(file string, err error) *Error {
	e := &Error{File: file, Msg: "policy " + err.Error()}
	var tl *rulesetfile.TooLargeError
	if errors.As(err, &tl) {
		e.Line, e.Column = 1, 1
	}
	return e
}

func baseName(base string) string {
	if ext := path.Ext(base); ext != base {
		return strings.TrimSuffix(base, ext)
	}
	return base
}
