// Package classes splits the traffic a loaded ruleset can tell apart into
// classes, for `verify --complete`.
//
// It owns the split: the classes the rules' boundaries make on each
// dimension (uid, gid, destination address, destination port, protocol,
// family; for forwarded traffic, each network's client source addresses),
// and a representative cell of each class. Reading the ruleset as the kernel
// holds it is package listing's (Read here is its entry point), and the
// points, spans and sets of the space package space's. It runs no tool and
// opens no socket: the lab takes the listings and probes the
// representatives.
package classes
