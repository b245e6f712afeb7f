package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/coordinate"

	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/gossip/plumtree"
)

// Store is the catalog as the agent holds it, behind the agent's lock. All
// methods are called from memberlist's goroutines and the layer's own,
// concurrently, and must not block.
type Store interface {
	// Apply merges one remote entry.
	Apply(e catalog.Entry) catalog.Changes
	// ApplyDelta merges a run of one origin's entries.
	ApplyDelta(d catalog.Delta) catalog.Changes
	// Digest lists the catalog's per-origin versions.
	Digest() []catalog.OriginDigest
	// OriginDigest is the digest of one origin.
	OriginDigest(origin string) (catalog.OriginDigest, bool)
	// Plan compares a peer's digest, or part of it (scope), with the
	// catalog (catalog.Plan).
	Plan(peer []catalog.OriginDigest, scope catalog.Scope) (send, want []catalog.Want, ch catalog.Changes)
	// Buckets is the catalog's summary by bucket, DigestIn the digest of
	// the origins of some buckets.
	Buckets() [catalog.SummaryBuckets]uint64
	DigestIn(buckets []int) []catalog.OriginDigest
	// Deltas builds what a peer at w needs, in chunks of at most budget
	// bytes.
	Deltas(w catalog.Want, budget int) []catalog.Delta
	// Has reports whether the catalog has seen an origin's write.
	Has(origin string, v catalog.Version) bool
	// Known is the epoch and the counter up to which the catalog holds
	// every write of an origin.
	Known(origin string) (epoch, known uint64, ok bool)
	// Changed is when the catalog last took a write of an origin.
	Changed(origin string) time.Time
	// Summary is the summary of the catalog served (catalog.Summary).
	Summary() uint64
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
	// Tree tunes the broadcast trees; zero values take plumtree's defaults.
	Tree plumtree.Config
	// ExchangeInterval is the least time between two anti-entropy
	// exchanges this agent starts because a peer's summary differed; it
	// grows with the cluster (see exchangeEvery). Zero means one second.
	ExchangeInterval time.Duration

	// SaveKeyring, if set, keeps the keyring (primary key first) before
	// an operation changes it; an error leaves the keyring unchanged.
	SaveKeyring func(keys [][]byte) error

	// protocolMax and extraRecord let tests run an agent of a later
	// protocol version: it announces protocolMax, and adds extraRecord,
	// a record of a type this version does not know, to every message it
	// sends in that version.
	protocolMax uint8
	extraRecord []byte
}

// Gossip is a running memberlist with Shoal's delegates.
type Gossip struct {
	// ml is set once memberlist.Create returns; delegates may run before
	// that (a peer can join while memberlist starts), so they cope with
	// live() returning nil.
	ml    atomic.Pointer[memberlist.Memberlist]
	store Store
	log   *slog.Logger
	name  string
	dc    string
	ver   string
	user  map[string]string // Config.NodeMeta, read only

	protoMax    uint8
	extraRecord []byte
	aeEvery     time.Duration

	metaChanged chan struct{}
	epoch       atomic.Uint64 // the epoch last put in node metadata
	gen         atomic.Uint64 // refutations of leaves in this node's name

	mu      sync.Mutex
	joining int   // Join calls under way
	joinErr error // why a merge during a Join was refused
	// members are the alive peers as memberlist announced them; seen are
	// the nodes ever announced, until the catalog forgets them.
	members map[string]*member
	seen    map[string]bool
	// leaving are the leave announcements taken, by node.
	leaving map[string]Leave
	// departed keeps the last membership of nodes memberlist no longer
	// holds alive, until they are reaped: a leave that comes after
	// memberlist declared its node failed still marks it left.
	departed map[string]*member

	selfAddr net.IP // advertised, set by Create
	selfPort uint16
	tree     *plumtree.Tree
	overlay  *plumtree.Overlay
	// overlayAt is when the tree's neighbours were last computed; dirty
	// says the membership changed since.
	overlayAt    time.Time
	overlayDirty bool
	resetPending bool // neighbours are to be told to reset their links
	// reconcile lists peers to exchange digests with soon, and exchange
	// the one a differing summary named.
	reconcile map[string]bool
	exchange  string
	lastAE    time.Time
	lastPeer  map[string]time.Time
	probes    map[uint64]*probe
	probeSeq  uint64
	progress  progress
	// expect are the origins a push/pull peer is sending in full (a
	// join): their own agents' offers of the same are not taken up.
	expect map[string]expectation

	nmembers atomic.Int64 // len(members)+1, read without a lock
	wake     chan struct{}
	sendq    chan job
	stop     context.CancelFunc
	done     sync.WaitGroup
	stopOnce sync.Once

	stats Stats

	// The keyring (keyring.go): memberlist's, nil without encryption.
	kr             *memberlist.Keyring
	verifyIncoming bool
	saveKeys       func(keys [][]byte) error
	keys           keyring

	// Network coordinates and staleness (ping.go).
	coord      *coordinate.Client
	ackPayload atomic.Pointer[[]byte] // this node's coordinate, encoded
	pingRTT    func(peer string, measured time.Duration) time.Duration
	contacts   contacts
}

