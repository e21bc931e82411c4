// Package shard splits a run's cells into the parts of verify --shard K/N
// and says which plan a shard's report belongs to; package report merges the
// shards' reports back into one run's.
//
// A run's cells split into N disjoint shards by a stable hash of each cell's
// identity (user, host, address, port, protocol), never its position: adding a
// host to a policy moves no other cell to another shard, and every machine of
// a CI matrix computes the same split without talking to the others.
package shard
