// Package trace names the rule of the candidate's that decided each probe:
// the lab's own nf_tables table egresslab_trace sets nftrace on the probes'
// packets, and a reader takes the kernel's trace reports off a netlink
// socket in the lab's network namespace. It names rules; it never decides a
// probe's verdict (the prober does, from the sentinel's evidence), and a
// trace that disagrees with the verdict says so as Untraced.
//
// The table goes in either on its own (Start) or in a netlink batch another
// part of the lab shares (Queue, then the caller flushes once, then
// Installed): the drop sentinel and the trace table are installed in one
// transaction.
//
// Thread and namespace rules: this package never switches namespaces
// itself; it opens its sockets through netns.Lab.Do and its netlink and
// nftables connections on Lab.NetNSFD, and runs the lab's own listing tools
// through Lab.RunListing. A Trace's reader runs on a goroutine of its own;
// DecideAll and Pace may be called from any goroutine once Stop returned
// (Pace: while probing).
package trace
