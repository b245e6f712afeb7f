package catalog

import (
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	seedFlag   = flag.Uint64("seed", 0, "run the catalog property tests with this one seed")
	roundsFlag = flag.Int("rounds", 0, "run each catalog property test this many rounds (a soak)")
)

// seeds runs f once per seed: rounds seeds (or -rounds) from a random
// base, logged, or just -seed. Failures name the seed to rerun with.
func seeds(t *testing.T, rounds int, f func(t testing.TB, rng *rand.Rand)) {
	t.Helper()
	if *roundsFlag > 0 {
		rounds = *roundsFlag
	}
	list := make([]uint64, 0, rounds)
	if *seedFlag != 0 {
		list = append(list, *seedFlag)
	} else {
		base := rand.Uint64() >> 1
		t.Logf("seeds %d to %d (rerun one with -seed=N)", base, base+uint64(rounds)-1)
		for i := range rounds {
			list = append(list, base+uint64(i))
		}
	}
	for _, seed := range list {
		f(seededTB{t, seed}, rand.New(rand.NewPCG(seed, seed^0x5eed)))
		if t.Failed() {
			return
		}
	}
}

// seededTB names the seed in every failure.
type seededTB struct {
	testing.TB
	seed uint64
}

func (s seededTB) Fatalf(format string, args ...any) {
	s.TB.Helper()
	s.TB.Fatalf("seed %d: "+format, append([]any{s.seed}, args...)...)
}

func (s seededTB) Errorf(format string, args ...any) {
	s.TB.Helper()
	s.TB.Errorf("seed %d: "+format, append([]any{s.seed}, args...)...)
}

var (
	idPool   = []string{"a", "b", "c", "d", "e"}
	namePool = []string{"web", "db", "api"}
	tagPool  = []string{"x", "y", "z"}
)

var checkPool = []string{"c1", "c2", "service:a"}

// randCheck is a check bound to a random service of idPool, or to the node.
func randCheck(rng *rand.Rand, id string) Check {
	c := Check{ID: id, Name: "check " + id, Type: "ttl", Status: Health(1 + rng.IntN(3)), Output: fmt.Sprint(rng.IntN(3))}
	if rng.IntN(3) > 0 {
		c.ServiceID = idPool[rng.IntN(len(idPool))]
	}
	c.Damped = rng.IntN(4) == 0
	return c
}

func randService(rng *rand.Rand, id string) Service {
	s := Service{ID: id, Name: namePool[rng.IntN(len(namePool))], Port: 1 + rng.IntN(3), Weights: Weights{1, 1}}
	for _, tag := range tagPool {
		if rng.IntN(2) == 0 {
			s.Tags = append(s.Tags, tag)
		}
	}
	if rng.IntN(3) == 0 {
		s.Meta = map[string]string{"v": fmt.Sprint(rng.IntN(3))}
	}
	return s
}

// run is one agent start of an origin: its epoch and every write it made,
// in order (counters 1…n).
type run struct {
	name   string
	epoch  uint64
	writes []Entry
}

// history generates what several origins wrote over one or more runs each,
// with increasing epochs, and the merge state it must end in: per origin,
// the entries of its last run, the last write of each ID.
func history(rng *rand.Rand) (runs []run, want []Entry) {
	nOrigins := 1 + rng.IntN(4)
	for o := range nOrigins {
		name := fmt.Sprintf("o%d", o)
		epochs := rng.Perm(12)[:1+rng.IntN(3)]
		slices.Sort(epochs)
		var last map[string]Entry
		for _, ep := range epochs {
			r := run{name: name, epoch: uint64(ep + 1)}
			live := map[string]bool{}
			writes := map[string]Entry{}
			var counter uint64
			for range 1 + rng.IntN(10) {
				counter++
				e := Entry{Origin: name, Version: Version{r.epoch, counter}}
				var k string
				if rng.IntN(3) == 0 {
					id := checkPool[rng.IntN(len(checkPool))]
					k = "1" + id
					e.Kind = KindCheck
					if live[k] && rng.IntN(3) == 0 {
						e = writes[k].tombstone(e.Version)
					} else {
						e.Check = randCheck(rng, id)
					}
				} else {
					id := idPool[rng.IntN(len(idPool))]
					k = "0" + id
					if live[k] && rng.IntN(3) == 0 {
						e = writes[k].tombstone(e.Version)
					} else {
						e.Service = randService(rng, id)
						if rng.IntN(8) == 0 {
							e.Ext = "\x07\x01z" // a later version's record
						}
					}
				}
				live[k] = !e.Deleted
				writes[k] = e
				r.writes = append(r.writes, e)
			}
			runs = append(runs, r)
			last = writes
		}
		for _, id := range slices.Sorted(maps.Keys(last)) {
			want = append(want, last[id])
		}
	}
	return runs, want
}

