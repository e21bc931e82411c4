// Package listing reads the ruleset as the kernel holds it into rules for
// `verify --complete`: nft's JSON listing, iptables-nft-save for the xt
// matches that listing names only, the legacy save texts nft cannot see, and
// ipset save for the sets legacy rules name. Each rule becomes what it
// matches on each dimension of package space, read once for each way a
// packet meets its chain (the host's own probes out and their answers in, a
// network's forwarded clients and their answers), with the matches that
// cannot be split and those read but not split on. It runs no tool.
package listing
