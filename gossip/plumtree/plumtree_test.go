package plumtree

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// sim drives n Trees over a simulated network in virtual time: every
// message takes a random latency and may be lost. Each node "holds" the
// writes it has seen, per origin, the way the catalog does.
type sim struct {
	t     testing.TB
	rng   *rand.Rand
	now   time.Time
	names []string
	nodes map[string]*simNode
	q     eventQueue
	loss  float64
	// payloadsSent counts the eager payloads sent, ihaves the announced IDs.
	payloadsSent, ihaves, grafts int
	delivered                    map[ID]map[string]time.Time
}

type simNode struct {
	name string
	tree *Tree
	seen map[string]map[uint64]bool // origin → counters
}

type event struct {
	at   time.Time
	seq  int
	from string
	out  Out
	tick string // a node whose tree is due
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func newSim(t testing.TB, n int, chords int, loss float64, seed uint64) *sim {
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, 1)), now: time.Unix(1000, 0), nodes: map[string]*simNode{},
		loss: loss, delivered: map[ID]map[string]time.Time{}}
	for i := range n {
		s.names = append(s.names, fmt.Sprintf("node-%d", i))
	}
	for _, name := range s.names {
		nd := &simNode{name: name, tree: New(DefaultConfig()), seen: map[string]map[uint64]bool{}}
		nd.tree.SetPeers(Neighbors(name, s.names, chords))
		s.nodes[name] = nd
	}
	return s
}

var seq int

func (s *sim) push(e *event) {
	seq++
	e.seq = seq
	heap.Push(&s.q, e)
}

// send puts outs of node from on the wire.
func (s *sim) send(from string, outs []Out) {
	for _, o := range outs {
		switch o.Kind {
		case Eager:
			s.payloadsSent += len(o.Payloads)
		case IHave:
			s.ihaves += len(o.IDs)
		case Graft:
			s.grafts++
		}
		if s.rng.Float64() < s.loss {
			continue
		}
		lat := time.Duration(200+s.rng.IntN(800)) * time.Microsecond
		s.push(&event{at: s.now.Add(lat), from: from, out: o})
	}
	s.schedule(from)
}

// schedule wakes a node's tree when it has timed work.
func (s *sim) schedule(name string) {
	if next := s.nodes[name].tree.Next(); !next.IsZero() {
		s.push(&event{at: next, tick: name})
	}
}

func idOf(p []byte) ID {
	var id ID
	fmt.Sscanf(string(p), "%s %d", &id.Origin, &id.Counter)
	id.Epoch = 1
	return id
}

func (n *simNode) has(id ID) bool { return n.seen[id.Origin][id.Counter] }

func (n *simNode) hold(id ID) bool {
	if n.has(id) {
		return false
	}
	if n.seen[id.Origin] == nil {
		n.seen[id.Origin] = map[uint64]bool{}
	}
	n.seen[id.Origin][id.Counter] = true
	return true
}

func (s *sim) arrived(id ID, node string) {
	m := s.delivered[id]
	if m == nil {
		m = map[string]time.Time{}
		s.delivered[id] = m
	}
	m[node] = s.now
}

func (s *sim) step() bool {
	if s.q.Len() == 0 {
		return false
	}
	e := heap.Pop(&s.q).(*event)
	s.now = e.at
	if e.tick != "" {
		nd := s.nodes[e.tick]
		if next := nd.tree.Next(); next.IsZero() || s.now.Before(next) {
			return true // an older wake-up
		}
		s.send(e.tick, nd.tree.Tick(s.now, nd.has))
		return true
	}
	to := s.nodes[e.out.To]
	switch e.out.Kind {
	case Eager:
		for _, p := range e.out.Payloads {
			id := idOf(p)
			fresh := to.hold(id)
			if fresh {
				s.arrived(id, to.name)
			}
			s.send(to.name, to.tree.Receive(e.from, id, p, fresh, !fresh, e.out.Relay, s.now))
		}
	case IHave:
		for _, id := range e.out.IDs {
			to.tree.IHave(e.from, id, to.has(id), s.now)
		}
		s.schedule(to.name)
	case Prune:
		to.tree.Prune(e.from, e.out.Origins)
	case Graft:
		// The answer is every write of the origin the asker lacks; the
		// asker passes on what is news, as the agent does after a delta.
		to.tree.Graft(e.from, e.out.Origins[0])
		asker := s.nodes[e.from]
		var ids []ID
		for c := range to.seen[e.out.Origins[0]] {
			id := ID{e.out.Origins[0], 1, c}
			if !asker.has(id) {
				ids = append(ids, id)
			}
		}
		slices.SortFunc(ids, func(a, b ID) int { return int(a.Counter) - int(b.Counter) })
		lat := time.Duration(500+s.rng.IntN(1000)) * time.Microsecond
		for _, id := range ids {
			s.push(&event{at: s.now.Add(lat), from: to.name, out: Out{To: asker.name, Kind: Eager, Payloads: [][]byte{payload(id)}}})
		}
	}
	return true
}

