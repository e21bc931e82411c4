package report

import (
	"github.com/egresslab/egresslab/scenarios/policy"
	"github.com/egresslab/egresslab/scenarios/report/rulesource"
)

// Where a deciding rule was written is package rulesource's; these keep the
// names a result and the run use.
type (
	RuleSource  = rulesource.Source
	RuleSources = rulesource.Sources
)

// SourcesOf replays the policy's ruleset files (rulesource.Read).
func SourcesOf(p *policy.Policy) RuleSources { return rulesource.Read(p) }
