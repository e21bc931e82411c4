// Package trace names the rule of the candidate's that decided each probe:
// the lab's own nf_tables table egresslab_trace sets nftrace on the probes'
// packets, and a reader takes the kernel's trace reports off a netlink
// socket in the lab's network namespace. It names rules and the kernel's
// verdict on the packet as the trace saw it (a reject rule's is the drop
// that follows its answer); it never judges: the prober decides a probe's
// outcome from the sentinel's evidence, the report says what a reader calls
// the rule's verdict and what it matched that a reader may not expect, and a
// trace that disagrees with the outcome says so as Untraced.
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
