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
	m := NodeMeta{Protocol: d.g.protoMax, MinProtocol: ProtocolMin, Epoch: d.g.store.Epoch(), Datacenter: d.g.dc,
		Version: d.g.ver, User: d.g.user, Gen: d.g.gen.Load()}
	b := EncodeMeta(m)
	if len(b) > limit {
		// The agent checks the user metadata's size at start; without it
		// the rest is short. Peers must still be able to admit this node.
		m.User = nil
		b = EncodeMeta(m)
	}
	return b
}

// NotifyMsg is called from memberlist's packet loop and its stream
// handlers. It must not block: it sends only UDP packets itself, and
// hands TCP transfers to the layer's senders. The buffer is not kept past
// the call (decoding copies every string).
func (d *delegate) NotifyMsg(buf []byte) { d.g.handle(buf, false) }

// GetBroadcasts is memberlist's broadcast queue: Shoal sends its own
// messages directly along its trees, and queues nothing here.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState is this node's side of a push/pull: at a join its digest
// (each side then sends the other what it lacks: the whole catalog, to a
// new node), else its summary by bucket (each side then sends the other
// the digest of the buckets that differ, usually none). Neither grows
// with the catalog.
func (d *delegate) LocalState(join bool) []byte {
	b := newMessage(ProtocolMin, d.g.name)
	if join {
		b.digest(d.g.store.Digest(), 0)
	} else {
		bs := d.g.store.Buckets()
		b.buckets(&bs, false)
	}
	d.g.stats.BytesOut.Add(uint64(b.len()))
	return b.b
}

// MergeRemoteState handles the other side's digest: each side sends the
// other what it lacks.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	if len(buf) == 0 {
		return
	}
	d.g.handle(buf, true)
}

// NotifyConflict is called when a node claims a name held at another
// address. On the joining side "existing" is this node itself.
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.g.log.Error("node name conflict", "name", existing.Name, "held_by", addr(existing), "claimed_by", addr(other))
}

// NotifyMerge is called on both sides of a join with the other side's
// member list. The join is refused, with a clear error, if the other side
// holds the name of a live member of this side (this node's included) for
// an agent at another address: two agents would fight over one name, and
// the one already here keeps it. A join that includes agents of another
// datacenter or with no protocol version in common is refused too.
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	ml := d.g.live()
	if ml == nil {
		// memberlist is still starting, so this is not our own join;
		// NotifyAlive still screens every peer that merge would add.
		return nil
	}
	selfAddr, selfPort := d.g.Advertised()
	var err error
	for _, p := range peers {
		if err = d.checkPeer(p); err != nil {
			break
		}
		if p.State == memberlist.StateDead || p.State == memberlist.StateLeft {
			continue
		}
		held, ok := selfAddr, p.Name == d.g.name
		port := selfPort
		if !ok {
			d.g.mu.Lock()
			if m := d.g.members[p.Name]; m != nil {
				held, port, ok = m.node.Addr, m.node.Port, true
			}
			d.g.mu.Unlock()
		}
		if ok && (!p.Addr.Equal(held) || p.Port != port) {
			err = fmt.Errorf("%w: node name %q is already in use by a live agent at %s; give the agent at %s another --node name",
				ErrNameConflict, p.Name, net.JoinHostPort(held.String(), strconv.Itoa(int(port))), addr(p))
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
	if lo, hi := m.Protocols(); hi < ProtocolMin || lo > d.g.protoMax {
		return fmt.Errorf("refusing %s at %s: it speaks gossip protocol %s, this agent %s (upgrade it: agents of protocol 2 cannot join agents of 3)",
			peer.Name, addr(peer), protoRange(lo, hi), protoRange(ProtocolMin, d.g.protoMax))
	}
	return nil
}

func protoRange(lo, hi uint8) string {
	if lo == hi {
		return strconv.Itoa(int(lo))
	}
	return fmt.Sprintf("%d to %d", lo, hi)
}

// events turns memberlist's membership events into catalog node states.
type events struct{ g *Gossip }

// NotifyJoin is a new member, or one back from the dead. With one back,
// this agent exchanges at once what each lacks of the other's own writes.
// A new member needs nothing of that: it gets the catalog from its seed's
// push/pull, and its own writes travel the trees (a thousand agents
// reconciling with every newcomer would bury it). A node joining through
// this agent's own Join gets everything from the seed's push/pull too.
func (e *events) NotifyJoin(n *memberlist.Node) {
	e.g.mu.Lock()
	returning := e.g.seen[n.Name] && e.g.joining == 0
	e.g.mu.Unlock()
	e.g.setNode(n, catalog.StatusAlive)
	if returning {
		e.g.reconcileSoon(n.Name)
	}
}

// NotifyUpdate is a member's new metadata: a restart or a take-over (a
// new epoch), or a refuted leave.
func (e *events) NotifyUpdate(n *memberlist.Node) {
	e.g.setNode(n, catalog.StatusAlive)
	e.g.reconcileSoon(n.Name)
}

// NotifyLeave is a member gone: failed, or left if it announced so.
// (memberlist does not tell the two apart in this event.)
func (e *events) NotifyLeave(n *memberlist.Node) {
	st := catalog.StatusDead
	if m, err := DecodeMeta(n.Meta); err == nil && e.g.isLeaving(n.Name, m) {
		st = catalog.StatusLeft
	}
	e.g.setNode(n, st)
}

func (g *Gossip) setNode(n *memberlist.Node, st catalog.NodeStatus) {
	m, _ := DecodeMeta(n.Meta) // NotifyAlive let in only decodable metadata
	if st == catalog.StatusAlive && g.isLeaving(n.Name, m) {
		// Its alive messages still circulate; its leave is the later news.
		st = catalog.StatusLeft
	}
	if n.Name != g.name {
		g.mu.Lock()
		g.seen[n.Name] = true
		if st == catalog.StatusAlive {
			g.members[n.Name] = &member{node: *n, meta: m}
			delete(g.departed, n.Name)
		} else {
			delete(g.members, n.Name)
			delete(g.lastPeer, n.Name)
			g.departed[n.Name] = &member{node: *n, meta: m}
		}
		g.overlayDirty = true
		g.nmembers.Store(int64(len(g.members) + 1))
		g.mu.Unlock()
		switch st {
		case catalog.StatusAlive:
			g.contacts.add(n.Name)
		case catalog.StatusLeft:
			g.forget(n.Name) // a failed node's is kept until it is reaped
		}
		g.poke()
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

// forgetNode drops everything the layer keeps of a node the catalog
// reaped: its contact, coordinate, leave and broadcast tree.
func (g *Gossip) forgetNode(name string) {
	g.forget(name)
	g.mu.Lock()
	delete(g.leaving, name)
	delete(g.lastPeer, name)
	delete(g.seen, name)
	delete(g.departed, name)
	g.tree.Forget(name)
	g.mu.Unlock()
}

func addr(n *memberlist.Node) string {
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}
