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

// update is one thing a receiver can be told about an origin.
type update struct {
	entry  *Entry
	origin *OriginState
	node   *Node
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

// history generates what several origins wrote over one or more runs each
// (a run is an agent start, with its own epoch, not necessarily higher than
// the last one: clocks go back), and the merge state it must end in: per
// origin, the entries of its highest epoch, the last write of each ID.
func history(rng *rand.Rand) (updates []update, want []Entry) {
	nOrigins := 1 + rng.IntN(4)
	for o := range nOrigins {
		name := fmt.Sprintf("o%d", o)
		epochs := rng.Perm(12)[:1+rng.IntN(3)]
		var top uint64
		var last map[string]Entry
		for _, ep := range epochs {
			epoch := uint64(ep + 1)
			// Keys sort as the catalog lists entries: services, then
			// checks, each by ID.
			live := map[string]bool{}
			writes := map[string]Entry{}
			var counter uint64
			for range 1 + rng.IntN(8) {
				counter++
				e := Entry{Origin: name, Version: Version{epoch, counter}}
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
					}
				}
				live[k] = !e.Deleted
				writes[k] = e
				updates = append(updates, update{entry: &e})
			}
			updates = append(updates,
				update{origin: &OriginState{Name: name, Epoch: epoch, Counter: counter}},
				update{node: &Node{Name: name, Address: "10.0.0.1", Status: StatusAlive, Epoch: epoch}})
			if epoch > top {
				top, last = epoch, writes
			}
		}
		for _, id := range slices.Sorted(maps.Keys(last)) {
			want = append(want, last[id])
		}
	}
	return updates, want
}

