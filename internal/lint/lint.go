// Package lint compares the IPv4 and IPv6 sides of a ruleset statically: no
// lab and no root. The real tools parse the files (they are loaded into a
// throwaway user + network namespace and read back with iptables-save and
// `nft -j list ruleset`); the checks run on what the tools read back, and
// every finding points at the source line that made the rule.
package lint

import (
	"context"
	"fmt"
	"github.com/egresslab/egresslab/netns/ruleset"
	"sort"
	"sync"

	"github.com/egresslab/egresslab/scenarios/policy/rulesetfile"
)

// Kind is what a source file is.
type Kind string

const (
	IPTables  Kind = "iptables"  // iptables-restore input (IPv4)
	IP6Tables Kind = "ip6tables" // ip6tables-restore input (IPv6)
	NFT       Kind = "nft"       // nft -f input
)

// Source is one ruleset file to lint.
type Source struct {
	Kind Kind
	Path string // for messages
	Data []byte
	// Includes are the files an nft source includes, by their paths
	// relative to its directory (rulesetfile.NFTIncludes reads them); nft
	// reads no other file.
	Includes []ruleset.IncludedFile
}

// Options tune a lint run. The zero value uses the iptables-nft flavour and
// knows no owner names but root: the host's own accounts are not those of
// the machine a ruleset is written for, so they are never consulted.
type Options struct {
	Backend       string // iptables flavour: "nft" (default) or "legacy"
	Passwd, Group string // contents for /etc/passwd and /etc/group while the tools parse
	// FamiliesDiffer says the families are meant to differ (a policy that
	// names a family in an expectation): rules, owner matches and drops in
	// one family only are then not findings.
	FamiliesDiffer bool
}

// Check names a kind of finding.
type Check string

const (
	OneFamily       Check = "one-family"        // a rule with no twin in the other family
	OwnerOneFamily  Check = "owner-one-family"  // an owner match with no twin in the other family
	DropOneFamily   Check = "drop-one-family"   // a DROP policy or final drop in one family only
	InetFamilyMatch Check = "inet-family-match" // an ip-only or ip6-only match inside an inet table
	NDBlocked       Check = "ipv6-nd-blocked"   // an IPv6 drop with no ICMPv6 neighbour discovery accept
)

// Finding is one thing lint reports, at a line of a file.
type Finding struct {
	File   string `json:"file"`
	Line   int    `json:"line"` // 0 when no source line made it
	Check  Check  `json:"check"`
	Family string `json:"family"` // the family that has it: "ipv4", "ipv6" or "inet"
	Rule   string `json:"rule"`   // as the tool printed it back
	Msg    string `json:"message"`
	Fix    string `json:"fix"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s: %s\n    %s\n    fix: %s", f.File, f.Line, f.Check, f.Msg, f.Rule, f.Fix)
}

// RulesetError is a file the real tool refused to load.
type RulesetError struct {
	File string
	Line int // 0 when the tool did not say
	Tool string
	Msg  string
}

func (e *RulesetError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Tool, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Tool, e.Msg)
}

// UnavailableError says lint cannot run here, and what to do.
type UnavailableError struct {
	What string
	Fix  string
}

func (e *UnavailableError) Error() string { return fmt.Sprintf("lint needs %s: %s", e.What, e.Fix) }

// Lint loads every source with its real tool, each in a sandbox of its own
// (in parallel), and returns the findings in file and line order. A file
// the tool refuses is a *RulesetError; a machine without user namespaces or
// without the tools gives an *UnavailableError.
func Lint(ctx context.Context, sources []Source, opts Options) ([]Finding, error) {
	if opts.Backend == "" {
		opts.Backend = "nft"
	}
	if opts.Passwd == "" {
		if err := unknownOwners(sources); err != nil {
			return nil, err
		}
		opts.Passwd, opts.Group = "root:x:0:0:root:/root:/bin/sh\n", "root:x:0:\n"
	}
	sb := sandbox{Passwd: opts.Passwd, Group: opts.Group}
	ip := make([]*ipRuleset, len(sources))
	nf := make([]*nftRuleset, len(sources))
	errs := make([]error, len(sources))
	var wg sync.WaitGroup
	for i, src := range sources {
		wg.Go(func() {
			switch src.Kind {
			case IPTables, IP6Tables:
				ip[i], errs[i] = loadIPTables(ctx, sb, src, opts.Backend)
			case NFT:
				nf[i], errs[i] = loadNFT(ctx, sb, src)
			default:
				errs[i] = fmt.Errorf("%s: unknown kind of ruleset %q", src.Path, src.Kind)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	var findings []Finding
	ipSets, nftSets := compact(ip), compact(nf)
	chains := append(ipBaseChains(ipSets), nftBaseChains(nftSets)...)
	if !opts.FamiliesDiffer {
		findings = append(findings, checkIPTables(ipSets)...)
		findings = append(findings, checkNFT(nftSets)...)
		findings = append(findings, checkDrops(chains)...)
	}
	findings = append(findings, checkInet(nftSets)...)
	findings = append(findings, checkND(chains)...)
	sort.SliceStable(findings, func(i, j int) bool {
		a, b := findings[i], findings[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	return findings, nil
}

func compact[T any](xs []*T) []*T {
	var out []*T
	for _, x := range xs {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
}

// unknownOwners refuses an owner match on a name (other than root) when no
// policy says who the users are: the tool would say only "Bad value for
// --uid-owner", or resolve the name on this host, which is not the target.
func unknownOwners(sources []Source) error {
	for _, src := range sources {
		for _, o := range rulesetfile.OwnerNames(src.Data) {
			if o.Name == "root" {
				continue
			}
			what := "user"
			if o.Group {
				what = "group"
			}
			return &RulesetError{File: src.Path, Line: o.Line, Tool: "egresslab lint", Msg: fmt.Sprintf(
				"%s %s: %s %q is not known: lint FILES looks up no names on this host; write the numeric id, or lint -f POLICY, whose users and groups name it",
				o.Option, o.Name, what, o.Name)}
		}
	}
	return nil
}