// deltaOf is what an agent that had every write of r up to counter to
// sends a peer at from: the last write of each ID, if above from.
func deltaOf(r run, from, to uint64, full bool) Delta {
	last := map[entryKey]Entry{}
	for _, e := range r.writes[:to] {
		last[e.key()] = e
	}
	d := Delta{Origin: r.name, Epoch: r.epoch, From: from, To: to, Full: full, Upto: to}
	for _, e := range last {
		if e.Version.Counter > from {
			d.Entries = append(d.Entries, e)
		}
	}
	slices.SortFunc(d.Entries, func(a, b Entry) int { return int(a.Version.Counter) - int(b.Version.Counter) })
	return d
}

// indexWatch checks that the index never goes back, that ServiceIndex
// moves exactly when a service's instances change, and that the index of
// a name never seen does not move at all.
type indexWatch struct {
	last  uint64
	names map[string]uint64
	views map[string][]Instance
}

func (w *indexWatch) check(t testing.TB, c *Catalog, what string) {
	t.Helper()
	checkConsistency(t, c)
	if c.Index() < w.last {
		t.Fatalf("%s: %s: Index went back %d→%d", c.LocalName(), what, w.last, c.Index())
	}
	w.last = c.Index()
	first := w.names == nil
	if first {
		w.names, w.views = map[string]uint64{}, map[string][]Instance{}
	}
	for _, n := range append(namePool, "never-seen") {
		i := c.ServiceIndex(n)
		if i < w.names[n] {
			t.Fatalf("%s: %s: ServiceIndex(%q) went back %d→%d", c.LocalName(), what, n, w.names[n], i)
		}
		if i > c.Index() {
			t.Fatalf("%s: %s: ServiceIndex(%q) = %d above Index %d", c.LocalName(), what, n, i, c.Index())
		}
		view := c.Instances(n)
		changed := !reflect.DeepEqual(view, w.views[n])
		// A delta may add and drop one instance (a put and its
		// tombstone, an entry and a later epoch): a spurious move there
		// is allowed, a missed one never.
		merged := strings.Contains(what, "delta")
		// A name with no instances may move when Reap forgets names (the
		// index of a name the catalog holds nothing of is the highest a
		// forgotten one had, as Consul's "extinction" index).
		_, held := c.names[n]
		if moved := i != w.names[n]; !first && (changed && !moved || moved && !changed && !merged && (held || len(view) > 0)) {
			t.Fatalf("%s: %s: Instances(%q) changed %v but ServiceIndex moved %v:\n%+v\n%+v", c.LocalName(), what, n, changed, moved, w.views[n], view)
		}
		w.names[n], w.views[n] = i, view
	}
}

type instanceKey struct {
	node   string
	svc    Service
	v      Version
	status Health
	checks []Check
}

// view is what a reader sees, minus node details (which depend on the
// order SetNode calls came in).
func view(c *Catalog) map[string][]instanceKey {
	v := map[string][]instanceKey{}
	for name := range c.Services() {
		for _, in := range c.Instances(name) {
			k := instanceKey{node: in.Node.Name, svc: in.Service, v: in.Version, status: in.Status}
			for _, ck := range in.Checks {
				k.checks = append(k.checks, ck.Check)
			}
			v[name] = append(v[name], k)
		}
	}
	return v
}

