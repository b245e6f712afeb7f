package gossip

import (
	"sync"
	"time"

	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/gossip/plumtree"
)

// catStore is a Store on a real catalog, locked the way the agent locks
// it, for tests of the layer without an agent.
type catStore struct {
	mu  sync.RWMutex
	cat *catalog.Catalog
}

func newCatStore(name string, epoch uint64) *catStore {
	return &catStore{cat: catalog.New(name, epoch)}
}

func (s *catStore) write(fn func(c *catalog.Catalog)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.cat)
}

func (s *catStore) read(fn func(c *catalog.Catalog)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn(s.cat)
}

func (s *catStore) Apply(e catalog.Entry) (ch catalog.Changes) {
	s.write(func(c *catalog.Catalog) { ch = c.Apply(e, time.Now()) })
	return ch
}

func (s *catStore) ApplyDelta(d catalog.Delta) (ch catalog.Changes) {
	s.write(func(c *catalog.Catalog) { ch = c.ApplyDelta(d, time.Now()) })
	return ch
}

func (s *catStore) Digest() (ds []catalog.OriginDigest) {
	s.read(func(c *catalog.Catalog) { ds = c.Digest() })
	return ds
}

func (s *catStore) OriginDigest(o string) (d catalog.OriginDigest, ok bool) {
	s.read(func(c *catalog.Catalog) { d, ok = c.OriginDigest(o) })
	return d, ok
}

func (s *catStore) Plan(p []catalog.OriginDigest, scope catalog.Scope) (send, want []catalog.Want, ch catalog.Changes) {
	s.write(func(c *catalog.Catalog) { send, want, ch = c.Plan(p, scope, time.Now()) })
	return send, want, ch
}

func (s *catStore) Buckets() (bs [catalog.SummaryBuckets]uint64) {
	s.read(func(c *catalog.Catalog) { bs = c.Buckets() })
	return bs
}

func (s *catStore) DigestIn(b []int) (ds []catalog.OriginDigest) {
	s.read(func(c *catalog.Catalog) { ds = c.DigestIn(b) })
	return ds
}

func (s *catStore) Deltas(w catalog.Want, budget int) (ds []catalog.Delta) {
	s.read(func(c *catalog.Catalog) { ds = c.Deltas(w, budget) })
	return ds
}

func (s *catStore) Has(o string, v catalog.Version) (ok bool) {
	s.read(func(c *catalog.Catalog) { ok = c.Has(o, v) })
	return ok
}

func (s *catStore) Known(o string) (e, k uint64, ok bool) {
	s.read(func(c *catalog.Catalog) { e, k, ok = c.Known(o) })
	return e, k, ok
}

func (s *catStore) Changed(o string) (t time.Time) {
	s.read(func(c *catalog.Catalog) { t = c.Changed(o) })
	return t
}

func (s *catStore) Summary() (sum uint64) {
	s.read(func(c *catalog.Catalog) { sum = c.Summary() })
	return sum
}

func (s *catStore) SetNode(n catalog.Node) {
	s.write(func(c *catalog.Catalog) { c.SetNode(n, time.Now()) })
}

func (s *catStore) Epoch() (e uint64) {
	s.read(func(c *catalog.Catalog) { e = c.LocalEpoch() })
	return e
}

var _ Store = (*catStore)(nil)

// bareGossip is a Gossip with no memberlist, for tests of what the layer
// decides on its own.
func bareGossip(name string) *Gossip {
	g := newPingGossipFields(name)
	g.store = newCatStore(name, 1)
	return g
}

func newPingGossipFields(name string) *Gossip {
	return &Gossip{
		name: name, protoMax: ProtocolMax, members: map[string]*member{}, seen: map[string]bool{}, leaving: map[string]Leave{},
		tree: plumtree.New(plumtree.Config{}), overlay: &plumtree.Overlay{Chords: chords}, reconcile: map[string]bool{}, lastPeer: map[string]time.Time{},
		probes: map[uint64]*probe{}, expect: map[string]expectation{}, wake: make(chan struct{}, 1),
		sendq: make(chan job, 16), metaChanged: make(chan struct{}, 1),
		contacts: contacts{start: time.Now(), m: map[string]*contact{}},
	}
}
