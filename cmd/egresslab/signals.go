package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// interruptGrace is how long a run may take to wind down after SIGINT or
// SIGTERM (its JUnit file, say) before the process exits regardless. Labs
// need no winding down: each dies with this process.
const interruptGrace = 800 * time.Millisecond

// runInterruptible runs fn with a context that SIGINT and SIGTERM cancel. The
// first signal prints "interrupted" and the process exits with 128+signal
// (130, 143) when fn returns or after interruptGrace, whichever is first; a
// second signal exits at once.
func runInterruptible(fn func(ctx context.Context) int) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var interrupted atomic.Int32
	go func() {
		sig := (<-sigs).(syscall.Signal)
		status := 128 + int(sig)
		interrupted.Store(int32(status))
		fmt.Fprintln(os.Stderr, "egresslab: interrupted")
		cancel()
		select {
		case again := <-sigs:
			os.Exit(128 + int(again.(syscall.Signal)))
		case <-time.After(interruptGrace):
			os.Exit(status)
		}
	}()
	status := fn(ctx)
	if s := interrupted.Load(); s != 0 {
		return int(s) // whatever fn made of its cancelled context
	}
	return status
}
