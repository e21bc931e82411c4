package main

import (
	"os"

	"github.com/egresslab/egresslab/internal/preflight"
	"github.com/egresslab/egresslab/netns"
)

// rootlessCommands start labs: run by a user, they run rootless.
var rootlessCommands = map[string]bool{"verify": true, "diff": true, "repro": true, "exec": true, "shell": true}

// rootlessFailure is why egresslab, run by a user, could not start
// rootless (nil when it did not try): the lab commands report it, with the
// doctor's advice, as any lab that cannot start.
var rootlessFailure error

// startRootless runs the command again as root of a user namespace of its
// own (netns.StartRootless) when a user runs a command that starts labs, and
// returns its exit status; started is false when it did not (root, another
// command, or rootlessFailure says why not).
func startRootless(args []string) (status int, started bool) {
	if netns.Rootless() {
		uids, gids := netns.MappedIDs()
		preflight.SetRootless(netns.RootlessUser(), int(uids), int(gids))
		return 0, false
	}
	if os.Geteuid() == 0 || !startsLab(args) {
		return 0, false
	}
	status, err := netns.StartRootless()
	if err != nil {
		rootlessFailure = err
		return 0, false
	}
	return status, true
}

// startsLab says whether args run a command that starts labs: its name is
// the first word that is not a flag, and help (-h, --help) starts none.
func startsLab(args []string) bool {
	name := ""
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" {
			return false
		}
		if name == "" && len(a) > 0 && a[0] != '-' {
			name = a
		}
	}
	return rootlessCommands[name]
}
