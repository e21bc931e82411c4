package scenarios

import (
	"io/fs"

	"github.com/egresslab/egresslab/scenarios/policy"
)

// The policy's names, as a suite writes them (docs/go-api.md): package policy
// owns them; these keep scenarios.Load and scenarios.Policy working.
type (
	Policy      = policy.Policy
	User        = policy.User
	Group       = policy.Group
	Host        = policy.Host
	MX          = policy.MX
	Lab         = policy.Lab
	Port        = policy.Port
	PortRange   = policy.PortRange
	Probe       = policy.Probe
	Ruleset     = policy.Ruleset
	RulesetFile = policy.RulesetFile
	Verb        = policy.Verb
	Expectation = policy.Expectation
	Error       = policy.Error
	Errors      = policy.Errors
	Warning     = policy.Warning
	Network     = policy.Network
	Client      = policy.Client
	SourceKind  = policy.SourceKind
)

// The verbs of an expectation.
const (
	Allow  = policy.Allow
	Deny   = policy.Deny
	Drop   = policy.Drop
	Reject = policy.Reject
)

// The kinds of source an expectation selects.
const (
	AnySource    = policy.AnySource
	UserSource   = policy.UserSource
	ClientSource = policy.ClientSource
)

// Load reads and validates the policy file at file (policy.Load).
func Load(file string) (*Policy, error) { return policy.Load(file) }

// LoadFS is Load on a file system such as an fstest.MapFS (policy.LoadFS).
func LoadFS(fsys fs.FS, name string) (*Policy, error) { return policy.LoadFS(fsys, name) }

// RulesetText is a ruleset part written in code; name stands for the file
// in messages (a tool's error names it and the line).
func RulesetText(name, text string) *RulesetFile { return policy.RulesetText(name, text) }