// deliveries shuffles the updates and duplicates some of them.
func deliveries(rng *rand.Rand, ups []update) []update {
	out := slices.Clone(ups)
	for _, u := range ups {
		for rng.IntN(3) == 0 {
			out = append(out, u)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// indexWatch checks that the index never goes back and that the index of a
// name never seen is never below that of one seen.
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
		// ServiceIndex moves exactly when what a reader sees of the
		// service does (nodes included: every instance carries its node);
		// that of a name never seen follows Index.
		view := c.Instances(n)
		changed := !reflect.DeepEqual(view, w.views[n])
		_, seen := c.names[n]
		// A Merge may add and drop one instance (a put and its tombstone,
		// an entry and a later epoch in the same snapshot): a spurious
		// move there is allowed, a missed one never.
		merged := strings.Contains(what, "snapshot")
		if moved := i != w.names[n]; !first && (changed && !moved || moved && !changed && seen && !merged) {
			t.Fatalf("%s: %s: Instances(%q) changed %v but ServiceIndex moved %v:\n%+v\n%+v", c.LocalName(), what, n, changed, moved, w.views[n], view)
		}
		w.names[n], w.views[n] = i, view
	}
	if c.ServiceIndex("never-seen") != c.Index() {
		t.Fatalf("%s: %s: ServiceIndex of an unknown name is %d, Index %d", c.LocalName(), what, c.ServiceIndex("never-seen"), c.Index())
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

// Invariant 2: merge is a join. Every receiver gets every update, in its
// own random order, with duplicates, one by one or in partial snapshots,
// and interleaved with full snapshots of other receivers; all must end in
// the same merge state, the one the history implies.
func TestMergeIsJoin(t *testing.T) {
	seeds(t, 500, func(t testing.TB, rng *rand.Rand) {
		ups, want := history(rng)
		recv := make([]*Catalog, 2+rng.IntN(3))
		watch := make([]indexWatch, len(recv))
		for i := range recv {
			recv[i] = New(fmt.Sprintf("r%d", i), 1)
		}
		queues := make([][]update, len(recv))
		for i := range recv {
			queues[i] = deliveries(rng, ups)
		}
		now := t0
		for {
			busy := []int{}
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
			switch rng.IntN(8) {
			case 0, 1, 2: // one update
				u := queues[i][0]
				queues[i] = queues[i][1:]
				switch {
				case u.entry != nil:
					e := *u.entry
					ch := c.Apply(e, now)
					if !ch.Empty() && (len(ch.Accepted) != 1 || !reflect.DeepEqual(ch.Accepted[0], e) || len(ch.Local) != 0) {
						t.Fatalf("Apply(%+v) = %+v", e, ch)
					}
				case u.origin != nil:
					c.Merge(Snapshot{Origins: []OriginState{*u.origin}}, now)
				default:
					c.SetNode(*u.node, now)
				}
				watch[i].check(t, c, "one update")
			case 3, 4, 5, 6: // a partial snapshot from a relay
				n := 1 + rng.IntN(6)
				n = min(n, len(queues[i]))
				var s Snapshot
				s.From = []string{"", "relay", c.LocalName(), "r9"}[rng.IntN(4)]
				for _, u := range queues[i][:n] {
					switch {
					case u.entry != nil:
						s.Entries = append(s.Entries, *u.entry)
					case u.origin != nil:
						s.Origins = append(s.Origins, *u.origin)
					default:
						c.SetNode(*u.node, now)
						watch[i].check(t, c, "node in a snapshot")
					}
				}
				queues[i] = queues[i][n:]
				ch := c.Merge(s, now)
				if len(ch.Local) != 0 {
					t.Fatalf("Merge of others' entries took over: %+v", ch)
				}
				watch[i].check(t, c, "partial snapshot")
			case 7: // a full snapshot of another receiver, at any point
				j := rng.IntN(len(recv))
				if ch := c.Merge(recv[j].Snapshot(), now); len(ch.Local) != 0 {
					t.Fatalf("Merge of %s's snapshot took over: %+v", recv[j].LocalName(), ch)
				}
				watch[i].check(t, c, "snapshot of "+recv[j].LocalName())
			}
		}
		for _, c := range recv {
			if got := c.Entries(); !reflect.DeepEqual(got, want) {
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
		// Agreeing catalogs have equal digests (what the convergence view
		// compares); so does a catalog that differs in one write not.
		for _, c := range recv[1:] {
			if c.Digest() != recv[0].Digest() {
				t.Fatalf("digests differ:\n%+v\n%+v", recv[0].Digests(), c.Digests())
			}
		}
		// Associative and idempotent at the whole-state level too.
		fresh := New("fresh", 1)
		for _, c := range recv {
			fresh.Merge(c.Snapshot(), now)
			checkConsistency(t, fresh)
		}
		if got := fresh.Entries(); !reflect.DeepEqual(got, want) {
			t.Fatalf("merge of all snapshots: entries\n got %s\nwant %s", fmtEntries(got), fmtEntries(want))
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
// reorders, duplicates and drops messages, with push/pull of snapshots
// (delivered late as well), restarts with new epochs (clocks going back
// included) and tombstone reaping.
type cluster struct {
	t      testing.TB
	rng    *rand.Rand
	now    time.Time
	nodes  []*Catalog
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
	snap  *Snapshot
	node  *Node
}

func newCluster(t testing.TB, rng *rand.Rand, n int, reap, clockBack bool) *cluster {
	c := &cluster{t: t, rng: rng, now: t0, epochs: map[uint64]bool{}, watch: map[*Catalog]*indexWatch{},
		reap: reap, clockBack: clockBack}
	for i := range n {
		c.nodes = append(c.nodes, New(fmt.Sprintf("n%d", i), c.newEpoch(0)))
	}
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			a.SetNode(Node{Name: b.LocalName(), Status: StatusAlive, Epoch: b.LocalEpoch()}, c.now)
		}
	}
	return c
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

// send puts a message for every other node on the wire; lossy ones drop
// some, and some arrive twice.
func (c *cluster) send(from int, lossy bool, m message) {
	for to := range c.nodes {
		if to == from || lossy && c.rng.IntN(4) == 0 {
			continue
		}
		m.to = to
		c.wire = append(c.wire, m)
		if c.rng.IntN(5) == 0 {
			c.wire = append(c.wire, m)
		}
	}
}

// changed gossips what a catalog reported, and its new epoch if it moved.
func (c *cluster) changed(i int, ch Changes, epoch uint64) {
	for _, e := range append(ch.Accepted, ch.Local...) {
		c.send(i, true, message{entry: &e})
	}
	if n := c.nodes[i]; n.LocalEpoch() != epoch {
		c.send(i, false, message{node: &Node{Name: n.LocalName(), Status: StatusAlive, Epoch: n.LocalEpoch()}})
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
	n := c.nodes[m.to]
	epoch := n.LocalEpoch()
	var ch Changes
	switch {
	case m.entry != nil:
		ch = n.Apply(*m.entry, c.now)
		c.logf("%s: apply%s → %s%s", n.LocalName(), fmtEntries([]Entry{*m.entry}), fmtEntries(ch.Accepted), fmtEntries(ch.Local))
	case m.snap != nil:
		ch = n.Merge(*m.snap, c.now)
		c.logf("%s: merge snapshot of %s %v → %s%s", n.LocalName(), m.snap.From, m.snap.Origins, fmtEntries(ch.Accepted), fmtEntries(ch.Local))
	default:
		n.SetNode(*m.node, c.now)
		c.logf("%s: node %s epoch %d", n.LocalName(), m.node.Name, m.node.Epoch)
	}
	c.check(m.to, map[bool]string{true: "deliver snapshot", false: "deliver"}[m.snap != nil])
	c.changed(m.to, ch, epoch)
	return !ch.Empty()
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
			c.send(i, true, message{entry: &e})
			c.logf("%s: put%s", n.LocalName(), fmtEntries([]Entry{e}))
		}
		c.check(i, "put")
	case r < 30: // a check is removed
		if live := n.LocalChecks(); len(live) > 0 {
			e, ok := n.DeleteCheck(live[c.rng.IntN(len(live))].Check.ID, c.now)
			if !ok {
				c.t.Fatalf("DeleteCheck of a live check failed")
			}
			c.send(i, true, message{entry: &e})
			c.logf("%s: delete check%s", n.LocalName(), fmtEntries([]Entry{e}))
			c.check(i, "delete check")
		}
	case r < 35: // deregister
		if live := n.LocalServices(); len(live) > 0 {
			e, ok := n.Delete(live[c.rng.IntN(len(live))].ID, c.now)
			if !ok {
				c.t.Fatalf("Delete of a live service failed")
			}
			c.send(i, true, message{entry: &e})
			c.logf("%s: delete%s", n.LocalName(), fmtEntries([]Entry{e}))
			c.check(i, "delete")
		}
	case r < 75: // a message arrives, in any order
		if len(c.wire) > 0 {
			c.deliver(c.rng.IntN(len(c.wire)))
		}
	case r < 85: // push/pull with a random peer; the snapshot may arrive late
		j := c.rng.IntN(len(c.nodes))
		if j != i {
			s := n.Snapshot()
			c.wire = append(c.wire, message{to: j, snap: &s})
		}
	case r < 88: // restart: empty state, a new epoch in the node's metadata
		c.nodes[i] = New(n.LocalName(), c.newEpoch(n.LocalEpoch()))
		c.logf("%s: restart in epoch %d", n.LocalName(), c.nodes[i].LocalEpoch())
		for _, b := range c.nodes {
			c.nodes[i].SetNode(Node{Name: b.LocalName(), Status: StatusAlive, Epoch: b.LocalEpoch()}, c.now)
		}
		c.send(i, false, message{node: &Node{Name: n.LocalName(), Status: StatusAlive, Epoch: c.nodes[i].LocalEpoch()}})
	default:
		if c.reap {
			c.logf("%s: reaped %d", n.LocalName(), n.Reap(c.now, 20*time.Second, time.Hour))
			c.check(i, "reap")
		}
	}
}

// settle delivers everything on the wire, then runs full push/pull rounds
// between every pair until nothing changes.
func (c *cluster) settle() {
	for budget := 0; len(c.wire) > 0; budget++ {
		if budget > 100000 {
			c.t.Fatalf("gossip does not die down: %d messages on the wire", len(c.wire))
		}
		c.deliver(c.rng.IntN(len(c.wire)))
	}
	for round := 0; ; round++ {
		if round > 10 {
			c.t.Fatalf("push/pull does not converge after %d rounds", round)
		}
		moved := false
		for i := range c.nodes {
			for j := range c.nodes {
				if i == j {
					continue
				}
				s := c.nodes[i].Snapshot()
				c.wire = append(c.wire, message{to: j, snap: &s})
				if c.deliver(len(c.wire) - 1) {
					moved = true
				}
				for len(c.wire) > 0 {
					if c.deliver(c.rng.IntN(len(c.wire))) {
						moved = true
					}
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
// (invariants 2, 3 and 4 end to end: nothing resurrected, nothing of an
// earlier run left, no agent stuck behind its own old epoch).
func TestClusterConverges(t *testing.T) {
	for _, v := range []struct{ reap, clockBack bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		t.Run(fmt.Sprintf("reap=%v,clockBack=%v", v.reap, v.clockBack), func(t *testing.T) {
			seeds(t, 40, func(t testing.TB, rng *rand.Rand) {
				c := newCluster(t, rng, 2+rng.IntN(3), v.reap, v.clockBack)
				for range 50 + rng.IntN(150) {
					c.step()
				}
				c.settle()
				for _, o := range c.nodes {
					want := liveOf(o, o.LocalName())
					for _, n := range c.nodes {
						if got := liveOf(n, o.LocalName()); !reflect.DeepEqual(got, want) {
							t.Fatalf("%s holds of %s:%s\n%s holds:%s", n.LocalName(), o.LocalName(), fmtEntries(got), o.LocalName(), fmtEntries(want))
						}
						if v.reap {
							continue // tombstones are reaped at different times
						}
						// Everything the origin holds, tombstones included,
						// every agent holds.
						for _, e := range o.LocalEntries() {
							if !slices.ContainsFunc(n.Entries(), func(f Entry) bool { return reflect.DeepEqual(e, f) }) {
								t.Fatalf("%s lacks %s", n.LocalName(), fmtEntries([]Entry{e}))
							}
						}
					}
				}
				for _, n := range c.nodes[1:] {
					// Without reaping and without two runs in one epoch,
					// the whole merge state is the same everywhere.
					if !v.reap && !v.clockBack && !reflect.DeepEqual(n.Entries(), c.nodes[0].Entries()) {
						t.Fatalf("entries differ:\n%s:%s\n%s:%s", c.nodes[0].LocalName(), fmtEntries(c.nodes[0].Entries()), n.LocalName(), fmtEntries(n.Entries()))
					}
					if !reflect.DeepEqual(view(n), view(c.nodes[0])) {
						t.Fatalf("views differ: %v / %v", view(c.nodes[0]), view(n))
					}
				}
			})
		})
	}
}
