package report

import "github.com/egresslab/egresslab/scenarios/report/shard"

// A shard's plan is package shard's; a report carries it (Report.Shard) and
// Merge checks the shards against it.
type (
	ShardSpec = shard.Spec
	Shard     = shard.Plan
	ShardHost = shard.Host
)