func payload(id ID) []byte { return []byte(fmt.Sprintf("%s %d", id.Origin, id.Counter)) }

// broadcast makes origin write its next message and runs the network
// until it is quiet.
func (s *sim) broadcast(origin string, counter uint64) ID {
	id := ID{origin, 1, counter}
	nd := s.nodes[origin]
	nd.hold(id)
	s.arrived(id, origin)
	s.send(origin, nd.tree.Broadcast(id, payload(id), "", s.now))
	for s.step() {
	}
	return id
}

// Every write reaches every node; once each origin's tree has formed,
// each node receives each write once (N-1 pushes in all), and the writes
// of different origins do not break each other's trees.
func TestTreeDeliversOnceAcrossOrigins(t *testing.T) {
	for _, n := range []int{2, 3, 16, 200} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := newSim(t, n, 2, 0, uint64(n))
			origins := s.names[:min(n, 5)]
			for round := range 6 {
				for _, o := range origins {
					before := s.payloadsSent
					id := s.broadcast(o, uint64(round+1))
					if got := len(s.delivered[id]); got != n {
						t.Fatalf("round %d: %v reached %d of %d nodes", round, id, got, n)
					}
					if round >= 2 && s.payloadsSent-before != n-1 {
						t.Errorf("round %d: %v took %d pushes, want %d (one per node)", round, id, s.payloadsSent-before, n-1)
					}
				}
			}
		})
	}
}

// With a tenth of all messages lost, announcements and grafts repair
// nearly all that the eager tree drops: a node misses a write only when
// its push and every announcement to it were lost, which anti-entropy
// (the catalog's digests) then repairs.
func TestTreeRepairsLoss(t *testing.T) {
	s := newSim(t, 300, 2, 0.10, 7)
	var ids []ID
	for c := range 30 {
		ids = append(ids, s.broadcast(s.names[c%7], uint64(c/7+1)))
	}
	missed := 0
	for _, id := range ids {
		missed += 300 - len(s.delivered[id])
	}
	if missed > 300*30/200 {
		t.Errorf("%d of %d deliveries missed with 10%% loss", missed, 300*30)
	}
	if s.grafts == 0 {
		t.Error("no graft with 10% loss: the repair path was not exercised")
	}
}

// At N = 1,000 a write reaches every node within a few milliseconds of
// simulated latency (about the overlay's diameter in hops).
func TestTreeAtAThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("a thousand nodes")
	}
	s := newSim(t, 1000, 2, 0, 11)
	var worst time.Duration
	for c := range 8 {
		start := s.now
		id := s.broadcast(s.names[c*97], 1)
		if got := len(s.delivered[id]); got != 1000 {
			t.Fatalf("%v reached %d of 1000", id, got)
		}
		for _, at := range s.delivered[id] {
			worst = max(worst, at.Sub(start))
		}
	}
	// Up to 1 ms a hop: the overlay's diameter at N = 1,000 is about 10.
	if worst > 25*time.Millisecond {
		t.Errorf("slowest delivery %v: the tree is too deep", worst)
	}
}

