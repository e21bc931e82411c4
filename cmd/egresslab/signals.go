package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// interruptGrace is how long a run may take to wind down after a signal
// (its JUnit file, say) before the process exits regardless. Labs need no
// winding down: each dies with this process.
const interruptGrace = 800 * time.Millisecond

// interruptSignals end a run as an interruption: "interrupted by SIG...",
// exit 128+signal. SIGQUIT is among them so that a run ends as the others
// do, its report written, rather than with Go's goroutine dump and exit 2;
// a GOTRACEBACK in the environment asks for that dump, and gets it.
func interruptSignals() []os.Signal {
	sigs := []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}
	if os.Getenv("GOTRACEBACK") == "" {
		sigs = append(sigs, syscall.SIGQUIT)
	}
	return sigs
}

// atExit holds what must happen however the process ends once a run has
// started (a JUnit file written), including when interruptGrace runs out.
var atExit struct {
	sync.Mutex
	fns []func(interruptedBy string)
}

// onExit registers fn to run once before the process exits on a signal
// that the run did not finish handling in time; fn must be idempotent with
// the run's own ending, which may race it.
func onExit(fn func(interruptedBy string)) {
	atExit.Lock()
	defer atExit.Unlock()
	atExit.fns = append(atExit.fns, fn)
}

func runAtExit(interruptedBy string) {
	atExit.Lock()
	fns := atExit.fns
	atExit.fns = nil
	atExit.Unlock()
	for _, fn := range fns {
		fn(interruptedBy)
	}
}

// interruptedBy is the signal that cancelled the run (0 while none has).
var interruptedBy atomic.Int32

func signalName(sig syscall.Signal) string { return unix.SignalName(sig) }

// runInterruptible runs fn with a context that interruptSignals cancel. The
// first signal prints "interrupted by SIG..." and the process exits with
// 128+signal (129, 130, 131, 143) when fn returns or after interruptGrace,
// whichever is first; a second signal exits at once. Either way the exit
// hooks (onExit) run first.
func runInterruptible(fn func(ctx context.Context) int) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, interruptSignals()...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		sig := (<-sigs).(syscall.Signal)
		status := 128 + int(sig)
		interruptedBy.Store(int32(sig))
		fmt.Fprintf(os.Stderr, "egresslab: interrupted by %s\n", signalName(sig))
		cancel()
		select {
		case again := <-sigs:
			status = 128 + int(again.(syscall.Signal))
		case <-time.After(interruptGrace):
		}
		runAtExit(signalName(sig))
		os.Exit(status)
	}()
	status := fn(ctx)
	if _, s := interruption(); s != 0 {
		return s // whatever fn made of its cancelled context
	}
	return status
}

// interruption is the signal that interrupted the run and the exit status
// it stands for; "" and 0 while none has.
func interruption() (name string, status int) {
	sig := syscall.Signal(interruptedBy.Load())
	if sig == 0 {
		return "", 0
	}
	return signalName(sig), 128 + int(sig)
}
