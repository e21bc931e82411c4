// Package netns owns the lab: a user + network + mount namespace held by a
// child process of ours (so it dies with us, even on SIGKILL), a second network
// namespace beyond the lab's uplink (the world, which owns every non-loopback
// host address), the lab's private /etc overlays, loading rulesets with the
// real tools, the lab-owned drop sentinel, and the lab's DNS and listeners.
//
// It is the only package that calls setns or unshare, switches a thread's
// credentials, or locks OS threads.
package netns
