// Package gossip is Shoal's memberlist adapter: the wire format, the
// broadcast trees' I/O, anti-entropy exchanges, membership events, leaves
// and the checks on peers. It is thin: it decodes what arrives, hands it
// to the Store (the agent's locked catalog) and to the trees
// (gossip/plumtree), and sends what they say.
//
// A write travels along per-origin epidemic broadcast trees over an
// overlay of a few neighbours each (memberlist's own broadcasts reach only
// the origin's gossip targets, and are not used). Anti-entropy compares
// per-origin versions (catalog.Digest) and sends only what a peer lacks;
// it runs when a ping's ack shows a peer serving another catalog, when a
// member joins or comes back, and over memberlist's push/pull. See
// docs/DESIGN.md.
package gossip
