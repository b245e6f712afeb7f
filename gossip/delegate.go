package gossip

import (
	"fmt"
	"net"
	"strconv"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-sd/shoal/catalog"
)

// delegate is memberlist's view of Shoal: user messages, push/pull state,
// node metadata, and the checks on peers.
type delegate struct{ g *Gossip }

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
	_ memberlist.AliveDelegate    = (*delegate)(nil)
	_ memberlist.MergeDelegate    = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*events)(nil)
)

// NodeMeta is called by memberlist whenever it announces this node.
func (d *delegate) NodeMeta(limit int) []byte {
	m := NodeMeta{Protocol: ProtocolVersion, Epoch: d.g.store.Epoch(), Datacenter: d.g.dc, Version: d.g.ver, User: d.g.user,
		Digest: d.g.digest.Load()}
	b := EncodeMeta(m)
	if len(b) > limit {
		// The agent checks the user metadata's size at start; without it
		// the rest is short. Peers must still be able to admit this node.
		m.User = nil
		b = EncodeMeta(m)
	}
	return b
}

// NotifyMsg is called from memberlist's packet loop: it must not block. The
// buffer is reused after return, so anything kept is copied (decoding
// copies every string; the re-broadcast copies the bytes).
func (d *delegate) NotifyMsg(buf []byte) {
	d.g.stats.BytesIn.Add(uint64(len(buf)))
	m, err := Decode(buf)
	if err != nil {
		d.g.stats.Malformed.Add(1)
		d.g.log.Warn("dropped a malformed gossip message", "err", err)
		return
	}
	switch m.Type {
	case msgEntry:
		d.g.stats.Received.Add(1)
		ch := d.g.store.Apply(m.Entry)
		if len(ch.Accepted) > 0 {
			// News its origin wrote: it was alive to write it. Copies of
			// known entries still circulating prove nothing.
			d.g.contacts.heard(m.Entry.Origin)
		}
		for _, e := range ch.Accepted {
			// News to us: relay it, since memberlist makes only the origin
			// send a broadcast. Already-known updates stop here, which
			// ends the epidemic.
			d.g.stats.Rebroadcast.Add(1)
			d.g.queueEntry(e, append([]byte(nil), buf...))
		}
		d.g.announceLocal(ch)
	case msgLeave:
		d.g.stats.Received.Add(1)
		if d.g.noteLeave(m.Leave) {
			d.g.stats.Rebroadcast.Add(1)
			d.g.queueMsg(leaveKey(m.Leave.Node), append([]byte(nil), buf...))
		}
	default:
		d.g.stats.Malformed.Add(1)
		d.g.log.Warn("dropped an unexpected gossip message", "type", m.Type)
	}
}

// GetBroadcasts hands memberlist what fits in the packet it is filling.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	msgs := d.g.queue.GetBroadcasts(overhead, limit)
	for _, m := range msgs {
		d.g.stats.BytesOut.Add(uint64(len(m)))
	}
	return msgs
}

// LocalState is this node's side of a push/pull: the whole catalog.
func (d *delegate) LocalState(join bool) []byte {
	b := EncodeSnapshot(d.g.store.Snapshot())
	d.g.stats.BytesOut.Add(uint64(len(b)))
	return b
}

// MergeRemoteState folds in the other side's catalog.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	if len(buf) == 0 {
		return
	}
	d.g.stats.BytesIn.Add(uint64(len(buf)))
	m, err := Decode(buf)
	if err != nil || m.Type != msgSnapshot {
		d.g.stats.Malformed.Add(1)
		d.g.log.Warn("dropped a malformed push/pull state", "err", err, "bytes", len(buf))
		return
	}
	d.g.contacts.heard(m.Snapshot.From)
	d.g.announceLocal(d.g.store.Merge(m.Snapshot))
}

// announceLocal gossips this node's own entries after the catalog moved
// or re-stamped them, and a changed epoch through node metadata (a
// takeover of a node with no services changes only the epoch).
func (g *Gossip) announceLocal(ch catalog.Changes) {
	if len(ch.Local) > 0 {
		g.log.Info("re-announcing local services the cluster held at another version", "services", len(ch.Local))
		g.Broadcast(ch.Local...)
	}
	if epoch := g.store.Epoch(); g.epoch.Swap(epoch) != epoch {
		// UpdateNode takes memberlist locks the caller of this delegate
		// may hold, so the owner of the gossip layer runs it (see
		// MetaChanged).
		select {
		case g.metaChanged <- struct{}{}:
		default: // one pending re-announcement covers this change too
		}
	}
}

// NotifyConflict is called when a node claims a name held at another
// address. On the joining side "existing" is this node itself.
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.g.log.Error("node name conflict", "name", existing.Name, "held_by", addr(existing), "claimed_by", addr(other))
}