func TestNeighborsSymmetricConnectedSmall(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 5, 10, 64, 500} {
		var names []string
		for i := range n {
			names = append(names, fmt.Sprintf("host-%d.example", i))
		}
		adj := map[string][]string{}
		for _, m := range names {
			adj[m] = Neighbors(m, names, 2)
			if slices.Contains(adj[m], m) {
				t.Fatalf("n=%d: %s is its own neighbour", n, m)
			}
			if n > 3 && (len(adj[m]) < 2 || len(adj[m]) > 16) {
				t.Errorf("n=%d: %s has %d neighbours", n, m, len(adj[m]))
			}
			if again := Neighbors(m, reversed(names), 2); !slices.Equal(again, adj[m]) {
				t.Fatalf("n=%d: neighbours depend on the order of the member list", n)
			}
		}
		for m, ns := range adj {
			for _, x := range ns {
				if !slices.Contains(adj[x], m) {
					t.Fatalf("n=%d: %s links to %s but not back", n, m, x)
				}
			}
		}
		// Connected: a walk from the first reaches everyone.
		seen := map[string]bool{names[0]: true}
		todo := []string{names[0]}
		for len(todo) > 0 {
			m := todo[0]
			todo = todo[1:]
			for _, x := range adj[m] {
				if !seen[x] {
					seen[x] = true
					todo = append(todo, x)
				}
			}
		}
		if len(seen) != n {
			t.Errorf("n=%d: overlay reaches %d nodes", n, len(seen))
		}
	}
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// A node leaving changes only the links that touched it and its ring
// neighbours.
func TestNeighborsStableUnderChurn(t *testing.T) {
	var names []string
	for i := range 200 {
		names = append(names, fmt.Sprintf("n%d", i))
	}
	gone := names[17]
	rest := slices.Delete(slices.Clone(names), 17, 18)
	changed := 0
	for _, m := range rest {
		if !slices.Equal(slices.DeleteFunc(Neighbors(m, names, 2), func(s string) bool { return s == gone }), Neighbors(m, rest, 2)) {
			changed++
		}
	}
	if changed > 6 {
		t.Errorf("%d nodes changed neighbours when one of 200 left", changed)
	}
}

// A write a node had out of band (an exchange brought it, or a neighbour
// relayed one) is no evidence of a second path of the tree: neither the
// relayed copy nor a tree copy arriving after it prunes the link it came
// by, so the node keeps its parent.
func TestOutOfBandCopiesDoNotPrune(t *testing.T) {
	now := time.Unix(1, 0)
	tr := New(DefaultConfig())
	tr.SetPeers([]string{"parent", "other"})
	w := func(c uint64) ID { return ID{Origin: "o", Epoch: 1, Counter: c} }
	tr.Receive("parent", w(1), []byte("1"), true, false, false, now)
	// Write 2 comes first relayed by other, then along the tree from the
	// parent: no prune.
	outs := tr.Receive("other", w(2), []byte("2"), true, false, true, now)
	for _, o := range outs {
		if o.Kind != Eager || !o.Relay {
			t.Errorf("a relayed write went on as %+v", o)
		}
	}
	if outs := tr.Receive("parent", w(2), []byte("2"), false, true, false, now); len(outs) != 0 {
		t.Errorf("the tree's copy of a write had out of band pruned: %+v", outs)
	}
	// Write 3 has been brought by an exchange (up to 3), then comes along
	// the tree: no prune either.
	tr.Learned(w(3))
	if outs := tr.Receive("parent", w(3), []byte("3"), false, true, false, now); len(outs) != 0 {
		t.Errorf("the tree's copy of a write an exchange brought pruned: %+v", outs)
	}
	if got := tr.EagerPeers("o"); len(got) != 2 {
		t.Errorf("eager peers of o: %v, want both", got)
	}
	// A true second path still prunes.
	tr.Receive("parent", w(4), []byte("4"), true, false, false, now)
	if outs := tr.Receive("other", w(4), []byte("4"), false, true, false, now); len(outs) != 1 || outs[0].Kind != Prune {
		t.Errorf("a duplicate along the tree: %+v, want a prune", outs)
	}
}

