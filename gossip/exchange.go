package gossip

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/gossip/plumtree"
)

// Anti-entropy. Every write travels the broadcast trees at once; these
// exchanges catch what the trees missed (a packet lost with every
// announcement of it, a link down while the write was made, a node that
// was away), at a cost that follows what differs:
//
//   - every ping ack carries the prober's peer's summary; a summary that
//     differs from this agent's starts an exchange with that peer, at most
//     one every exchangeEvery;
//   - a peer that joins, comes back from the dead, restarts or refutes a
//     suspicion is reconciled with at once by a digest of its own origin
//     and this agent's (a partial digest);
//   - memberlist's push/pull carries the whole digest both ways, a
//     backstop every 30 s or more.
//
// A digest names, per origin, the epoch and the counter up to which the
// agent holds every write; the peer answers with the deltas the sender
// lacks and asks for what it lacks itself. Deltas that fit a few packets
// go over UDP, larger ones in chunks over TCP.

// senders are the goroutines that send deltas over TCP: a dead peer's
// connection timeout holds up only one of them.
const senders = 2

// settle is how long after an origin's last change an exchange started
// by a differing summary leaves it alone: a change that recent is most
// likely still travelling the trees, and sending it again would only
// duplicate it.
const settle = time.Second

// job is a delta transfer (or a message) for a sender goroutine.
type job struct {
	to     *member
	deltas []catalog.Delta
	total  uint64
	msg    *builder
}

// queue hands a job to the senders, or drops it (and counts) when they
// are that far behind: the next exchange asks again.
func (g *Gossip) queue(j job) {
	select {
	case g.sendq <- j:
	default:
		g.stats.SendDropped.Add(1)
		g.log.Debug("reliable send queue full; dropped", "to", j.to.node.Name)
	}
}

func (g *Gossip) sender(ctx context.Context) {
	defer g.done.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-g.sendq:
			g.deliver(j)
		}
	}
}

// deliver sends a job over TCP: deltas are packed into messages of at
// most chunkBudget bytes, each its own reliable message.
func (g *Gossip) deliver(j job) {
	if j.msg != nil {
		g.sendReliable(j.to, j.msg)
		return
	}
	var b *builder
	for _, d := range j.deltas {
		if b != nil && b.len()+deltaSize(d) > chunkBudget {
			g.sendReliable(j.to, b)
			b = nil
		}
		if b == nil {
			b = g.newMessage(j.to)
		}
		b.delta(d, j.total)
	}
	if b != nil {
		g.sendReliable(j.to, b)
	}
}

func (g *Gossip) sendReliable(p *member, b *builder) {
	ml := g.live()
	if ml == nil {
		return
	}
	g.stats.BytesOut.Add(uint64(b.len()))
	if err := ml.SendReliable(&p.node, b.b); err != nil {
		g.log.Debug("reliable send failed", "to", p.node.Name, "bytes", b.len(), "err", err)
	}
}

// run is the layer's goroutine: the trees' timers (batched announcements,
// grafts), the overlay after membership changes, and the exchanges that
// acks and membership events asked for.
func (g *Gossip) run(ctx context.Context) {
	defer g.done.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		g.mu.Lock()
		g.refreshOverlay(now, false)
		next := g.tree.Next()
		if g.overlayDirty {
			if at := g.overlayAt.Add(overlayEvery); next.IsZero() || at.Before(next) {
				next = at
			}
		}
		var recon map[string]bool
		if len(g.reconcile) > 0 {
			recon, g.reconcile = g.reconcile, make(map[string]bool)
		}
		ex := g.exchange
		g.exchange = ""
		reset := g.resetPending
		g.resetPending = false
		g.mu.Unlock()

		if reset {
			g.sendResets()
		}
		for peer := range recon {
			g.reconcileWith(peer)
		}
		if ex != "" {
			g.startExchange(ex)
		}
		if !next.IsZero() && !now.Before(next) {
			g.mu.Lock()
			outs := g.tree.Tick(now, g.has)
			g.mu.Unlock()
			g.send(outs)
			continue
		}
		g.progress.idle(g.log, now)
		wait := time.Minute
		if !next.IsZero() {
			wait = next.Sub(now)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-g.wake:
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
		}
	}
}

