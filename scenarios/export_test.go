package scenarios

import "github.com/egresslab/egresslab/netns/trace"

// RuleSourceOf exposes the replay of a policy's ruleset files to the specs.
func RuleSourceOf(p *Policy, r *trace.Rule) (RuleSource, bool) { return sourcesOf(p).of(r) }