// member is an alive peer.
type member struct {
	node memberlist.Node
	meta NodeMeta
}

// version is the protocol version to speak with a member: the highest
// both speak.
func (g *Gossip) version(m *member) uint8 {
	_, hi := m.meta.Protocols()
	return min(g.protoMax, hi)
}

// Stats counts what the gossip layer did (for the agent's metrics).
type Stats struct {
	// Writes pushed along the broadcast trees: sent (this node's and
	// relayed), received fresh, received again (duplicates, which prune
	// a link).
	Pushed, Received, Duplicates atomic.Uint64
	// Announcements sent, prunes sent, grafts sent (a write heard of
	// and asked for).
	IHaves, Prunes, Grafts atomic.Uint64
	// Anti-entropy: exchanges this node started, entries sent and
	// received in deltas, and deltas or messages dropped because the
	// reliable send queue was full.
	Exchanges, DeltaEntriesSent, DeltaEntriesReceived, SendDropped atomic.Uint64
	// Messages refused as malformed, from senders that are not members,
	// and records of unknown types skipped.
	Malformed, UnknownSender, SkippedRecords atomic.Uint64
	// Leaves in this node's name refuted.
	LeavesRefuted atomic.Uint64
	// Bytes of Shoal's own messages handed to and taken from memberlist
	// (memberlist's framing not included).
	BytesOut, BytesIn atomic.Uint64
}

// Sizes of what travels. A UDP message stays within one packet beside
// memberlist's framing and encryption; larger deltas go over TCP in chunks
// that stay far below memberlist's 20 MiB limit on a stream.
const (
	udpBudget     = 1200
	chunkBudget   = 256 << 10
	sendQueueSize = 4096
	// chords are the links each node adds to its ring neighbour in the
	// overlay (see plumtree.Neighbors): about 2·chords neighbours each.
	chords = 2
	// relayMax is the most writes of one delta relayed at once; more are
	// announced instead.
	relayMax = 32
	// overlayEvery bounds how often membership changes recompute the
	// overlay: a thousand joins must not cost a thousand recomputations.
	overlayEvery = time.Second
)

// ErrNameConflict is wrapped by the error of a join that found another
// live node holding this node's name.
var ErrNameConflict = errors.New("node name conflict")

