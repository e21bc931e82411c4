// Package examples holds worked example suites: how to test a ruleset in
// your own Ginkgo suite with egresslab's public API (scenarios.Open and the
// matchers of package suites). Copy a file, change the policy, run
// `go test` as root. `make test` runs them.
package examples
