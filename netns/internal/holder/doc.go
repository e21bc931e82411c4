// Package holder is the lab's holder process and the protocol egresslab
// speaks with it. The holder is egresslab's own binary, re-executed by
// netns.New into the lab's fresh namespaces (netns.Init calls Main there):
// it makes the lab's root, /etc files and settings, the world's and the
// clients' network namespaces, reports ready, and then starts and reaps the
// lab's processes on request (spawnserver.go) until egresslab goes away.
// Spawner is egresslab's end of that request socket (spawner.go).
//
// Thread and namespace rules: everything but Spawner runs in the holder,
// inside every namespace of the lab. The holder makes the world's and
// clients' namespaces on locked threads that return to the lab's (a thread
// that cannot is never handed back to the runtime), and starts the lab's
// processes from two locked threads that are never handed back: one carries
// the buffer filter (netns/internal/sndbuf) and starts the lab root's
// processes, the other a user's. Neither has CAP_SYS_PTRACE. Spawner runs in
// egresslab, on any goroutine, and enters no namespace.
package holder