// Invariant 2: merge is a join. Every receiver is told of each origin's
// runs in order (as memberlist announces them) and gets every write, in
// its own random order, with duplicates, one by one or in deltas of any
// run (chunks in any order, full resends included), interleaved with
// anti-entropy exchanges with the other receivers; all must end in the
// same merge state, the one the history implies, with equal digests.
func TestMergeIsJoin(t *testing.T) {
	seeds(t, 500, func(t testing.TB, rng *rand.Rand) {
		runs, want := history(rng)
		recv := make([]*Catalog, 2+rng.IntN(3))
		watch := make([]indexWatch, len(recv))
		for i := range recv {
			recv[i] = New(fmt.Sprintf("r%d", i), 1)
		}
		type item struct {
			run   int
			entry *Entry
			delta *Delta
		}
		queues := make([][]item, len(recv))
		next := make([]map[string]int, len(recv)) // origin → next run to announce
		for i := range recv {
			next[i] = map[string]int{}
			var q []item
			for ri, r := range runs {
				for j := range r.writes {
					for range 1 + rng.IntN(2) {
						q = append(q, item{run: ri, entry: &r.writes[j]})
					}
				}
				for range rng.IntN(3) {
					n := uint64(len(r.writes))
					from := rng.Uint64N(n + 1)
					to := from + rng.Uint64N(n-from+1)
					full := rng.IntN(4) == 0
					if full {
						from = 0
					}
					d := deltaOf(r, from, to, full)
					q = append(q, item{run: ri, delta: &d})
				}
			}
			rng.Shuffle(len(q), func(a, b int) { q[a], q[b] = q[b], q[a] })
			queues[i] = q
		}
		// announce tells receiver i of the runs of an origin up to ri.
		announce := func(i, ri int) {
			name := runs[ri].name
			for k := next[i][name]; k < len(runs); k++ {
				if runs[k].name != name {
					continue
				}
				if k > ri {
					break
				}
				recv[i].SetNode(Node{Name: name, Status: StatusAlive, Epoch: runs[k].epoch}, t0)
				watch[i].check(t, recv[i], "node")
				next[i][name] = k + 1
			}
		}
		now := t0
		for {
			var busy []int
			for i := range queues {
				if len(queues[i]) > 0 {
					busy = append(busy, i)
				}
			}
			if len(busy) == 0 {
				break
			}
			i := busy[rng.IntN(len(busy))]
			c := recv[i]
			now = now.Add(time.Second)
			if rng.IntN(10) == 0 {
				// An exchange with another receiver.
				j := rng.IntN(len(recv))
				if j != i {
					syncChunks(t, c, recv[j], now, 200+rng.IntN(2000))
					watch[i].check(t, c, "exchange delta")
				}
				continue
			}
			it := queues[i][0]
			queues[i] = queues[i][1:]
			// The run is announced before or after the write arrives; if
			// after, the write is lost to this receiver for now (an
			// exchange below brings it).
			if rng.IntN(4) > 0 {
				announce(i, it.run)
			}
			if it.entry != nil {
				c.Apply(*it.entry, now)
				watch[i].check(t, c, "entry")
			} else {
				c.ApplyDelta(*it.delta, now)
				watch[i].check(t, c, "delta")
			}
		}
		// Everything announced; exchanges among receivers and with the
		// origins' last runs settle what arrived before its announcement.
		for i := range recv {
			for ri := range runs {
				announce(i, ri)
			}
		}
		last := map[string]run{}
		for _, r := range runs {
			last[r.name] = r
		}
		for round := 0; round < 2; round++ {
			for i, c := range recv {
				for _, r := range last {
					d := deltaOf(r, 0, uint64(len(r.writes)), false)
					send, want, _ := c.Plan([]OriginDigest{{Origin: r.name, Epoch: r.epoch, Known: d.To}}, Listed([]OriginDigest{{Origin: r.name}}), now)
					_ = send
					for _, w := range want {
						dd := deltaOf(r, w.Known, d.To, w.Full || w.Epoch != r.epoch)
						c.ApplyDelta(dd, now)
						watch[i].check(t, c, "delta from origin")
					}
				}
				for j := range recv {
					if j != i {
						syncFrom(t, c, recv[j], now)
					}
				}
			}
		}
		for _, c := range recv {
			var got []Entry
			for _, e := range c.Entries() {
				if e.Origin != c.LocalName() {
					got = append(got, e)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: entries\n got %s\nwant %s", c.LocalName(), fmtEntries(got), fmtEntries(want))
			}
			if c.LocalEpoch() != 1 {
				t.Fatalf("%s: local epoch moved to %d", c.LocalName(), c.LocalEpoch())
			}
		}
		v0 := view(recv[0])
		for _, c := range recv[1:] {
			if v := view(c); !reflect.DeepEqual(v, v0) {
				t.Fatalf("views differ:\n%s: %v\n%s: %v", recv[0].LocalName(), v0, c.LocalName(), v)
			}
		}
		// Agreeing catalogs have equal digests of every origin they share.
		for _, r := range last {
			d0, _ := recv[0].OriginDigest(r.name)
			for _, c := range recv[1:] {
				if d, _ := c.OriginDigest(r.name); d != d0 {
					t.Fatalf("digests of %s differ:\n%+v\n%+v", r.name, d0, d)
				}
			}
			if d0.Known != uint64(len(r.writes)) {
				t.Fatalf("known %d of %s, which wrote %d", d0.Known, r.name, len(r.writes))
			}
		}
	})
}

func fmtEntries(es []Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "\n  %s/%s@%d.%d", e.Origin, e.ID(), e.Version.Epoch, e.Version.Counter)
		if e.Deleted {
			b.WriteString(" deleted")
		} else if e.Kind == KindCheck {
			fmt.Fprintf(&b, " check of %q: %s %q", e.Check.ServiceID, e.Check.Status, e.Check.Output)
		} else {
			fmt.Fprintf(&b, " %s:%d %v %v", e.Service.Name, e.Service.Port, e.Service.Tags, e.Service.Meta)
		}
	}
	return b.String()
}

