package netns

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// doIn runs fn on a fresh OS thread switched into the network namespace nsFD.
// The thread is unlocked (returned to the runtime) only if switching back to
// its original namespace worked; otherwise the goroutine exits still locked and
// the runtime discards the tainted thread.
func doIn(nsFD int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return // thread stays locked and dies: we do not know its state
		}
		defer unix.Close(orig)
		if err := unix.Setns(nsFD, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter lab network namespace: %w", err)
			runtime.UnlockOSThread()
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("leave lab network namespace: %w", err)
			return // locked thread exits with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// asLabRoot runs fn on a locked thread whose file credentials are the lab's
// root: the lab's private tmpfs accepts only files owned by ids its user
// namespace maps, so files staged there must be created as one of them.
func asLabRoot(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		unix.Setfsgid(int(labIDs.base))
		unix.Setfsuid(int(labIDs.base))
		err := fn()
		unix.Setfsuid(0)
		unix.Setfsgid(0)
		if uid, _ := unix.SetfsuidRetUid(-1); uid == 0 {
			runtime.UnlockOSThread() // otherwise the thread dies with the goroutine
		}
		errc <- err
	}()
	return <-errc
}
