// Package classes splits the traffic a loaded ruleset can tell apart into
// classes, for `verify --complete`.
//
// It owns reading the ruleset as the kernel holds it (nft's JSON listing,
// iptables-nft-save for the xt matches that listing names only, the legacy
// save texts nft cannot see, and ipset save for the sets legacy rules name),
// the boundaries each rule draws on each dimension (uid, gid, destination
// address, destination port, protocol, family), the classes those boundaries
// make, and a representative cell of each class. It runs no tool and opens no
// socket: the lab takes the listings and probes the representatives.
package classes
