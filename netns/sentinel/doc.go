// Package sentinel owns the lab's evidence: the drop sentinel, the lab's own
// nf_tables table egresslab_sentinel at the very end of the egress path
// (and at the ends of INPUT and OUTPUT for loopback listeners and answers),
// whose sets record each probe's flow where its packets got to. A Sentinel
// answers facts about a flow (Left, Answered, Egress, WhereDropped,
// NeighbourDiscovery) and about the lab host's own state (HostRefusal), and
// removes a probe's evidence before its socket closes (Release, ForgetMark,
// Recycled, AwaitForgotten, AwaitHeldPorts, ForgetErr). It states facts; it
// decides no verdict (the prober does).
//
// The sentinel's table goes in through Queue, in a netlink batch the caller
// shares with the trace table and flushes once; Start then takes it up and
// Check verifies the candidate left it alone (a change is a
// *netns.TamperError).
//
// Thread and namespace rules: this package never switches namespaces
// itself; its netlink and nftables connections are made on the lab's
// namespace descriptor (netns.Lab.NetNSFD) and its query sockets through
// Lab.Do, and all of them may be used from any goroutine. One goroutine per
// Sentinel removes evidence in batches; it and every connection close with
// the lab (Lab.OnClose). A nil *Sentinel (not installed) answers no
// evidence: its questions fail or find nothing.
package sentinel
