// Package plumtree is epidemic broadcast trees (Plumtree: Leitão, Pereira
// and Rodrigues, "Epidemic Broadcast Trees", SRDS 2007) as a pure state
// machine: events in (a message from a peer, an announcement, a prune, a
// graft, the clock), actions out (send this to that peer). It does no I/O,
// starts no goroutines and never reads the clock, so a simulator can drive
// a thousand of them in one test.
//
// Each node pushes a new message at once (eagerly) to some of its overlay
// neighbours and only announces it (lazily, batched) to the others. A node
// that receives a message it already had tells the sender to stop pushing
// (prune), so the eager links settle into a spanning tree and each node
// receives each message about once; a node that hears an announcement of
// a message it lacks and does not get the message soon asks for it
// (graft), which also repairs the tree.
//
// Messages are the writes of an origin, named by (origin, epoch, counter),
// and the tree is kept per origin: a link pruned for one origin's writes
// stays eager for another's, so every origin's writes travel its own
// shortest-path tree. Whether a message is new is the caller's question
// (the catalog knows which counters it has seen); announcements name the
// highest counter, so one announcement covers a run of writes.
package plumtree

import (
	"sort"
	"time"
)

// ID names one write: its origin, the origin's epoch and its counter.
type ID struct {
	Origin  string
	Epoch   uint64
	Counter uint64
}

// after reports whether id is later than o in the same origin's sequence.
func (id ID) after(o ID) bool {
	if id.Epoch != o.Epoch {
		return id.Epoch > o.Epoch
	}
	return id.Counter > o.Counter
}

// Kind tells what an Out carries.
type Kind uint8

// Out kinds.
const (
	// Eager carries message payloads to push to a peer.
	Eager Kind = iota + 1
	// IHave announces the highest write of each origin the node has.
	IHave
	// Prune tells a peer to stop pushing the writes of Origins.
	Prune
	// Graft asks a peer for the writes of Origin the caller lacks (the
	// caller sends what it holds of Origin, the peer answers with what is
	// newer) and makes the link eager for Origin again.
	Graft
)

// Out is one thing to send to one peer.
type Out struct {
	To       string
	Kind     Kind
	Payloads [][]byte // Eager
	// Relay marks Eager payloads that are not the tree's own traffic
	// (see Relay): a receiver that had them must not prune the link.
	Relay   bool
	IDs     []ID     // IHave
	Origins []string // Prune, Graft (one origin)
}

// Config tunes a Tree.
type Config struct {
	// LazyInterval is how long announcements wait to be batched. Every
	// node announces each origin's latest write to its lazy neighbours
	// once per interval at most.
	LazyInterval time.Duration
	// GraftTimeout is how long a node waits for a write it heard
	// announced before it asks the announcer for it.
	GraftTimeout time.Duration
}

// DefaultConfig suits a LAN: a write is normally delivered by the eager
// tree within milliseconds; announcements and repairs are the slow path.
func DefaultConfig() Config {
	return Config{LazyInterval: 50 * time.Millisecond, GraftTimeout: 80 * time.Millisecond}
}

// Tree is one node's Plumtree state. It is not safe for concurrent use.
type Tree struct {
	cfg   Config
	peers map[string]*peer
	// missing are the writes heard announced and not yet had, by origin.
	missing map[string]*missing
	// oob is, by origin, the latest write this node had out of band
	// (relayed, or brought by an exchange): a copy of it arriving along
	// the tree afterwards is not a second path of the tree.
	oob map[string]ID
	// flushAt is when the pending announcements go out (zero: none).
	flushAt time.Time
}

type peer struct {
	lazy map[string]bool // origins whose writes are only announced to it
	// pending are the announcements waiting for the next flush, by
	// origin; knows is the latest write of each origin it has shown it has.
	pending map[string]ID
	knows   map[string]ID
}

type missing struct {
	id         ID
	announcers []string
	deadline   time.Time
	tries      int
}

// New returns a tree with no neighbours.
func New(cfg Config) *Tree {
	if cfg.LazyInterval <= 0 || cfg.GraftTimeout <= 0 {
		def := DefaultConfig()
		if cfg.LazyInterval <= 0 {
			cfg.LazyInterval = def.LazyInterval
		}
		if cfg.GraftTimeout <= 0 {
			cfg.GraftTimeout = def.GraftTimeout
		}
	}
	return &Tree{cfg: cfg, peers: make(map[string]*peer), missing: make(map[string]*missing), oob: make(map[string]ID)}
}

