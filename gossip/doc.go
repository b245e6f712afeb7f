// Package gossip is Shoal's memberlist adapter: the delegates, the wire
// format, the broadcast queue, push/pull of the catalog and membership
// events. It is thin: it decodes what arrives, hands it to the Store (the
// agent's locked catalog) and re-broadcasts what was news.
//
// memberlist sends a user broadcast only from its origin; receivers are not
// made to relay it. Like Serf, Shoal re-queues every update it had not seen
// before, so an update spreads epidemically to every node.
package gossip
