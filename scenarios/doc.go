// Package scenarios runs a policy (package policy) in a lab and returns a
// Report (package report): orchestration, explaining, from-host plans,
// shards and merging, and the Session a Go suite opens (docs/go-api.md).
// The policy's and the report's names a suite uses are aliased here, so
// scenarios.Load, scenarios.Policy and scenarios.Result keep working.
package scenarios
