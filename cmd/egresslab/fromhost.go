package main

import (
	"context"
	"errors"

	"github.com/egresslab/egresslab/internal/hostsnap"
	"github.com/egresslab/egresslab/netns"
	"github.com/egresslab/egresslab/scenarios"
)

// verifyHost points p at a snapshot of the running host's rulesets, users
// and interface names (verify --from-host); the host is only read.
func verifyHost(ctx context.Context, p *scenarios.Policy) (*scenarios.Policy, error) {
	if netns.Rootless() {
		// a rootless egresslab sees a network namespace of its own, not the
		// host's: its snapshot would be of an empty ruleset
		return nil, &exitError{code: exitNoLab, err: errors.New("--from-host reads the host's loaded ruleset, which only root may: run `sudo egresslab verify --from-host ...`")}
	}
	snap, err := hostsnap.Take(ctx, hostsnap.Host, "/etc")
	if err != nil {
		return nil, err
	}
	return scenarios.FromHost(p, snap)
}
