package main

import (
	"context"

	"github.com/egresslab/egresslab/internal/hostsnap"
	"github.com/egresslab/egresslab/scenarios"
)

// verifyHost points p at a snapshot of the running host's rulesets, users
// and interface names (verify --from-host); the host is only read.
func verifyHost(ctx context.Context, p *scenarios.Policy) (*scenarios.Policy, error) {
	snap, err := hostsnap.Take(ctx, hostsnap.Host, "/etc")
	if err != nil {
		return nil, err
	}
	return scenarios.FromHost(p, snap)
}