// SetPeers replaces the overlay neighbours. Links to new neighbours start
// eager for every origin; what was kept of departed ones is dropped. It
// reports whether the neighbours changed: a departed one may have been
// this node's parent in some origin's tree, and a new one may hold this
// node's link as lazy from an earlier time; the caller then resets its
// links (Reset, and a reset sent to every neighbour), so that the next
// write of every origin floods this node's links once and the trees form
// again, rather than reaching this node by announcement and graft.
func (t *Tree) SetPeers(names []string) (changed bool) {
	keep := make(map[string]bool, len(names))
	for _, n := range names {
		keep[n] = true
		if t.peers[n] == nil {
			t.peers[n] = &peer{lazy: map[string]bool{}, pending: map[string]ID{}, knows: map[string]ID{}}
			changed = true
		}
	}
	for n := range t.peers {
		if !keep[n] {
			delete(t.peers, n)
			changed = true
		}
	}
	for _, m := range t.missing {
		m.announcers = filter(m.announcers, keep)
	}
	return changed
}

// Reset makes every link of this node eager again for every origin.
func (t *Tree) Reset() {
	for _, p := range t.peers {
		clear(p.lazy)
	}
}

// ResetPeer handles a neighbour's reset: it is pushed every origin's
// writes again.
func (t *Tree) ResetPeer(from string) {
	if p := t.peers[from]; p != nil {
		clear(p.lazy)
	}
}

