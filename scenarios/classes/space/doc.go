// Package space is the space of cells `verify --complete` splits into
// classes: the families and protocols, and on each dimension (uid, gid,
// port, address) its points, closed spans and sets of spans with the
// arithmetic the readers and the split share. It knows no ruleset.
package space
