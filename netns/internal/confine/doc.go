// Package confine is what keeps a hostile candidate (a script running as the
// lab's root) inside its lab and away from the process that runs it: the
// lab's own root (a bounded tmpfs with read-only binds of what tools need,
// pivoted into), its cgroups or rlimit and the bounds a tool hit (Limits),
// no inherited descriptor (CloseInherited), no CAP_SYS_PTRACE
// for the lab's processes, and the holder's stderr relayed cleaned and
// bounded (docs/security.md says what each one stops).
//
// Thread and namespace rules: MakeRoot and CloseInherited run in the holder,
// at its start, before anything of the lab's runs; DropPtraceCapability acts
// on the calling thread only, which must stay locked (the holder's spawning
// threads). New, Limits' methods and RelayHolderStderr run in egresslab, on
// any goroutine, and enter no namespace: they work through /sys/fs/cgroup
// and the holder's /proc/PID/root.
package confine