func (g *Gossip) has(id plumtree.ID) bool {
	return g.store.Has(id.Origin, catalog.Version{Epoch: id.Epoch, Counter: id.Counter})
}

// refreshOverlay recomputes the tree's neighbours after membership
// changed, at most every overlayEvery unless forced. Call with g.mu held.
// When the neighbours changed, this node's links are reset and every
// neighbour is told to reset its link to this node (resetPending, sent by
// the layer's goroutine).
func (g *Gossip) refreshOverlay(now time.Time, force bool) {
	if !g.overlayDirty || !force && now.Sub(g.overlayAt) < overlayEvery {
		return
	}
	names := make([]string, 0, len(g.members))
	for n := range g.members {
		names = append(names, n)
	}
	if g.tree.SetPeers(g.overlay.Neighbors(g.name, names)) {
		g.tree.Reset()
		g.resetPending = true
		g.poke()
	}
	g.overlayDirty, g.overlayAt = false, now
}

// sendResets tells every neighbour to push this node every origin's
// writes again.
func (g *Gossip) sendResets() {
	g.mu.Lock()
	var to []*member
	for _, n := range g.tree.Peers() {
		if p := g.members[n]; p != nil {
			to = append(to, p)
		}
	}
	g.mu.Unlock()
	for _, p := range to {
		b := g.newMessage(p)
		b.reset()
		g.sendUDP(p, b)
	}
}

// exchangeEvery is the least time between two exchanges this agent
// starts because of a differing summary: the configured interval up to
// 32 members, growing with log2 of the cluster beyond, as memberlist's
// push/pull does, since a digest grows with the number of origins.
func (g *Gossip) exchangeEvery() time.Duration {
	n := float64(g.nmembers.Load())
	scale := 1.0
	if n > 32 {
		scale += math.Ceil(math.Log2(n) - 5)
	}
	return time.Duration(scale * float64(g.aeEvery))
}

// peerSummary notes the summary a peer's ack carried: if it differs from
// this agent's, an exchange with the peer starts soon (unless one started
// within exchangeEvery).
func (g *Gossip) peerSummary(peer string, s uint64) {
	if s == g.store.Summary() {
		return
	}
	now := time.Now()
	g.mu.Lock()
	if g.members[peer] == nil || now.Sub(g.lastAE) < g.exchangeEvery() {
		g.mu.Unlock()
		return
	}
	g.lastAE = now
	g.exchange = peer
	g.mu.Unlock()
	g.poke()
}

// reconcileSoon asks for a targeted exchange with a peer that joined or
// came back.
func (g *Gossip) reconcileSoon(peer string) {
	if peer == g.name {
		return
	}
	g.mu.Lock()
	g.reconcile[peer] = true
	g.mu.Unlock()
	g.poke()
}

// reconcileWith sends a peer a partial digest of its own origin and this
// agent's: each side then sends the other what it lacks of either. At
// most one every half second per peer.
func (g *Gossip) reconcileWith(name string) {
	now := time.Now()
	g.mu.Lock()
	p := g.members[name]
	if p == nil || now.Sub(g.lastPeer[name]) < settle/2 {
		g.mu.Unlock()
		return
	}
	g.lastPeer[name] = now
	g.mu.Unlock()
	var ds []catalog.OriginDigest
	for _, o := range []string{name, g.name} {
		d, ok := g.store.OriginDigest(o)
		if !ok {
			d = catalog.OriginDigest{Origin: o}
		}
		ds = append(ds, d)
	}
	b := g.newMessage(p)
	b.digest(ds, digestReply|digestPartial)
	g.sendUDP(p, b)
}

