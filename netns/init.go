package netns

import (
	"os"
	"sync/atomic"

	"github.com/egresslab/egresslab/netns/internal/confine"
	"github.com/egresslab/egresslab/netns/internal/holder"
)

// The holder is this same binary, re-executed by New into a fresh user +
// network + mount namespace, where Init hands it to netns/internal/holder. It
// overlays the lab's /etc files, creates the world's network namespace,
// reports ready and then does nothing but hold the namespaces until its
// parent goes away (its stdin closes, or the parent's death signal kills it).
// Everything of the lab dies with it.
const holderEnv = "EGRESSLAB_LAB_HOLDER"

// initCalled records that Init ran: without it, a re-executed binary would
// run its whole main (or test suite) inside the lab instead of holding it.
var initCalled atomic.Bool

// Init runs the lab holder when this process was started as one, and then
// exits; otherwise it returns at once. Every program that opens labs calls it
// first thing in main (tests: in TestMain), the way moby's reexec.Init works:
// there is no package init that would turn an importer's binary into a holder.
func Init() {
	initCalled.Store(true)
	if os.Getenv(holderEnv) == "" {
		return
	}
	holder.Main()
}

// CloseInheritedFiles closes every descriptor above 2 that this process
// inherited without close-on-exec (`egresslab verify 9>>/root/file`), so
// that nothing started later (a lab, or anything inside it) can get one.
// Descriptors this program opened itself are close-on-exec, as Go opens
// everything, and stay: the Go runtime holds some from before main (its
// cgroup CPU limit files), so a blind close_range would pull them from
// under it. Programs that open labs call it first thing in main, before
// Init (a test binary only where go test passes it nothing: fuzzing workers
// talk to their coordinator over inherited descriptors).
func CloseInheritedFiles() {
	if os.Getenv(holderEnv) != "" {
		confine.CloseInherited(holder.SpawnFD) // a holder keeps what its parent passed
		return
	}
	confine.CloseInherited(-1)
}
