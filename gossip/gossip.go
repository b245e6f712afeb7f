package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/coordinate"

	"github.com/shoal-sd/shoal/catalog"
)

// Store is the catalog as the agent holds it, behind the agent's lock. All
// methods are called from memberlist's goroutines, concurrently, and must
// not block.
type Store interface {
	// Apply merges one remote entry.
	Apply(e catalog.Entry) catalog.Changes
	// Merge merges a remote snapshot.
	Merge(s catalog.Snapshot) catalog.Changes
	// Snapshot copies the whole catalog for push/pull.
	Snapshot() catalog.Snapshot
	// SetNode records memberlist's view of a node.
	SetNode(n catalog.Node)
	// Epoch is the local agent's current epoch.
	Epoch() uint64
}

// Config configures the gossip layer.
type Config struct {
	// Memberlist is memberlist's configuration with name, addresses, keys
	// and timers filled in; Create sets its delegates.
	Memberlist *memberlist.Config
	Store      Store
	Datacenter string
	Version    string // Shoal's version, put in node metadata
	// NodeMeta is the operator's node metadata, put in node metadata and
	// shown by every agent as the node's Meta beside "shoal-version". It
	// must be valid for catalog.ValidateNodeMeta and fit
	// memberlist.MetaMaxSize with the rest (see EncodeMeta).
	NodeMeta map[string]string
	Logger   *slog.Logger
	// PingRTT, if set, replaces the round trip of every ping before it
	// moves this node's network coordinate (tests give a loopback cluster
	// the latencies of a real network).
	PingRTT func(peer string, measured time.Duration) time.Duration
}

// Gossip is a running memberlist with Shoal's delegates.
type Gossip struct {
	// ml is set once memberlist.Create returns; delegates may run before
	// that (a peer can join while memberlist starts), so they cope with
	// live() returning nil. Everything else runs after Create.
	ml    atomic.Pointer[memberlist.Memberlist]
	queue *memberlist.TransmitLimitedQueue
	store Store
	log   *slog.Logger
	name  string
	dc    string
	ver   string
	user  map[string]string // Config.NodeMeta, read only

	metaChanged chan struct{}
	epoch       atomic.Uint64 // the epoch last put in node metadata
	digest      atomic.Uint64 // the catalog digest to announce (SetDigest)

	mu      sync.Mutex
	joining int               // Join calls under way
	joinErr error             // why a merge during a Join was refused
	leaving map[string]uint64 // node → epoch it announced leaving in
	peers   []memberlist.Node // live peers, for pushNow
	members atomic.Int64      // len(peers)+1, read without a lock

	qmu    sync.Mutex            // serialises queueEntry
	queued map[string]*broadcast // instance → its latest queued entry
	fanout int                   // the fewest peers pushNow sends to

	stats Stats

	// Network coordinates and staleness (ping.go).
	coord      *coordinate.Client
	ackPayload atomic.Pointer[[]byte] // this node's coordinate, encoded
	pingRTT    func(peer string, measured time.Duration) time.Duration
	contacts   contacts
}

// Stats counts what the gossip layer did (for the agent's metrics).
type Stats struct {
	// Messages: Sent are this node's writes and relays queued, Received
	// the messages that arrived, Rebroadcast the relays of news, Dropped
	// the messages too large to queue, Malformed the ones refused.
	Sent, Received, Rebroadcast, Dropped, Malformed atomic.Uint64
	// Bytes of Shoal's own messages and push/pull state handed to and
	// taken from memberlist (memberlist's framing not included).
	BytesOut, BytesIn atomic.Uint64
}

// MaxMessageSize is the largest Shoal gossip message; memberlist's default
// packet budget (1,400 bytes less framing and encryption overhead) must
// hold it beside memberlist's own messages.
const MaxMessageSize = catalog.MaxEncodedSize + 2

// relayMult scales memberlist's retransmit limit for Shoal's own updates.
// Each node that learns an update sends it RetransmitMult·ceil(log10(N+1))
// times; an epidemic with k sends per node misses a given node with
// probability about e^-k, so memberlist's 4 (at N ≤ 9) leaves ~2% of nodes
// waiting for the next push/pull (30 s) on each update. Three times that
// (e^-12 ≈ 6·10^-6) costs three times the gossip bytes per update, which
// the catalog's small entries afford.
const relayMult = 3

// ErrNameConflict is wrapped by the error of a join that found another
// live node holding this node's name.
var ErrNameConflict = errors.New("node name conflict")