// Create starts memberlist on its sockets with Shoal's delegates, and the
// layer's own goroutines; Shutdown stops both.
func Create(cfg Config) (*Gossip, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Gossip{
		store:       cfg.Store,
		log:         cfg.Logger.With("component", "gossip"),
		name:        cfg.Memberlist.Name,
		dc:          cfg.Datacenter,
		ver:         cfg.Version,
		user:        maps.Clone(cfg.NodeMeta),
		protoMax:    ProtocolMax,
		extraRecord: cfg.extraRecord,
		aeEvery:     cfg.ExchangeInterval,

		metaChanged: make(chan struct{}, 1),
		members:     make(map[string]*member),
		seen:        make(map[string]bool),
		leaving:     make(map[string]Leave),
		departed:    make(map[string]*member),
		tree:        plumtree.New(cfg.Tree),
		overlay:     &plumtree.Overlay{Chords: chords},
		reconcile:   make(map[string]bool),
		lastPeer:    make(map[string]time.Time),
		probes:      make(map[uint64]*probe),
		expect:      make(map[string]expectation),
		wake:        make(chan struct{}, 1),
		sendq:       make(chan job, sendQueueSize),
		pingRTT:     cfg.PingRTT,
		contacts:    contacts{start: time.Now(), m: make(map[string]*contact)},

		kr:             cfg.Memberlist.Keyring,
		verifyIncoming: cfg.Memberlist.GossipVerifyIncoming,
		saveKeys:       cfg.SaveKeyring,
		keys:           keyring{seen: make(map[keySeen]bool), pending: make(map[uint64]*keyCall)},
	}
	if cfg.protocolMax > 0 {
		g.protoMax = cfg.protocolMax
	}
	if g.aeEvery <= 0 {
		g.aeEvery = time.Second
	}
	g.nmembers.Store(1)
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
	// memberlist's LocalNode points into its own state, which it rewrites
	// under its lock on every update of this node: keep a copy of what
	// does not change, the advertised address.
	ln := ml.LocalNode()
	g.selfAddr, g.selfPort = append(net.IP(nil), ln.Addr...), ln.Port
	g.ml.Store(ml)
	if err := pinQueue(ml); err != nil {
		g.log.Warn("memberlist's broadcast queue is not pinned; a queued broadcast may be lost (hashicorp/memberlist#263)", "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	g.done.Add(1 + senders)
	go g.run(ctx)
	for range senders {
		go g.sender(ctx)
	}
	return g, nil
}

// live returns the memberlist for delegates, nil while it is starting.
func (g *Gossip) live() *memberlist.Memberlist { return g.ml.Load() }

// Memberlist exposes the running memberlist (members, addresses).
func (g *Gossip) Memberlist() *memberlist.Memberlist { return g.live() }

// Stats returns the layer's counters.
func (g *Gossip) Stats() *Stats { return &g.stats }

// Broadcast spreads this agent's own writes (or re-stamped ones) along
// its broadcast tree. It must not be called with a lock that memberlist's
// callbacks take.
func (g *Gossip) Broadcast(entries ...catalog.Entry) {
	if len(entries) == 0 {
		return
	}
	now := time.Now()
	var outs []plumtree.Out
	g.mu.Lock()
	g.refreshOverlay(now, false)
	for _, e := range entries {
		outs = append(outs, g.tree.Broadcast(idOf(e), EncodeEntry(e), "", now)...)
	}
	g.mu.Unlock()
	g.send(outs)
	g.poke()
}

// Protocols is the range of protocol versions an alive member announces.
func (g *Gossip) Protocols(name string) (lo, hi uint8, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.members[name]
	if m == nil {
		return 0, 0, false
	}
	lo, hi = m.meta.Protocols()
	return lo, hi, true
}

func idOf(e catalog.Entry) plumtree.ID {
	return plumtree.ID{Origin: e.Origin, Epoch: e.Version.Epoch, Counter: e.Version.Counter}
}

// poke wakes the layer's goroutine: the tree has timed work, or a peer
// is to be reconciled with.
func (g *Gossip) poke() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// handle processes one message from a peer, from any of memberlist's
// goroutines (UDP packets, TCP streams, push/pull).
func (g *Gossip) handle(buf []byte, pushPull bool) {
	g.stats.BytesIn.Add(uint64(len(buf)))
	m, err := Decode(buf)
	if err != nil {
		g.stats.Malformed.Add(1)
		g.log.Warn("dropped a malformed gossip message", "err", err, "bytes", len(buf))
		return
	}
	g.stats.SkippedRecords.Add(uint64(m.Skipped))
	if m.From == g.name {
		return
	}
	g.mu.Lock()
	peer := g.members[m.From]
	nm := len(g.members)
	g.mu.Unlock()
	if peer == nil {
		// memberlist admits a node before anything of it is taken; a
		// message from anyone else is not a member's.
		g.stats.UnknownSender.Add(1)
		g.log.Debug("dropped a message from a node that is not a member", "from", m.From, "members", nm)
		return
	}
	now := time.Now()
	var outs []plumtree.Out
	var local []catalog.Entry
	heard := false

	for _, re := range m.Entries {
		ch := g.store.Apply(re.Entry)
		local = append(local, ch.Local...)
		heard = heard || ch.Fresh && re.Origin == m.From
		if ch.Fresh {
			g.stats.Received.Add(1)
		} else if ch.Dup {
			g.stats.Duplicates.Add(1)
		}
		g.mu.Lock()
		outs = append(outs, g.tree.Receive(m.From, idOf(re.Entry), re.Raw, ch.Fresh, ch.Dup, re.Relay, now)...)
		g.mu.Unlock()
	}
	if len(m.IHaves) > 0 {
		haves := make([]bool, len(m.IHaves))
		for i, id := range m.IHaves {
			haves[i] = g.store.Has(id.Origin, catalog.Version{Epoch: id.Epoch, Counter: id.Counter})
		}
		g.mu.Lock()
		for i, id := range m.IHaves {
			g.tree.IHave(m.From, id, haves[i], now)
		}
		g.mu.Unlock()
		g.poke()
	}
	if m.Reset {
		g.mu.Lock()
		g.tree.ResetPeer(m.From)
		g.mu.Unlock()
	}
	if len(m.Prunes) > 0 {
		g.mu.Lock()
		g.tree.Prune(m.From, m.Prunes)
		g.mu.Unlock()
	}
	for _, w := range m.Wants {
		if w.Graft {
			g.mu.Lock()
			g.tree.Graft(m.From, w.Origin)
			g.mu.Unlock()
		}
		if w.Settled && now.Sub(g.store.Changed(w.Origin)) < settle {
			continue
		}
		g.sendDeltas(peer, g.store.Deltas(w.Want, chunkBudget))
	}
	for i, d := range m.Deltas {
		ch := g.store.ApplyDelta(d)
		local = append(local, ch.Local...)
		heard = heard || d.Origin == m.From
		g.stats.DeltaEntriesReceived.Add(uint64(len(d.Entries)))
		g.progress.add(g.log, m.From, len(d.Entries), m.Totals[i], now)
		// What an exchange brought is news like any other: it goes on
		// along the trees, so that one agent's catch-up reaches all. A
		// few writes are relayed at once; a large catch-up (a join, a
		// resend) is announced, and only neighbours that lack it ask.
		g.mu.Lock()
		upto := plumtree.ID{Origin: d.Origin, Epoch: d.Epoch, Counter: d.To}
		if len(ch.Accepted) > relayMax {
			g.tree.Announce(upto, m.From, now)
		} else {
			g.tree.Learned(upto)
			for _, e := range ch.Accepted {
				outs = append(outs, g.tree.Relay(idOf(e), EncodeEntry(e), m.From, now)...)
			}
		}
		g.mu.Unlock()
	}
	if m.HasDigest {
		heard = true
		var scope catalog.Scope
		switch {
		case m.scope != nil:
			scope = catalog.InBuckets(m.scope)
		case m.partial:
			scope = catalog.Listed(m.Digest)
		}
		send, want, ch := g.store.Plan(m.Digest, scope)
		local = append(local, ch.Local...)
		for _, w := range send {
			if m.settled && now.Sub(g.store.Changed(w.Origin)) < settle {
				continue
			}
			g.sendDeltas(peer, g.store.Deltas(w, chunkBudget))
		}
		// Over push/pull the peer has this agent's digest too and pushes
		// on its own; wants are for one-way exchanges.
		if pushPull {
			g.expecting(want, m.Digest, now)
		} else if m.partial {
			want = g.unexpected(want, m.Digest, now)
		}
		if len(want) > 0 && m.Reply && !pushPull {
			var flags byte
			if m.settled {
				flags = wantSettled
			}
			g.sendWants(peer, want, flags)
		}
	}
	if m.Buckets != nil && (m.BucketsReply || pushPull) {
		g.answerBuckets(peer, m.Buckets)
	}
	for _, l := range m.Leaves {
		if named := g.noteLeave(l); named != nil {
			g.floodLeave(l, m.From, named)
		}
	}
	// Keyring requests come over TCP (Gossip.Keyring sends them
	// reliably), each on its own memberlist goroutine: saving the keyring
	// and answering may block it.
	for _, r := range m.KeyReqs {
		g.keyRequest(peer, r)
	}
	for _, r := range m.KeyResps {
		g.keyAnswer(m.From, r)
	}
	for _, id := range m.SummaryReqs {
		b := newMessage(g.version(peer), g.name)
		b.summary(id, g.store.Summary())
		g.sendUDP(peer, b)
	}
	if len(m.Summaries) > 0 {
		g.answerProbes(m.From, m.Summaries)
	}
	if heard {
		g.contacts.heard(m.From)
	}
	g.send(outs)
	g.announceLocal(local)
	if len(outs) > 0 {
		g.poke()
	}
}

// expectation is what a push/pull peer will send of an origin.
type expectation struct {
	epoch, known uint64
	until        time.Time
}

// expectFor is how long an expected transfer holds off the same offers.
const expectFor = 10 * time.Second

// expecting records what a push/pull peer, which has this agent's digest,
// is about to send.
func (g *Gossip) expecting(want []catalog.Want, peer []catalog.OriginDigest, now time.Time) {
	if len(want) == 0 {
		return
	}
	by := make(map[string]catalog.OriginDigest, len(peer))
	for _, d := range peer {
		by[d.Origin] = d
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, w := range want {
		d := by[w.Origin]
		g.expect[w.Origin] = expectation{epoch: d.Epoch, known: d.Known, until: now.Add(expectFor)}
	}
}

// unexpected drops the wants that a transfer under way will satisfy: a
// node joining gets the whole catalog from its seed, and every other
// member offering its own section at the same time would send it twice.
func (g *Gossip) unexpected(want []catalog.Want, peer []catalog.OriginDigest, now time.Time) []catalog.Want {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.expect) == 0 {
		return want
	}
	for o, e := range g.expect {
		if now.After(e.until) {
			delete(g.expect, o)
		}
	}
	return slices.DeleteFunc(want, func(w catalog.Want) bool {
		e, ok := g.expect[w.Origin]
		if !ok {
			return false
		}
		for _, d := range peer {
			if d.Origin == w.Origin {
				return d.Epoch == e.epoch && d.Known <= e.known
			}
		}
		return false
	})
}

// announceLocal broadcasts this node's own entries after the catalog
// re-stamped them, and has its new epoch announced through node metadata
// (a takeover of a node with no services changes only the epoch).
func (g *Gossip) announceLocal(local []catalog.Entry) {
	if len(local) > 0 {
		g.log.Info("re-announcing local entries the cluster held at another version", "entries", len(local))
		g.Broadcast(local...)
	}
	if epoch := g.store.Epoch(); g.epoch.Swap(epoch) != epoch {
		g.metaUpdate()
	}
}

// metaUpdate has the owner re-announce this node's metadata. UpdateNode
// takes memberlist locks the caller of a delegate may hold, so the
// owner of the layer runs it (see MetaChanged).
func (g *Gossip) metaUpdate() {
	select {
	case g.metaChanged <- struct{}{}:
	default: // one pending re-announcement covers this change too
	}
}

// send delivers the tree's outs, one UDP message per peer (or several,
// if they do not fit one packet).
func (g *Gossip) send(outs []plumtree.Out) {
	if len(outs) == 0 {
		return
	}
	g.mu.Lock()
	type batch struct {
		peer *member
		msgs []*builder
	}
	byPeer := map[string]*batch{}
	var order []string
	for _, o := range outs {
		p := g.members[o.To]
		if p == nil {
			continue
		}
		bt := byPeer[o.To]
		if bt == nil {
			bt = &batch{peer: p}
			byPeer[o.To] = bt
			order = append(order, o.To)
		}
		cur := func(n int) *builder {
			if len(bt.msgs) == 0 || bt.msgs[len(bt.msgs)-1].len()+n > udpBudget {
				bt.msgs = append(bt.msgs, g.newMessage(p))
			}
			return bt.msgs[len(bt.msgs)-1]
		}
		switch o.Kind {
		case plumtree.Eager:
			for _, pl := range o.Payloads {
				if o.Relay {
					cur(len(pl) + 8).relay(pl)
				} else {
					cur(len(pl) + 8).entry(pl)
				}
				g.stats.Pushed.Add(1)
			}
		case plumtree.IHave:
			for _, id := range o.IDs {
				cur(len(id.Origin) + 24).ihave(id)
				g.stats.IHaves.Add(1)
			}
		case plumtree.Prune:
			for _, origin := range o.Origins {
				cur(len(origin) + 8).prune(origin)
				g.stats.Prunes.Add(1)
			}
		case plumtree.Graft:
			for _, origin := range o.Origins {
				w := catalog.Want{Origin: origin}
				// The store is behind the agent's lock, taken after
				// this one (never the other way round).
				if epoch, known, ok := g.store.Known(origin); ok {
					w.Epoch, w.Known = epoch, known
				}
				cur(len(origin)+32).want(w, wantGraft)
				g.stats.Grafts.Add(1)
			}
		}
	}
	g.mu.Unlock()
	for _, name := range order {
		bt := byPeer[name]
		for _, b := range bt.msgs {
			g.sendUDP(bt.peer, b)
		}
	}
}

// newMessage starts a message to a member in the version both speak.
func (g *Gossip) newMessage(p *member) *builder {
	v := g.version(p)
	b := newMessage(v, g.name)
	if v > ProtocolMax && len(g.extraRecord) > 0 {
		b.record(200, g.extraRecord)
	}
	return b
}

// sendUDP sends one message to a member as a UDP packet (best effort).
func (g *Gossip) sendUDP(p *member, b *builder) {
	ml := g.live()
	if ml == nil {
		return
	}
	g.stats.BytesOut.Add(uint64(b.len()))
	if err := ml.SendBestEffort(&p.node, b.b); err != nil {
		g.log.Debug("send failed", "to", p.node.Name, "err", err)
	}
}

// sendWants asks a member for what it has that this agent lacks.
func (g *Gossip) sendWants(p *member, wants []catalog.Want, flags byte) {
	var msgs []*builder
	for _, w := range wants {
		if len(msgs) == 0 || msgs[len(msgs)-1].len()+len(w.Origin)+32 > udpBudget {
			msgs = append(msgs, g.newMessage(p))
		}
		msgs[len(msgs)-1].want(w, flags)
	}
	for _, b := range msgs {
		g.sendUDP(p, b)
	}
}

// sendDeltas sends deltas to a member: in UDP packets if they fit a few,
// else in chunks over TCP, from the layer's senders.
func (g *Gossip) sendDeltas(p *member, ds []catalog.Delta) {
	if len(ds) == 0 {
		return
	}
	var total, size int
	for _, d := range ds {
		total += len(d.Entries)
		size += deltaSize(d)
	}
	g.stats.DeltaEntriesSent.Add(uint64(total))
	if size <= 4*udpBudget && len(ds) <= 8 {
		var msgs []*builder
		for _, d := range ds {
			if n := deltaSize(d); len(msgs) == 0 || msgs[len(msgs)-1].len()+n > udpBudget {
				msgs = append(msgs, g.newMessage(p))
			}
			msgs[len(msgs)-1].delta(d, uint64(total))
		}
		for _, b := range msgs {
			g.sendUDP(p, b)
		}
		return
	}
	g.queue(job{to: p, deltas: ds, total: uint64(total)})
}

// Advertised is this agent's advertised gossip address and port.
func (g *Gossip) Advertised() (net.IP, uint16) { return g.selfAddr, g.selfPort }

// Leave announces this node's departure and waits up to timeout for it to
// go out. Other agents hide its services as soon as the announcement
// reaches them, and record the node as left rather than failed.
func (g *Gossip) Leave(timeout time.Duration) error {
	l := Leave{Node: g.name, Epoch: g.store.Epoch(), Gen: g.gen.Load()}
	g.mu.Lock()
	g.leaving[g.name] = l
	// The leaving node tells every member itself: one hop instead of the
	// overlay's diameter (a dozen hops at a few hundred agents, each a
	// wake-up of a busy host), for one small packet per member, once.
	// Receivers still pass it on along the overlay, for any it missed.
	to := make([]*member, 0, len(g.members))
	for n, p := range g.members {
		if n != g.name {
			to = append(to, p)
		}
	}
	g.mu.Unlock()
	for _, p := range to {
		b := g.newMessage(p)
		b.leave(l)
		g.sendUDP(p, b)
	}
	if err := g.live().Leave(timeout); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	return nil
}

// floodLeave sends a leave announcement to every overlay neighbour but
// the one it came from, and to the node it names (no longer a member
// here), which refutes it if it did not leave; each agent passes it on
// once, so it reaches all within a few network hops. memberlist's own
// leave (slower) reaches any agent this misses.
func (g *Gossip) floodLeave(l Leave, from string, named *member) {
	g.mu.Lock()
	g.refreshOverlay(time.Now(), true)
	var to []*member
	for _, n := range g.tree.Peers() {
		if p := g.members[n]; p != nil && n != from {
			to = append(to, p)
		}
	}
	g.mu.Unlock()
	if named != nil && named.node.Name != from {
		to = append(to, named)
	}
	for _, p := range to {
		b := g.newMessage(p)
		b.leave(l)
		g.sendUDP(p, b)
	}
}

// noteLeave takes a leave announcement if it names a member's current run
// and generation, and returns the member if it was news (nil if not). An
// announcement for this node that it did not make is refuted: the node
// bumps its generation and announces itself again, which undoes the
// leave everywhere.
func (g *Gossip) noteLeave(l Leave) *member {
	g.mu.Lock()
	if old, ok := g.leaving[l.Node]; ok && old == l {
		g.mu.Unlock()
		return nil
	}
	if l.Node == g.name {
		if _, mine := g.leaving[g.name]; mine {
			g.mu.Unlock()
			return nil
		}
		g.mu.Unlock()
		if l.Epoch == g.store.Epoch() && l.Gen == g.gen.Load() {
			g.gen.Add(1)
			g.stats.LeavesRefuted.Add(1)
			g.log.Warn("refuting a leave announced in this node's name")
			g.metaUpdate()
		}
		return nil
	}
	p := g.members[l.Node]
	if p == nil {
		p = g.departed[l.Node]
	}
	if p == nil || p.meta.Epoch != l.Epoch || p.meta.Gen != l.Gen {
		// Not a member, or not its current run: stale or forged.
		g.mu.Unlock()
		return nil
	}
	g.leaving[l.Node] = l
	g.mu.Unlock()
	g.setNode(&p.node, catalog.StatusLeft)
	return p
}

// isLeaving reports whether the node announced its leave in the run and
// generation its metadata shows.
func (g *Gossip) isLeaving(name string, meta NodeMeta) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	l, ok := g.leaving[name]
	return ok && l.Epoch == meta.Epoch && l.Gen == meta.Gen
}

// MetaChanged delivers a value when this node's metadata changed and must
// be re-announced with UpdateMeta by the layer's owner.
func (g *Gossip) MetaChanged() <-chan struct{} { return g.metaChanged }

// UpdateMeta re-announces this node's metadata (after an epoch change or
// a refuted leave).
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

// Shutdown stops memberlist and the layer's goroutines. Leave first for a
// graceful exit.
func (g *Gossip) Shutdown() error {
	err := g.live().Shutdown()
	g.stopOnce.Do(func() {
		g.stop()
		g.done.Wait()
	})
	if err != nil {
		return fmt.Errorf("shutdown gossip: %w", err)
	}
	return nil
}