// cluster simulates agents gossiping through a network that delays,
// reorders, duplicates and drops messages, with anti-entropy exchanges
// whose chunks arrive late, out of order or not at all, restarts with new
// epochs (clocks going back included), frozen agents that wake after the
// tombstone TTL, and tombstone reaping. Membership (memberlist) is
// modelled as instant: every agent learns a node's new epoch at once.
type cluster struct {
	t      testing.TB
	rng    *rand.Rand
	now    time.Time
	nodes  []*Catalog
	frozen []bool
	epochs map[uint64]bool
	wire   []message
	watch  map[*Catalog]*indexWatch
	reap   bool
	// clockBack lets a restart pick an epoch below the last one, so that
	// agents take over from their earlier runs, and two runs of one name
	// can end up in the same epoch.
	clockBack bool
}

type message struct {
	to    int
	entry *Entry
	delta *Delta
}

func newCluster(t testing.TB, rng *rand.Rand, n int, reap, clockBack bool) *cluster {
	c := &cluster{t: t, rng: rng, now: t0, epochs: map[uint64]bool{}, watch: map[*Catalog]*indexWatch{},
		reap: reap, clockBack: clockBack, frozen: make([]bool, n)}
	for i := range n {
		c.nodes = append(c.nodes, New(fmt.Sprintf("n%d", i), c.newEpoch(0)))
	}
	for i := range c.nodes {
		c.announce(i)
	}
	return c
}

// announce tells every agent node i's current epoch (memberlist's alive
// message after a start or a take-over).
func (c *cluster) announce(i int) {
	n := c.nodes[i]
	for _, a := range c.nodes {
		a.SetNode(Node{Name: n.LocalName(), Status: StatusAlive, Epoch: n.LocalEpoch()}, c.now)
	}
}

// newEpoch picks an epoch for a start: above last unless clocks go back.
func (c *cluster) newEpoch(last uint64) uint64 {
	if !c.clockBack {
		return last + 1 + c.rng.Uint64N(1000)
	}
	for {
		e := 1 + c.rng.Uint64N(1000)
		if !c.epochs[e] {
			c.epochs[e] = true
			return e
		}
	}
}

// gossip puts an entry on the wire for every other node; some are
// dropped, some arrive twice.
func (c *cluster) gossip(from int, e Entry) {
	for to := range c.nodes {
		if to == from || c.rng.IntN(4) == 0 {
			continue
		}
		c.wire = append(c.wire, message{to: to, entry: &e})
		if c.rng.IntN(5) == 0 {
			c.wire = append(c.wire, message{to: to, entry: &e})
		}
	}
}

// changed gossips what a catalog reported, and announces its new epoch if
// it moved.
func (c *cluster) changed(i int, ch Changes, epoch uint64) {
	for _, e := range append(ch.Accepted, ch.Local...) {
		c.gossip(i, e)
	}
	if c.nodes[i].LocalEpoch() != epoch {
		c.announce(i)
	}
}