// Create starts memberlist on its sockets with Shoal's delegates.
func Create(cfg Config) (*Gossip, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Gossip{
		store: cfg.Store,
		log:   cfg.Logger.With("component", "gossip"),
		name:  cfg.Memberlist.Name,
		dc:    cfg.Datacenter,
		ver:   cfg.Version,
		user:  maps.Clone(cfg.NodeMeta),

		metaChanged: make(chan struct{}, 1),
		leaving:     make(map[string]uint64),
		fanout:      cfg.Memberlist.GossipNodes,
		queued:      make(map[string]*broadcast),
		pingRTT:     cfg.PingRTT,
		contacts:    contacts{start: time.Now(), m: make(map[string]*contact)},
	}
	g.members.Store(1)
	coord, err := coordinate.NewClient(coordinate.DefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("network coordinates: %w", err)
	}
	g.coord = coord
	ack := EncodeCoordinate(coord.GetCoordinate())
	g.ackPayload.Store(&ack)
	mc := cfg.Memberlist
	d := &delegate{g: g}
	mc.Delegate = d
	mc.Events = &events{g: g}
	mc.Conflict = d
	mc.Alive = d
	mc.Merge = d
	mc.Ping = &ping{g: g}
	g.queue = &memberlist.TransmitLimitedQueue{
		// Lock-free: the queue calls this under its own lock, and
		// memberlist's NumMembers takes memberlist's node lock, which
		// memberlist holds while it calls into the agent.
		NumNodes:       func() int { return int(g.members.Load()) },
		RetransmitMult: relayMult * mc.RetransmitMult,
	}
	g.epoch.Store(cfg.Store.Epoch())
	tr, err := transportFor(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s:%d: %w", mc.BindAddr, mc.BindPort, err)
	}
	mc.Transport = tr
	ml, err := memberlist.Create(mc)
	if err != nil {
		tr.Shutdown()
		return nil, fmt.Errorf("start gossip on %s:%d: %w", mc.BindAddr, mc.BindPort, err)
	}
	g.ml.Store(ml)
	return g, nil
}

// live returns the memberlist for delegates, nil while it is starting.
func (g *Gossip) live() *memberlist.Memberlist { return g.ml.Load() }

// Memberlist exposes the running memberlist (members, addresses).
func (g *Gossip) Memberlist() *memberlist.Memberlist { return g.live() }

// Stats returns the layer's counters.
func (g *Gossip) Stats() *Stats { return &g.stats }

// Broadcast queues entries for gossip and pushes them to a few peers at
// once. An entry replaces a queued older one for the same instance, and is
// dropped if a newer one is already queued, so callers need not serialise.
// It must not be called with a lock that memberlist's callbacks take.
func (g *Gossip) Broadcast(entries ...catalog.Entry) {
	for _, e := range entries {
		g.queueEntry(e, EncodeEntry(e))
	}
}

// queueEntry queues an entry's message unless a newer version of the same
// instance is still queued: the named queue replaces by name, so without
// this check a late older write could push a newer one out.
func (g *Gossip) queueEntry(e catalog.Entry, msg []byte) {
	name := e.Origin + "\x00" + string('0'+rune(e.Kind)) + e.ID()
	g.qmu.Lock()
	defer g.qmu.Unlock()
	if old := g.queued[name]; old != nil && !old.finished.Load() && e.Version.Less(old.version) {
		return
	}
	b := g.queueMsg(name, msg)
	if b == nil {
		return
	}
	b.version = e.Version
	g.queued[name] = b
	if len(g.queued) > 1024 && len(g.queued) > 2*g.queue.NumQueued() {
		for k, q := range g.queued {
			if q.finished.Load() {
				delete(g.queued, k)
			}
		}
	}
}

// queueMsg queues a message under a name: a later message of the same name
// replaces it in the queue. done, if set, is closed once memberlist has
// sent the message as often as it will.
func (g *Gossip) queueMsg(name string, msg []byte, done ...chan struct{}) *broadcast {
	if len(msg) > MaxMessageSize {
		// Validation keeps every instance under the limit, so this is a
		// bug; say so loudly rather than let it sit in the queue forever.
		g.stats.Dropped.Add(1)
		g.log.Error("message too large to gossip; dropped", "name", name, "bytes", len(msg), "limit", MaxMessageSize)
		return nil
	}
	b := &broadcast{name: name, msg: msg}
	if len(done) > 0 {
		b.done = done[0]
	}
	g.queue.QueueBroadcast(b)
	g.stats.Sent.Add(1)
	g.pushNow(msg)
	return b
}

// pushNow sends a message that is news to this node straight to a few
// random peers, without waiting for memberlist's next gossip round. Every
// node does this once per update, on first sight, so an update crosses
// the cluster at network speed (log N hops of a UDP send each) instead of
// one 200 ms gossip round per hop; the queued retransmissions remain the
// reliable path should these packets be lost.
func (g *Gossip) pushNow(msg []byte) {
	ml := g.live()
	if ml == nil {
		return
	}
	targets := g.pushTargets()
	g.stats.BytesOut.Add(uint64(len(msg) * len(targets)))
	for i := range targets {
		if err := ml.SendBestEffort(&targets[i], msg); err != nil {
			g.log.Debug("direct push failed", "to", targets[i].Name, "err", err)
		}
	}
}

// pushTargets picks pushFanout distinct random live peers (all of them if
// there are fewer) by Floyd's sampling, without an O(N) shuffle.
func (g *Gossip) pushTargets() []memberlist.Node {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := len(g.peers)
	fanout := min(n, pushFanout(n+1, g.fanout))
	targets := make([]memberlist.Node, 0, fanout)
	picked := make(map[int]bool, fanout)
	for j := n - fanout; j < n; j++ {
		i := rand.IntN(j + 1)
		if picked[i] {
			i = j
		}
		picked[i] = true
		targets = append(targets, g.peers[i])
	}
	return targets
}

