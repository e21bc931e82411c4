// Package scenarios owns the policy model of SPEC.md: it parses and validates
// policy files, expands them into the probe matrix, compares what the policy
// expects with what the probes observed and renders the results as a truth
// table, JSON or JUnit.
package scenarios

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/egresslab/egresslab/probe"
)

// Policy is a validated policy file (SPEC.md, version 1). Everything in it has
// been checked: names resolve, addresses parse, and every probe of the matrix
// is covered by an expectation.
type Policy struct {
	Name    string // `name`, or the file's base name without extension
	File    string // the path as given to Load or LoadFS, for messages
	Users   []User
	Groups  []Group
	Hosts   []Host
	MX      []MX
	Lab     Lab
	Ruleset Ruleset
	Expect  []Expectation
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
	Ports     []Port
	ServedBy  string // the user its (loopback) listeners run as; "" is root
}

// MX is a mail exchanger record: mail for Domain goes to Host.
type MX struct {
	Domain string
	Host   string
}

// Port is a transport port a host serves.
type Port struct {
	Number uint16
	Proto  string // "tcp" or "udp"
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Number, p.Proto) }

// Lab describes the host's own side of the lab.
type Lab struct {
	Uplink    string         // default "eth0"
	Addresses []netip.Prefix // the host's uplink addresses: one per family, always both (as written, then defaults)
	Backend   string         // iptables flavour: "nft" (default) or "legacy"
}

// Ruleset is the candidate ruleset. Parts are nil when the policy leaves them
// out; they load in field order (SPEC.md).
type Ruleset struct {
	IPTables, IP6Tables, NFT, Script *RulesetFile
}

// RulesetFile is one part of the ruleset, read when the policy was loaded so
// that what is verified is exactly what was validated.
type RulesetFile struct {
	Path string // as written in the policy, relative to the policy file
	Data []byte
}

// Verb is what an expectation demands of a probe.
type Verb string

const (
	Allow  Verb = "allow"  // must connect
	Deny   Verb = "deny"   // must not connect, in any way
	Drop   Verb = "drop"   // must be dropped
	Reject Verb = "reject" // must be refused or rejected
)

// Met reports whether an observed outcome satisfies the verb. A probe error
// meets nothing: it is never read as blocked.
func (v Verb) Met(o probe.Outcome) bool {
	switch v {
	case Allow:
		return o == probe.Connected
	case Deny:
		return o.Blocked()
	case Drop:
		return o == probe.Dropped
	case Reject:
		return o == probe.Refused || o == probe.Rejected
	}
	return false
}

// Expectation is one entry of `expect`. A nil list matches anything.
type Expectation struct {
	Verb   Verb
	Users  []string
	Hosts  []string
	Ports  []Port
	Family string // "" for both, "ipv4" or "ipv6"
	Line   int    // line of the entry in the policy file
}

// Error is a policy error at a place in the policy file. Column (and Line)
// are zero when unknown.
type Error struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e *Error) Error() string {
	switch {
	case e.Line == 0:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Column == 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Load reads and validates the policy file at path. Ruleset paths are
// relative to the file's directory. A policy that cannot be read is a plain
// error wrapping the fs error; anything wrong inside it is an *Error.
func Load(file string) (*Policy, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	dir := filepath.Dir(file)
	read := func(rel string) ([]byte, error) {
		return os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	}
	return parse(file, baseName(filepath.Base(file)), data, read)
}

// LoadFS is Load on a file system such as the embedded catalogue. Ruleset
// paths must stay inside fsys.
func LoadFS(fsys fs.FS, name string) (*Policy, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	dir := path.Dir(name)
	read := func(rel string) ([]byte, error) {
		p := path.Join(dir, rel)
		if !fs.ValidPath(p) {
			return nil, errors.New("the path leaves the policy's file system")
		}
		return fs.ReadFile(fsys, p)
	}
	return parse(name, baseName(path.Base(name)), data, read)
}

func baseName(base string) string {
	if ext := path.Ext(base); ext != base {
		return strings.TrimSuffix(base, ext)
	}
	return base
}
