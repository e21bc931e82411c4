package netns

import (
	"errors"

	"github.com/egresslab/egresslab/netns/internal/rootless"
	"golang.org/x/sys/unix"
)

// Rootless labs (netns/internal/rootless starts egresslab as root of a user
// namespace of its own, mapping the caller's id and subordinate ranges):
// every lab is then a child of that namespace, mapping lab id N onto its id
// N, and the rest of egresslab runs as under root.

// rootlessUser is whose subordinate ranges this process's labs map ("" as root).
var rootlessUser string

// Rootless reports whether this process runs its labs rootless.
func Rootless() bool { return rootlessUser != "" }

// RootlessUser is the user whose subordinate ranges the labs map, "" as root.
func RootlessUser() string { return rootlessUser }

// InitRootless runs the second stage of a rootless start when this process
// is one (it never returns), and in the third records the id map. Call it
// first thing in main, before anything closes inherited descriptors (the
// go-ahead pipe is descriptor 3).
func InitRootless() {
	if user, uids, gids, ok := rootless.Init(); ok {
		labIDs = idMap{base: 0, uids: uids, gids: gids}
		rootlessUser = user
	}
}

// StartRootless runs this program again, with the same arguments, as root of
// a user namespace of its own that maps the caller's id and subordinate
// ranges, and returns its exit status once it has exited.
func StartRootless() (int, error) { return rootless.Start(LabIDs - 1) }

// RootlessBPF is err, from making a BPF map or program for what (a port
// range on the lab's loopback: beyond the uplink, rootless labs steer with
// TPROXY instead), as a rootless lab explains it: BPF maps and sk_lookup
// programs need CAP_BPF and CAP_NET_ADMIN on the host, which no user
// namespace gives. Other errors, and any as root, pass as they are.
func RootlessBPF(err error, what string) error {
	if err == nil || !Rootless() || !errors.Is(err, unix.EPERM) {
		return err
	}
	return &UnavailableError{What: "BPF programs for " + what + " (CAP_BPF and CAP_NET_ADMIN on the host)",
		Fix: "rootless, egresslab cannot load them: run egresslab as root for this"}
}