// pushFanout is how many peers each node pushes news to, in a cluster of
// n: an epidemic where every node pushes to f random peers misses a given
// node with probability about e^-f, so f = ln(n)+2 leaves, in expectation,
// fewer than e^-2 ≈ 0.14 nodes per update to the queued gossip (5 peers at
// n = 8, 7 at 64, 9 at 1,000). Never fewer than memberlist's GossipNodes.
func pushFanout(n, least int) int {
	return max(least, int(math.Ceil(math.Log(float64(n))))+2)
}

// setPeer records whether a node is a live peer for pushNow.
func (g *Gossip) setPeer(n *memberlist.Node, alive bool) {
	if n.Name == g.name {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.peers {
		if g.peers[i].Name == n.Name {
			g.peers = append(g.peers[:i], g.peers[i+1:]...)
			break
		}
	}
	if alive {
		g.peers = append(g.peers, *n)
	}
	g.members.Store(int64(len(g.peers) + 1))
}

// MetaChanged delivers a value when this node's metadata changed and must
// be re-announced with UpdateMeta by the layer's owner.
func (g *Gossip) MetaChanged() <-chan struct{} { return g.metaChanged }

// SetDigest announces the digest of this node's catalog in its node
// metadata (so that every agent can tell whether all agree), unless the
// metadata memberlist holds for this node carries it already, and returns
// once memberlist has queued the update or timeout has passed. It checks
// memberlist's copy rather than what it asked for last: a refutation
// racing an update can leave memberlist's local state at the older
// metadata, and call it again later to repair that.
func (g *Gossip) SetDigest(d uint64, timeout time.Duration) error {
	g.digest.Store(d)
	ml := g.live()
	if ml == nil {
		return nil
	}
	if m, err := DecodeMeta(ml.LocalNode().Meta); err == nil && m.Digest == d {
		return nil
	}
	return g.UpdateMeta(timeout)
}

// UpdateMeta re-announces this node's metadata (after an epoch change).
func (g *Gossip) UpdateMeta(timeout time.Duration) error {
	return g.live().UpdateNode(timeout)
}

// Join contacts the given agents ("host" or "host:port") and returns how
// many answered. A join that finds this node's name held by another live
// node fails with ErrNameConflict; one that reaches agents of another
// datacenter or protocol fails too.
func (g *Gossip) Join(addrs []string) (int, error) {
	g.mu.Lock()
	g.joining++
	g.mu.Unlock()
	n, err := g.live().Join(addrs)
	g.mu.Lock()
	refused := g.joinErr
	if g.joining--; g.joining == 0 {
		g.joinErr = nil
	}
	g.mu.Unlock()
	if refused != nil {
		return 0, refused
	}
	if err != nil && n == 0 {
		return 0, fmt.Errorf("join %s: %w", strings.Join(addrs, ", "), oneLine(err))
	}
	return n, nil
}

// oneLine flattens memberlist's multi-error ("1 error occurred:\n\t* …")
// into its causes on one line.
func oneLine(err error) error {
	w, ok := err.(interface{ WrappedErrors() []error })
	if !ok {
		return err
	}
	var msgs []string
	for _, e := range w.WrappedErrors() {
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Leave announces this node's departure and waits up to timeout for it to
// go out. Other agents hide its services as soon as the announcement
// reaches them, and record the node as left rather than failed.
func (g *Gossip) Leave(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	l := Leave{Node: g.name, Epoch: g.store.Epoch()}
	g.noteLeave(l)
	if g.live().NumMembers() > 1 {
		done := make(chan struct{})
		g.queueMsg(leaveKey(g.name), EncodeLeave(l), done)
		t := time.NewTimer(timeout / 2)
		select {
		case <-done:
		case <-t.C:
			g.log.Warn("leave announcement still queued; leaving anyway")
		}
		t.Stop()
	}
	if err := g.live().Leave(time.Until(deadline)); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	return nil
}

// Shutdown stops memberlist. Leave first for a graceful exit.
func (g *Gossip) Shutdown() error {
	if err := g.live().Shutdown(); err != nil {
		return fmt.Errorf("shutdown gossip: %w", err)
	}
	return nil
}

// broadcast is one queued message; its name makes a newer update of the
// same instance replace it in memberlist's queue.
type broadcast struct {
	name     string
	msg      []byte
	done     chan struct{}   // closed by Finished, if set
	version  catalog.Version // of an entry's message
	finished atomic.Bool
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

func (b *broadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*broadcast)
	return ok && o.name == b.name
}
func (b *broadcast) Name() string    { return b.name }
func (b *broadcast) Message() []byte { return b.msg }

// Finished is called by the queue, under its lock: it takes no other lock.
func (b *broadcast) Finished() {
	b.finished.Store(true)
	if b.done != nil {
		close(b.done)
	}
}
