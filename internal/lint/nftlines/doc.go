// Package nftlines finds where the statements of an nft ruleset file start,
// for lint to place what nft reads back on the file's lines.
//
// nft's readback has no line numbers, but it has handles: the kernel numbers
// a table's objects in the order they are created, and nft creates a file's
// rules in the order they are written. So the rules of a table, sorted by
// handle, are that table's rule statements in file order. Find finds where
// each rule statement starts; it only tells statements apart (blocks,
// strings, comments, separators) and leaves their meaning to nft. Where the
// counts disagree (include, delete, replace), lines fall back to the table's.
// It reads text only: no tool, no kernel, no namespace.
package nftlines
