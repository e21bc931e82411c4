package scenarios

import "github.com/egresslab/egresslab/netns"

// RuleSourceOf exposes the replay of a policy's ruleset files to the specs.
func RuleSourceOf(p *Policy, r *netns.Rule) (RuleSource, bool) { return sourcesOf(p).of(r) }