// A node whose neighbours change resets its links; after the reset the
// next write floods its links once, and every node has it without a
// graft.
func TestResetAfterNeighboursChange(t *testing.T) {
	s := newSim(t, 40, 2, 0, 3)
	for c := range 3 {
		for _, o := range s.names[:5] {
			s.broadcast(o, uint64(c+1))
		}
	}
	// node-7 leaves: everyone recomputes its neighbours; those whose set
	// changed reset and tell their neighbours.
	gone := "node-7"
	rest := slices.DeleteFunc(slices.Clone(s.names), func(n string) bool { return n == gone })
	delete(s.nodes, gone)
	for _, n := range rest {
		nd := s.nodes[n]
		if nd.tree.SetPeers(Neighbors(n, rest, 2)) {
			nd.tree.Reset()
			for _, p := range nd.tree.Peers() {
				s.nodes[p].tree.ResetPeer(n)
			}
		}
	}
	s.names = rest
	grafts := s.grafts
	for _, o := range s.names[:5] {
		id := s.broadcast(o, 10)
		if got := len(s.delivered[id]); got != len(rest) {
			t.Fatalf("%v reached %d of %d", id, got, len(rest))
		}
	}
	if s.grafts != grafts {
		t.Errorf("%d grafts after a departure: the trees did not re-form by themselves", s.grafts-grafts)
	}
}

// bruteNeighbors is the definition of Neighbors, computed the slow way:
// every member's links, then who links to self.
func bruteNeighbors(self string, members []string, chords int) []string {
	o := &Overlay{Chords: chords}
	type pt struct {
		h    uint64
		name string
	}
	var ring []pt
	seen := map[string]bool{}
	for _, m := range append([]string{self}, members...) {
		if !seen[m] {
			seen[m] = true
			ring = append(ring, pt{o.points(m)[0], m})
		}
	}
	if len(ring) <= chords+1 {
		var out []string
		for _, p := range ring {
			if p.name != self {
				out = append(out, p.name)
			}
		}
		slices.Sort(out)
		return out
	}
	slices.SortFunc(ring, func(a, b pt) int {
		if a.h != b.h {
			if a.h < b.h {
				return -1
			}
			return 1
		}
		return compareStrings(a.name, b.name)
	})
	succ := func(h uint64, skip string) string {
		i := 0
		for i < len(ring) && ring[i].h < h {
			i++
		}
		for k := 0; k < len(ring); k++ {
			if p := ring[(i+k)%len(ring)]; p.name != skip {
				return p.name
			}
		}
		return ""
	}
	links := func(m string) []string {
		ps := o.points(m)
		out := []string{succ(ps[0]+1, m)}
		for _, h := range ps[1:] {
			out = append(out, succ(h, m))
		}
		return out
	}
	set := map[string]bool{}
	for _, n := range links(self) {
		set[n] = true
	}
	for _, p := range ring {
		if slices.Contains(links(p.name), self) {
			set[p.name] = true
		}
	}
	delete(set, self)
	var out []string
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// The fast Neighbors agrees with its definition, for any membership and
// number of chords, and with hashes cached across changing memberships.
func TestNeighborsMatchTheDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for round := range 300 {
		n := 1 + rng.IntN(60)
		var names []string
		for i := range n {
			names = append(names, fmt.Sprintf("h%d-%d", round%7, i*7+rng.IntN(5)))
		}
		chords := 1 + rng.IntN(3)
		o := &Overlay{Chords: chords}
		for _, self := range names {
			want := bruteNeighbors(self, names, chords)
			if got := o.Neighbors(self, names); !slices.Equal(got, want) {
				t.Fatalf("round %d, %s among %d with %d chords: got %v, want %v", round, self, n, chords, got, want)
			}
		}
	}
}

// A large catch-up is announced to every neighbour, eager or lazy, but
// not to one that has shown it has it.
func TestAnnounceReachesEveryNeighbourOnce(t *testing.T) {
	now := time.Unix(1, 0)
	tr := New(DefaultConfig())
	tr.SetPeers([]string{"a", "b", "c"})
	tr.Prune("b", []string{"o"})
	tr.IHave("c", ID{"o", 1, 9}, true, now)
	tr.Announce(ID{"o", 1, 9}, "a", now)
	outs := tr.Tick(now.Add(time.Second), func(ID) bool { return true })
	if len(outs) != 1 || outs[0].To != "b" || outs[0].Kind != IHave || outs[0].IDs[0].Counter != 9 {
		t.Fatalf("announcements %+v, want one to b only (a sent it, c has it)", outs)
	}
}
