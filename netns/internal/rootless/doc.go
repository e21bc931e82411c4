// Package rootless starts egresslab without root: it re-executes the
// binary, once, as root of a user namespace of its own (and a network
// namespace, so threads that entered a lab can come back), whose ids are the
// caller's (0) and the caller's ranges of /etc/subuid and /etc/subgid
// (1..count), written by the setuid helpers newuidmap and newgidmap.
//
// Thread and namespace rules: Start forks from a locked thread (the child's
// death signal fires when that thread exits) and changes no namespace of its
// own process; Init runs first thing in main, before any other goroutine
// matters, and either executes the binary again or returns.
package rootless