// NotifyMerge is called on both sides of a join with the other side's
// member list. The join is refused, with a clear error, if the other side
// holds this node's name for a live agent elsewhere (two agents would
// fight over one name) or includes agents of another datacenter or gossip
// protocol (their catalogs must not mix with ours).
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	ml := d.g.live()
	if ml == nil {
		// memberlist is still starting, so this is not our own join;
		// NotifyAlive still screens every peer that merge would add.
		return nil
	}
	self := ml.LocalNode()
	var err error
	for _, p := range peers {
		if err = d.checkPeer(p); err != nil {
			break
		}
		if p.Name != self.Name || p.State == memberlist.StateDead || p.State == memberlist.StateLeft {
			continue
		}
		if !p.Addr.Equal(self.Addr) || p.Port != self.Port {
			err = fmt.Errorf("%w: node name %q is already in use by a live agent at %s; give this agent another --node name", ErrNameConflict, p.Name, addr(p))
			break
		}
	}
	if err != nil {
		d.g.mu.Lock()
		if d.g.joining > 0 {
			d.g.joinErr = err
		}
		d.g.mu.Unlock()
		d.g.log.Warn("refused to merge with another cluster", "err", err)
	}
	return err
}

// NotifyAlive keeps out nodes that are not Shoal agents of this
// datacenter and protocol.
func (d *delegate) NotifyAlive(peer *memberlist.Node) error { return d.checkPeer(peer) }

func (d *delegate) checkPeer(peer *memberlist.Node) error {
	m, err := DecodeMeta(peer.Meta)
	if err != nil {
		return fmt.Errorf("refusing %s at %s: %w", peer.Name, addr(peer), err)
	}
	if m.Datacenter != d.g.dc {
		return fmt.Errorf("refusing %s at %s: it is in datacenter %q, this agent in %q", peer.Name, addr(peer), m.Datacenter, d.g.dc)
	}
	if m.Protocol != ProtocolVersion {
		return fmt.Errorf("refusing %s at %s: gossip protocol %d, this agent speaks %d", peer.Name, addr(peer), m.Protocol, ProtocolVersion)
	}
	return nil
}

// events turns memberlist's membership events into catalog node states.
type events struct{ g *Gossip }

func (e *events) NotifyJoin(n *memberlist.Node)   { e.g.setNode(n, catalog.StatusAlive) }
func (e *events) NotifyUpdate(n *memberlist.Node) { e.g.setNode(n, catalog.StatusAlive) }
func (e *events) NotifyLeave(n *memberlist.Node) {
	// memberlist does not tell a leave from a failure in this event; the
	// node's own leave announcement does.
	st := catalog.StatusDead
	if e.g.isLeaving(n) {
		st = catalog.StatusLeft
	}
	e.g.setNode(n, st)
}

func (g *Gossip) setNode(n *memberlist.Node, st catalog.NodeStatus) {
	m, _ := DecodeMeta(n.Meta) // NotifyAlive let in only decodable metadata
	if st == catalog.StatusAlive && g.isLeaving(n) {
		// Its alive messages still circulate; its leave is the later news.
		st = catalog.StatusLeft
	}
	g.setPeer(n, st == catalog.StatusAlive)
	switch {
	case n.Name == g.name:
	case st == catalog.StatusAlive:
		g.contacts.add(n.Name)
	case st == catalog.StatusLeft:
		g.forget(n.Name) // a failed node's is kept until it is reaped
	}
	g.store.SetNode(catalog.Node{
		Name:    n.Name,
		Address: n.Addr.String(),
		Port:    int(n.Port),
		Status:  st,
		Epoch:   m.Epoch,
		Meta:    nodeMetaMap(m),
	})
	g.log.Debug("member", "node", n.Name, "addr", addr(n), "status", st.String())
}

// noteLeave records a node's leave announcement and hides its services at
// once. It reports whether the announcement was news (and must be relayed).
func (g *Gossip) noteLeave(l Leave) bool {
	g.mu.Lock()
	if seen, ok := g.leaving[l.Node]; ok && seen >= l.Epoch {
		g.mu.Unlock()
		return false
	}
	g.leaving[l.Node] = l.Epoch
	g.mu.Unlock()
	if l.Node == g.name {
		return true
	}
	ml := g.live()
	if ml == nil {
		return true
	}
	for _, n := range ml.Members() {
		if n.Name == l.Node {
			if m, err := DecodeMeta(n.Meta); err == nil && m.Epoch == l.Epoch {
				g.setNode(n, catalog.StatusLeft)
			}
		}
	}
	return true
}

// isLeaving reports whether the node announced its leave in the epoch its
// metadata shows (a restarted node has a new epoch and is not leaving).
func (g *Gossip) isLeaving(n *memberlist.Node) bool {
	m, err := DecodeMeta(n.Meta)
	if err != nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	epoch, ok := g.leaving[n.Name]
	return ok && epoch == m.Epoch
}

func leaveKey(node string) string { return "leave\x00" + node }

func addr(n *memberlist.Node) string {
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}