func (c *cluster) check(i int, what string) {
	n := c.nodes[i]
	w := c.watch[n]
	if w == nil {
		w = &indexWatch{}
		c.watch[n] = w
	}
	w.check(c.t, n, what)
}

// logf traces the simulation when it runs one seed (-seed), to debug it.
func (c *cluster) logf(format string, args ...any) {
	if *seedFlag != 0 {
		c.t.Logf(format, args...)
	}
}

func (c *cluster) deliver(k int) bool {
	m := c.wire[k]
	c.wire = append(c.wire[:k], c.wire[k+1:]...)
	if c.frozen[m.to] {
		return false // lost on a frozen node
	}
	n := c.nodes[m.to]
	epoch := n.LocalEpoch()
	var ch Changes
	if m.entry != nil {
		ch = n.Apply(*m.entry, c.now)
		c.logf("%s: apply%s → %s%s", n.LocalName(), fmtEntries([]Entry{*m.entry}), fmtEntries(ch.Accepted), fmtEntries(ch.Local))
		c.check(m.to, "deliver")
	} else {
		ch = n.ApplyDelta(*m.delta, c.now)
		c.logf("%s: delta %s@%d (%d,%d] full=%v%s → %s%s", n.LocalName(), m.delta.Origin, m.delta.Epoch, m.delta.From, m.delta.To, m.delta.Full,
			fmtEntries(m.delta.Entries), fmtEntries(ch.Accepted), fmtEntries(ch.Local))
		c.check(m.to, "deliver delta")
	}
	c.changed(m.to, ch, epoch)
	return !ch.Empty()
}

// exchange runs anti-entropy from node i to node j: i's digest reaches j,
// j plans, its deltas (and i's answers to j's wants) go on the wire.
func (c *cluster) exchange(i, j int, lossy bool) {
	a, b := c.nodes[i], c.nodes[j]
	epoch := b.LocalEpoch()
	send, want, ch := b.Plan(a.Digest(), nil, c.now)
	c.changed(j, ch, epoch)
	budget := 150 + c.rng.IntN(1500)
	put := func(to int, ds []Delta) {
		for k := range ds {
			if lossy && c.rng.IntN(6) == 0 {
				continue
			}
			c.wire = append(c.wire, message{to: to, delta: &ds[k]})
		}
	}
	for _, w := range send {
		put(i, b.Deltas(w, budget))
	}
	for _, w := range want {
		put(j, a.Deltas(w, budget))
	}
}

func (c *cluster) step() {
	c.now = c.now.Add(time.Second)
	i := c.rng.IntN(len(c.nodes))
	n := c.nodes[i]
	switch r := c.rng.IntN(100); {
	case r < 25: // register, or a check changes state
		var e Entry
		var changed bool
		var err error
		if c.rng.IntN(3) == 0 {
			e, changed, err = n.PutCheck(randCheck(c.rng, checkPool[c.rng.IntN(len(checkPool))]), c.now)
		} else {
			e, changed, err = n.Put(randService(c.rng, idPool[c.rng.IntN(len(idPool))]), c.now)
		}
		if err != nil {
			c.t.Fatalf("Put: %v", err)
		}
		if changed {
			c.gossip(i, e)
			c.logf("%s: put%s", n.LocalName(), fmtEntries([]Entry{e}))
		}
		c.check(i, "put")
	case r < 30: // a check is removed
		if live := n.LocalChecks(); len(live) > 0 {
			e, ok := n.DeleteCheck(live[c.rng.IntN(len(live))].Check.ID, c.now)
			if !ok {
				c.t.Fatalf("DeleteCheck of a live check failed")
			}
			c.gossip(i, e)
			c.logf("%s: delete check%s", n.LocalName(), fmtEntries([]Entry{e}))
			c.check(i, "delete check")
		}
	case r < 35: // deregister
		if live := n.LocalServices(); len(live) > 0 {
			e, ok := n.Delete(live[c.rng.IntN(len(live))].ID, c.now)
			if !ok {
				c.t.Fatalf("Delete of a live service failed")
			}
			c.gossip(i, e)
			c.logf("%s: delete%s", n.LocalName(), fmtEntries([]Entry{e}))
			c.check(i, "delete")
		}
	case r < 75: // a message arrives, in any order
		if len(c.wire) > 0 {
			c.deliver(c.rng.IntN(len(c.wire)))
		}
	case r < 85: // anti-entropy with a random peer; deltas may arrive late
		if j := c.rng.IntN(len(c.nodes)); j != i && !c.frozen[i] && !c.frozen[j] {
			c.exchange(i, j, true)
		}
	case r < 88: // restart: empty state, a new epoch announced
		c.nodes[i] = New(n.LocalName(), c.newEpoch(n.LocalEpoch()))
		c.frozen[i] = false
		c.logf("%s: restart in epoch %d", n.LocalName(), c.nodes[i].LocalEpoch())
		for _, b := range c.nodes {
			c.nodes[i].SetNode(Node{Name: b.LocalName(), Status: StatusAlive, Epoch: b.LocalEpoch()}, c.now)
		}
		c.announce(i)
	case r < 90: // the VM is suspended, or wakes up
		if c.reap {
			c.frozen[i] = !c.frozen[i]
			c.logf("%s: frozen %v", n.LocalName(), c.frozen[i])
		}
	default:
		if c.reap && !c.frozen[i] {
			c.logf("%s: reaped %d", n.LocalName(), n.Reap(c.now, 20*time.Second, time.Hour))
			c.check(i, "reap")
		}
	}
}

