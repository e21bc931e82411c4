// Package nftmatch holds the nf_tables match expressions that the lab's own
// tables (the drop sentinel and the trace table) share: header fields, what a
// rule asks of a packet (family, protocol, TCP flags, single transport bytes),
// and loading a concatenated set key into registers the way nft lays it out.
//
// It builds expressions only: it opens no socket, enters no namespace and
// holds no state, so anything may call it from any goroutine.
package nftmatch