// Peers lists the neighbours, sorted.
func (t *Tree) Peers() []string {
	out := make([]string, 0, len(t.peers))
	for n := range t.peers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// EagerPeers lists the neighbours an origin's writes are pushed to.
func (t *Tree) EagerPeers(origin string) []string {
	var out []string
	for n, p := range t.peers {
		if !p.lazy[origin] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Forget drops what the tree keeps of an origin (its node was reaped).
func (t *Tree) Forget(origin string) {
	delete(t.missing, origin)
	delete(t.oob, origin)
	for _, p := range t.peers {
		delete(p.lazy, origin)
		delete(p.pending, origin)
		delete(p.knows, origin)
	}
}

// Broadcast spreads a write this node has just learned along the tree
// (its own, or one a neighbour pushed): pushed to the eager neighbours of
// its origin, announced to the others. skip names a neighbour that has it
// already ("" for none).
func (t *Tree) Broadcast(id ID, payload []byte, skip string, now time.Time) []Out {
	return t.spread(id, payload, skip, false, now)
}

// Relay spreads a write this node learned out of band (an anti-entropy
// exchange brought it): along the same links as Broadcast, but marked, so
// that a neighbour that had it already does not take the copy for a
// second path of the tree and prune the link, which may well be the
// neighbour's own parent in the tree.
func (t *Tree) Relay(id ID, payload []byte, skip string, now time.Time) []Out {
	t.Learned(id)
	return t.spread(id, payload, skip, true, now)
}

// Announce tells every neighbour but skip, lazily, that this node has an
// origin's writes up to id: those that lack some ask for them (a graft).
// It passes on a large catch-up an exchange brought, which most
// neighbours have already, without pushing every write of it.
func (t *Tree) Announce(id ID, skip string, now time.Time) {
	t.Learned(id)
	for n, p := range t.peers {
		if n != skip && p.knows[id.Origin].isBefore(id) {
			t.announce(p, id, now)
		}
	}
}

// Learned records that this node has an origin's writes up to id out of
// band (an exchange brought them): copies of them that then arrive along
// the tree prune nothing.
func (t *Tree) Learned(id ID) { t.oob[id.Origin] = maxID(t.oob[id.Origin], id) }

func (t *Tree) spread(id ID, payload []byte, skip string, relay bool, now time.Time) []Out {
	var out []Out
	for _, n := range sortedKeys(t.peers) {
		p := t.peers[n]
		if n == skip || !p.knows[id.Origin].isBefore(id) {
			continue
		}
		if p.lazy[id.Origin] {
			t.announce(p, id, now)
			continue
		}
		out = append(out, Out{To: n, Kind: Eager, Payloads: [][]byte{payload}, Relay: relay})
		p.knows[id.Origin] = maxID(p.knows[id.Origin], id)
	}
	return out
}

// isBefore reports whether k (a zero ID: nothing) is before id.
func (k ID) isBefore(id ID) bool { return k == (ID{}) || id.after(k) }

func maxID(a, b ID) ID {
	if a == (ID{}) || b.after(a) {
		return b
	}
	return a
}

func (t *Tree) announce(p *peer, id ID, now time.Time) {
	p.pending[id.Origin] = maxID(p.pending[id.Origin], id)
	if t.flushAt.IsZero() {
		t.flushAt = now.Add(t.cfg.LazyInterval)
	}
}

// Receive handles a write a neighbour pushed. fresh is set when it was
// news (the caller passes it on through the returned Outs); dup when the
// node had it already (the sender is pruned for its origin). A write that
// is neither (of an earlier run, or of a node the caller does not know
// yet) changes nothing. A relayed write (see Relay) is passed on when
// fresh and changes nothing of the tree.
func (t *Tree) Receive(from string, id ID, payload []byte, fresh, dup, relay bool, now time.Time) []Out {
	p := t.peers[from]
	if p != nil {
		p.knows[id.Origin] = maxID(p.knows[id.Origin], id)
	}
	if relay {
		if fresh {
			return t.Relay(id, payload, from, now)
		}
		return nil
	}
	if dup && !t.oob[id.Origin].isBefore(id) {
		return nil // the first copy came out of band
	}
	switch {
	case fresh:
		if p != nil {
			delete(p.lazy, id.Origin) // it is our parent in this origin's tree
		}
		if m := t.missing[id.Origin]; m != nil && !m.id.after(id) {
			delete(t.missing, id.Origin)
		}
		return t.Broadcast(id, payload, from, now)
	case dup:
		if p != nil && !p.lazy[id.Origin] {
			p.lazy[id.Origin] = true
			return []Out{{To: from, Kind: Prune, Origins: []string{id.Origin}}}
		}
		if p == nil {
			// Not a neighbour in this node's view (views differ for a
			// moment after membership changes): stop it pushing.
			return []Out{{To: from, Kind: Prune, Origins: []string{id.Origin}}}
		}
	}
	return nil
}

// IHave handles a neighbour's announcement that it has a write; have
// says whether this node has it too. A write still missing after
// GraftTimeout is asked for (see Tick).
func (t *Tree) IHave(from string, id ID, have bool, now time.Time) {
	p := t.peers[from]
	if p == nil {
		return
	}
	p.knows[id.Origin] = maxID(p.knows[id.Origin], id)
	if have {
		return
	}
	m := t.missing[id.Origin]
	if m == nil {
		t.missing[id.Origin] = &missing{id: id, announcers: []string{from}, deadline: now.Add(t.cfg.GraftTimeout)}
		return
	}
	m.id = maxID(m.id, id)
	for _, a := range m.announcers {
		if a == from {
			return
		}
	}
	m.announcers = append(m.announcers, from)
}

// Prune handles a neighbour's request to stop pushing an origin's writes.
func (t *Tree) Prune(from string, origins []string) {
	if p := t.peers[from]; p != nil {
		for _, o := range origins {
			p.lazy[o] = true
		}
	}
}

// Graft handles a neighbour's request for an origin's writes: the link is
// eager for that origin again (the caller sends what the peer lacks).
func (t *Tree) Graft(from, origin string) {
	if p := t.peers[from]; p != nil {
		delete(p.lazy, origin)
	}
}

// Next is when Tick has work to do; zero if never.
func (t *Tree) Next() time.Time {
	next := t.flushAt
	for _, m := range t.missing {
		if next.IsZero() || m.deadline.Before(next) {
			next = m.deadline
		}
	}
	return next
}

// Tick sends the announcements that are due and asks for the announced
// writes that did not arrive in time (has reports whether the node has a
// write now). Each missing write is asked of one announcer at a time,
// the next after another half timeout, each announcer twice at most (a
// graft can be lost too); what is still missing then is left to
// anti-entropy.
func (t *Tree) Tick(now time.Time, has func(ID) bool) []Out {
	var out []Out
	for _, origin := range sortedKeys(t.missing) {
		m := t.missing[origin]
		if has(m.id) || len(m.announcers) == 0 || m.tries >= 2*len(m.announcers) {
			delete(t.missing, origin)
			continue
		}
		if now.Before(m.deadline) {
			continue
		}
		to := m.announcers[m.tries%len(m.announcers)]
		m.tries++
		m.deadline = now.Add(t.cfg.GraftTimeout / 2)
		if p := t.peers[to]; p != nil {
			delete(p.lazy, origin)
			out = append(out, Out{To: to, Kind: Graft, Origins: []string{origin}})
		}
	}
	if !t.flushAt.IsZero() && !now.Before(t.flushAt) {
		t.flushAt = time.Time{}
		for _, n := range sortedKeys(t.peers) {
			p := t.peers[n]
			var ids []ID
			for _, origin := range sortedKeys(p.pending) {
				id := p.pending[origin]
				if p.knows[origin].isBefore(id) {
					ids = append(ids, id)
					p.knows[origin] = id
				}
			}
			clear(p.pending)
			if len(ids) > 0 {
				out = append(out, Out{To: n, Kind: IHave, IDs: ids})
			}
		}
	}
	return out
}

func filter(names []string, keep map[string]bool) []string {
	out := names[:0]
	for _, n := range names {
		if keep[n] {
			out = append(out, n)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
