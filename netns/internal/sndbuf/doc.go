// Package sndbuf hands a lab's tools SO_SNDBUFFORCE and SO_RCVBUFFORCE,
// which the lab's root may not set itself: a seccomp filter on the holder's
// thread that starts the lab root's processes passes those two setsockopt
// calls to egresslab, which sets the buffer on the tool's socket, bounded.
//
// Thread and namespace rules: InstallFilter runs in the holder, on the
// locked thread whose forks are to carry the filter (it is never returned
// to the runtime). Serve runs in egresslab, on any goroutine, for the lab's
// life; it enters the lab's network namespace only through the inLab it is
// given, once, for its socket-diagnostics socket.
package sndbuf
