// Package catalog is Shoal's service catalog as pure data: nodes, service
// instances versioned by their origin agent, tombstones, merge, snapshots and
// the change index.
//
// The catalog is a deterministic state machine in the manner of etcd's raft:
// it starts no goroutines, never reads the clock (callers pass time in),
// never logs and never touches the network. Every method that changes state
// returns what it changed, so that the caller can gossip it.
//
// Every entry is keyed by (origin node, service ID) and carries a Version
// made of the origin's epoch (one per agent start) and a per-origin counter.
// Only the origin writes its entries, so a Version comparison is all that
// merge needs: merge is a join (commutative, associative, idempotent), and
// any delivery order of any set of updates gives the same catalog.
//
// The catalog is not safe for concurrent use; its owner serialises access.
package catalog
