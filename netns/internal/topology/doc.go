// Package topology wires a lab's links and routes: lo, the uplink between
// the lab and the world beyond it (the world is the lab's router, owning a
// gateway address in each uplink prefix), the addresses the world answers
// for (one by one, or every address at once), and the networks the lab host
// routes for, each a bridge with its clients' veths into it.
//
// Thread and namespace rules: it never enters a namespace; it works through
// netlink handles opened on the namespaces' descriptors (Lab's NetNS,
// WorldNetNS, ClientNetNS), from any goroutine. The namespaces are made and
// held by the lab (netns); this package only adds links, addresses and
// routes to them.
package topology
