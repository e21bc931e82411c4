// Package netns owns the lab itself: a user + network + mount + PID + IPC +
// UTS namespace held by a child process of ours (so it dies with us, even on
// SIGKILL), a second network namespace beyond the lab's uplink (the world,
// which owns every non-loopback host address), the lab's private /etc
// overlays, the processes it runs (Command, RunAs, the candidate's tools
// through RunCandidate), sockets made as the lab's identities (Socket, As,
// ProbeThread), a probe's Flow and the next hop towards a destination.
//
// Beside it, netns/ruleset loads rulesets with the real tools, netns/serve
// serves the lab's destinations, netns/sentinel keeps the evidence of where
// probes' packets went, netns/trace names the rule that decided them, and
// netns/nftmatch holds the nft match expressions the lab's own tables share;
// they build on the primitives here (Do, DoWorld, NetNSFD, OnClose,
// WriteFile, RunCandidate, RunListing) and import nothing above netns.
//
// Below it, leaves only this package (and its concern packages) may import:
// netns/internal/holder is the holder process (its setup of the lab, the
// spawn server) and the protocol spoken with it; netns/internal/confine
// keeps a hostile candidate in (the lab's own root, its cgroups or rlimit,
// no inherited descriptor, no ptrace, the holder's stderr relayed clean);
// netns/internal/sndbuf hands the tools SO_SNDBUFFORCE; netns/internal/labca
// is the lab's CA; netns/internal/topology wires the uplink, the world's
// addresses and the networks with their clients. None imports netns.
//
// Thread and namespace rules: this package and the holder's side of
// netns/internal (holder, confine, sndbuf) are the only ones that call setns
// or unshare (tests aside), switch a thread's credentials, or lock OS
// threads. Do and DoWorld run their callback on a locked thread inside the
// namespace and unlock it only if switching back worked (otherwise the
// runtime discards the thread); goroutines the callback starts do not
// inherit the namespace. Sockets, netlink and nftables connections made
// inside (or bound to NetNSFD) belong to the lab and may be used from any
// goroutine afterwards. A closed lab answers ErrClosed, and the commands it
// made end with it.
package netns
