package lint

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/egresslab/egresslab/scenarios/policy"
	"github.com/egresslab/egresslab/scenarios/policy/rulesetfile"
)

// FromPolicy lints a policy's ruleset as the lab would load it: its iptables
// flavour, and its own users and groups for owner names. A policy that names
// a family in an expectation means its families to differ (as verify
// --parity reads it), so lint then leaves one-family rules alone. A script is a
// program, not a ruleset: it is named in skipped, and verify runs it.
func FromPolicy(p *policy.Policy) (sources []Source, opts Options, skipped []string) {
	rs := p.Ruleset
	for _, part := range []struct {
		kind Kind
		file *policy.RulesetFile
	}{{IPTables, rs.IPTables}, {IP6Tables, rs.IP6Tables}, {NFT, rs.NFT}} {
		if part.file != nil {
			sources = append(sources, Source{Kind: part.kind, Path: policyRelative(p, part.file.Path), Data: part.file.Data, Includes: part.file.Includes})
		}
	}
	if rs.Script != nil {
		skipped = append(skipped, fmt.Sprintf("%s: a script is a program, not a ruleset: lint does not run it (verify runs it in the lab)",
			policyRelative(p, rs.Script.Path)))
	}
	opts = Options{Backend: p.Lab.Backend}
	for _, x := range p.Expect {
		opts.FamiliesDiffer = opts.FamiliesDiffer || x.Family != ""
	}
	opts.Passwd, opts.Group = etcFiles(p)
	return sources, opts, skipped
}

func policyRelative(p *policy.Policy, rel string) string {
	return filepath.Join(filepath.Dir(p.File), filepath.FromSlash(rel))
}

// etcFiles writes passwd and group as the lab has them (SPEC.md): root, the
// users, the groups, and a private group for each user whose gid no group names.
func etcFiles(p *policy.Policy) (passwd, group string) {
	var pw, gr strings.Builder
	pw.WriteString("root:x:0:0:root:/root:/bin/sh\n")
	gr.WriteString("root:x:0:\n")
	named := map[uint32]bool{0: true}
	for _, g := range p.Groups {
		named[g.GID] = true
		fmt.Fprintf(&gr, "%s:x:%d:\n", g.Name, g.GID)
	}
	for _, u := range p.Users {
		fmt.Fprintf(&pw, "%s:x:%d:%d::/nonexistent:/usr/sbin/nologin\n", u.Name, u.UID, u.GID)
		if !named[u.GID] {
			named[u.GID] = true
			fmt.Fprintf(&gr, "%s:x:%d:\n", u.Name, u.GID)
		}
	}
	return pw.String(), gr.String()
}

// FromFiles reads ruleset files named on the command line. Each is
// KIND:PATH (iptables, ip6tables or nft) or a PATH whose kind shows: nft
// syntax, or iptables-restore input whose name says v6/ip6/ipv6 (else IPv4,
// as iptables-persistent's rules.v4 and rules.v6). Lint runs as root in CI on
// files a pull request brings, so each is read as verify reads a policy's
// ruleset (rulesetfile.ReadNamed): a regular file of at most 16 MiB,
// never a symbolic link out of its own directory, and an nft file's includes
// only from beside it or below it.
func FromFiles(args []string) ([]Source, error) {
	var out []Source
	for _, arg := range args {
		kind, path := Kind(""), arg
		if k, p, ok := strings.Cut(arg, ":"); ok && (k == string(IPTables) || k == string(IP6Tables) || k == string(NFT)) {
			kind, path = Kind(k), p
		}
		isNFT := func(data []byte) bool {
			if kind == "" {
				kind = guessKind(path, data)
			}
			return kind == NFT
		}
		data, includes, err := rulesetfile.ReadNamed(path, isNFT)
		if err != nil {
			return nil, err
		}
		out = append(out, Source{Kind: kind, Path: path, Data: data, Includes: includes})
	}
	return out, nil
}

func guessKind(path string, data []byte) Kind {
	for _, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if line[0] != '*' && line[0] != ':' && line[0] != '-' && line[0] != '[' {
			return NFT
		}
		break
	}
	base := strings.ToLower(filepath.Base(path))
	if strings.Contains(base, "v6") || strings.Contains(base, "ip6") || strings.Contains(base, "ipv6") {
		return IP6Tables
	}
	return IPTables
}