// settle wakes every node, delivers everything on the wire, then runs
// anti-entropy between every pair until nothing changes.
func (c *cluster) settle() {
	for i := range c.frozen {
		c.frozen[i] = false
	}
	drain := func() bool {
		moved := false
		for budget := 0; len(c.wire) > 0; budget++ {
			if budget > 100000 {
				c.t.Fatalf("gossip does not die down: %d messages on the wire", len(c.wire))
			}
			if c.deliver(c.rng.IntN(len(c.wire))) {
				moved = true
			}
		}
		return moved
	}
	drain()
	for round := 0; ; round++ {
		if round > 10 {
			c.t.Fatalf("anti-entropy does not converge after %d rounds", round)
		}
		moved := false
		for i := range c.nodes {
			for j := range c.nodes {
				if i == j {
					continue
				}
				before := c.nodes[i].Summary()
				c.exchange(i, j, false)
				if drain() || c.nodes[i].Summary() != before {
					moved = true
				}
			}
		}
		if !moved {
			return
		}
	}
}

// liveOf is what a catalog holds live of one origin.
func liveOf(c *Catalog, origin string) []Entry {
	var out []Entry
	for _, e := range c.Entries() {
		if e.Origin == origin && !e.Deleted {
			out = append(out, e)
		}
	}
	return out
}

// TestClusterConverges runs whole agents against each other: once the
// network settles, every agent serves exactly what every origin holds now
// (invariants 2, 3, 4 and 8 end to end: nothing resurrected, not even by
// an agent frozen past the tombstone TTL, nothing of an earlier run left,
// no agent stuck behind its own old epoch), and all summaries agree.
func TestClusterConverges(t *testing.T) {
	for _, v := range []struct{ reap, clockBack bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		t.Run(fmt.Sprintf("reap=%v,clockBack=%v", v.reap, v.clockBack), func(t *testing.T) {
			seeds(t, 40, func(t testing.TB, rng *rand.Rand) {
				c := newCluster(t, rng, 2+rng.IntN(3), v.reap, v.clockBack)
				for range 50 + rng.IntN(250) {
					c.step()
				}
				c.settle()
				for _, o := range c.nodes {
					want := liveOf(o, o.LocalName())
					for _, n := range c.nodes {
						if got := liveOf(n, o.LocalName()); !reflect.DeepEqual(got, want) {
							t.Fatalf("%s holds of %s:%s\n%s holds:%s", n.LocalName(), o.LocalName(), fmtEntries(got), o.LocalName(), fmtEntries(want))
						}
					}
				}
				for _, n := range c.nodes[1:] {
					if !reflect.DeepEqual(view(n), view(c.nodes[0])) {
						t.Fatalf("views differ: %v / %v", view(c.nodes[0]), view(n))
					}
					if n.Summary() != c.nodes[0].Summary() {
						t.Fatalf("summaries differ:\n%+v\n%+v", c.nodes[0].Digest(), n.Digest())
					}
				}
			})
		})
	}
}