// startExchange sends a peer this agent's summary by bucket; the peer
// answers with the digest of the buckets that differ (answerBuckets), and
// this agent with what the peer lacks of those and its wants. An exchange
// costs what differs: at a thousand origins a whole digest is 35 KB, the
// buckets 530 bytes.
func (g *Gossip) startExchange(name string) {
	g.mu.Lock()
	p := g.members[name]
	g.mu.Unlock()
	if p == nil {
		return
	}
	g.stats.Exchanges.Add(1)
	bs := g.store.Buckets()
	b := g.newMessage(p)
	b.buckets(&bs, true)
	g.sendUDP(p, b)
}

// answerBuckets compares a peer's summary by bucket with this agent's
// and sends it the digest of the buckets that differ, asking for its side
// (recent changes left to the trees).
func (g *Gossip) answerBuckets(p *member, theirs *[catalog.SummaryBuckets]uint64) {
	ours := g.store.Buckets()
	var differ []int
	for i := range ours {
		if ours[i] != theirs[i] {
			differ = append(differ, i)
		}
	}
	if len(differ) == 0 {
		return
	}
	b := g.newMessage(p)
	b.digest(g.store.DigestIn(differ), digestReply|digestSettled, differ...)
	if b.len() <= udpBudget {
		g.sendUDP(p, b)
		return
	}
	g.queue(job{to: p, msg: b})
}

// progress logs the catch-up of a large catalog: a line every few seconds
// while entries arrive from a peer, and one when they stop.
type progress struct {
	mu sync.Mutex
	m  map[string]*transfer
}

type transfer struct {
	entries             int
	expect              uint64
	start, last, logged time.Time
}

// progressEvery is how often progress is logged during a transfer;
// progressMin the entries a transfer needs to be logged at all.
const (
	progressEvery = 2 * time.Second
	progressMin   = 1000
)

func (p *progress) add(log *slog.Logger, from string, n int, total uint64, now time.Time) {
	if n == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[string]*transfer)
	}
	t := p.m[from]
	if t == nil {
		t = &transfer{start: now, logged: now}
		p.m[from] = t
	}
	t.entries += n
	t.expect = max(t.expect, total)
	t.last = now
	if t.entries >= progressMin && now.Sub(t.logged) >= progressEvery {
		t.logged = now
		log.Info("fetching catalog", "from", from, "entries", t.entries, "transfer", t.expect, "elapsed", now.Sub(t.start).Round(time.Millisecond))
	}
}

// idle ends the transfers that have been quiet for a second.
func (p *progress) idle(log *slog.Logger, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for from, t := range p.m {
		if now.Sub(t.last) < time.Second {
			continue
		}
		if t.entries >= progressMin {
			log.Info("catalog fetched", "from", from, "entries", t.entries, "took", t.last.Sub(t.start).Round(time.Millisecond))
		}
		delete(p.m, from)
	}
}

// probe is a convergence probe under way.
type probe struct {
	want map[string]bool
	got  map[string]uint64
	done chan struct{}
}

// Probe asks every alive member for the summary of the catalog it serves
// now and returns the answers that came within timeout, by member (see
// GET /v1/shoal/convergence). A member missing from the answer did not
// answer in time.
func (g *Gossip) Probe(ctx context.Context, timeout time.Duration) map[string]uint64 {
	g.mu.Lock()
	g.probeSeq++
	id := g.probeSeq<<16 | uint64(rand.Uint32()&0xffff)
	p := &probe{want: map[string]bool{}, got: map[string]uint64{}, done: make(chan struct{})}
	var to []*member
	for n, m := range g.members {
		p.want[n] = true
		to = append(to, m)
	}
	g.probes[id] = p
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.probes, id)
		g.mu.Unlock()
	}()
	if len(to) == 0 {
		return p.got
	}
	for _, m := range to {
		b := g.newMessage(m)
		b.summaryReq(id)
		g.sendUDP(m, b)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]uint64, len(p.got))
	for n, s := range p.got {
		out[n] = s
	}
	return out
}

func (g *Gossip) answerProbes(from string, sums [][2]uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range sums {
		p := g.probes[s[0]]
		if p == nil || !p.want[from] {
			continue
		}
		if _, dup := p.got[from]; dup {
			continue
		}
		p.got[from] = s[1]
		if len(p.got) == len(p.want) {
			close(p.done)
		}
	}
}
