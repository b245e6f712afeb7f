package catalog

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	tombTTL = 10 * time.Minute
	nodeTTL = time.Hour
)

func svc(id, name string, tags ...string) Service {
	return Service{ID: id, Name: name, Port: 8080, Tags: tags, Weights: Weights{1, 1}}
}

func mustPut(t testing.TB, c *Catalog, s Service, now time.Time) Entry {
	t.Helper()
	e, changed, err := c.Put(s, now)
	if err != nil {
		t.Fatalf("Put(%+v): %v", s, err)
	}
	if !changed {
		t.Fatalf("Put(%+v) changed nothing", s)
	}
	checkConsistency(t, c)
	return e
}

func mustDelete(t testing.TB, c *Catalog, id string, now time.Time) Entry {
	t.Helper()
	e, ok := c.Delete(id, now)
	if !ok {
		t.Fatalf("Delete(%q) found nothing", id)
	}
	checkConsistency(t, c)
	return e
}

func setNode(c *Catalog, name string, st NodeStatus, epoch uint64, now time.Time) {
	c.SetNode(Node{Name: name, Address: "10.0.0.1", Port: 7946, Status: st, Epoch: epoch}, now)
}

func applyAll(t testing.TB, c *Catalog, now time.Time, es ...Entry) Changes {
	t.Helper()
	var all Changes
	for _, e := range es {
		ch := c.Apply(e, now)
		checkConsistency(t, c)
		all.Accepted = append(all.Accepted, ch.Accepted...)
		all.Local = append(all.Local, ch.Local...)
	}
	return all
}

// syncFrom runs one anti-entropy exchange in one direction: dst's digest
// goes to src, which answers with the deltas dst lacks (in chunks of at
// most budget bytes, delivered in order).
func syncFrom(t testing.TB, dst, src *Catalog, now time.Time) Changes {
	t.Helper()
	return syncChunks(t, dst, src, now, 64<<10)
}

func syncChunks(t testing.TB, dst, src *Catalog, now time.Time, budget int) Changes {
	t.Helper()
	send, _, _ := src.Plan(dst.Digest(), nil, now)
	var all Changes
	for _, w := range send {
		for _, d := range src.Deltas(w, budget) {
			ch := dst.ApplyDelta(d, now)
			checkConsistency(t, dst)
			all.Accepted = append(all.Accepted, ch.Accepted...)
			all.Local = append(all.Local, ch.Local...)
		}
	}
	return all
}

// ids lists "node/id" of the instances of a service.
func ids(c *Catalog, name string) []string {
	var out []string
	for _, in := range c.Instances(name) {
		out = append(out, in.Node.Name+"/"+in.Service.ID)
	}
	return out
}

func wantIDs(t testing.TB, c *Catalog, name string, want ...string) {
	t.Helper()
	if got := ids(c, name); !slices.Equal(got, want) {
		t.Errorf("%s: Instances(%q) = %v, want %v", c.LocalName(), name, got, want)
	}
}

// checkConsistency checks the catalog's internal indexes against its
// entries: byName holds exactly the live entries of all origins, every
// remote entry is of its origin's current epoch, counters, spans, hashes,
// the summary and indexes are within bounds and agree with the entries.
func checkConsistency(t testing.TB, c *Catalog) {
	t.Helper()
	if c.origins[c.local] == nil {
		t.Fatalf("%s: no local origin", c.local)
	}
	live := 0
	var summary uint64
	for name, o := range c.origins {
		inChecks := 0
		for sid, m := range o.checks {
			if len(m) == 0 {
				t.Fatalf("%s: origin %q checks[%q] is empty but present", c.local, name, sid)
			}
			for cid, r := range m {
				inChecks++
				if o.entries[entryKey{KindCheck, cid}] != r || r.Deleted || r.Check.ServiceID != sid {
					t.Fatalf("%s: origin %q checks[%q][%q] is not a live check entry", c.local, name, sid, cid)
				}
			}
		}
		var hash uint64
		for k, r := range o.entries {
			if k.kind == KindCheck && !r.Deleted {
				inChecks--
			}
			if r.hash != entryHash(r.Entry) {
				t.Fatalf("%s: entry %s/%s has a stale hash", c.local, name, k.id)
			}
			if !r.Deleted {
				hash ^= r.hash
			}
		}
		if hash != o.hash {
			t.Fatalf("%s: origin %q content hash %x, entries hash to %x", c.local, name, o.hash, hash)
		}
		if inChecks != 0 {
			t.Fatalf("%s: origin %q check index off by %d", c.local, name, inChecks)
		}
		if o.known > o.counter || o.watermark > o.known {
			t.Fatalf("%s: origin %q known %d, counter %d, watermark %d", c.local, name, o.known, o.counter, o.watermark)
		}
		if name == c.local && o.known != o.counter {
			t.Fatalf("%s: local known %d behind counter %d", c.local, o.known, o.counter)
		}
		prev := o.known + 1
		for _, sp := range o.seen {
			if sp.lo <= prev || sp.hi < sp.lo || sp.hi > o.counter {
				t.Fatalf("%s: origin %q spans %v above known %d (counter %d)", c.local, name, o.seen, o.known, o.counter)
			}
			prev = sp.hi + 1
		}
		if c.visible(name) && (o.known > 0 || len(o.entries) > 0) {
			summary ^= SummaryOf(OriginDigest{Origin: name, Epoch: o.epoch, Known: o.known, Hash: o.hash})
		}
		for k, r := range o.entries {
			id := k.id
			if r.Origin != name || r.ID() != id || r.Kind != k.kind {
				t.Fatalf("%s: origin %q holds %q under %q", c.local, name, r.Origin+"/"+r.ID(), id)
			}
			if r.Version.Epoch != o.epoch {
				t.Fatalf("%s: entry %s/%s of epoch %d under origin epoch %d", c.local, name, id, r.Version.Epoch, o.epoch)
			}
			if r.Version.Counter > o.counter {
				t.Fatalf("%s: entry %s/%s counter %d above origin counter %d", c.local, name, id, r.Version.Counter, o.counter)
			}
			if r.createIndex > r.modifyIndex || r.modifyIndex > c.index {
				t.Fatalf("%s: entry %s/%s indexes create %d modify %d catalog %d", c.local, name, id, r.createIndex, r.modifyIndex, c.index)
			}
			if r.Deleted || r.Kind == KindCheck {
				continue
			}
			live++
			if got := c.byName[r.Service.Name][key{name, id}]; got != r {
				t.Fatalf("%s: live entry %s/%s (%s) missing from byName", c.local, name, id, r.Service.Name)
			}
		}
	}
	if summary != c.summary {
		t.Fatalf("%s: summary %x, origins sum to %x", c.local, c.summary, summary)
	}
	var buckets [SummaryBuckets]uint64
	var all uint64
	for name, o := range c.origins {
		buckets[BucketOf(name)] ^= o.sum
	}
	for _, b := range buckets {
		all ^= b
	}
	if buckets != c.buckets || all != c.summary {
		t.Fatalf("%s: summary buckets do not add up", c.local)
	}
	inIndex := 0
	for sname, m := range c.byName {
		if len(m) == 0 {
			t.Fatalf("%s: byName[%q] is empty but present", c.local, sname)
		}
		for k, r := range m {
			inIndex++
			o := c.origins[k.origin]
			if o == nil || o.entries[entryKey{KindService, k.id}] != r || r.Deleted || r.Service.Name != sname {
				t.Fatalf("%s: byName[%q] holds %v that is not a live entry of that name", c.local, sname, k)
			}
		}
	}
	if live != inIndex {
		t.Fatalf("%s: %d live entries, %d in byName", c.local, live, inIndex)
	}
	for sname, i := range c.names {
		if i > c.index {
			t.Fatalf("%s: ServiceIndex(%q) = %d above Index %d", c.local, sname, i, c.index)
		}
	}
	if c.namesFloor > c.index {
		t.Fatalf("%s: names floor %d above Index %d", c.local, c.namesFloor, c.index)
	}
	for name, n := range c.nodes {
		if n.Name != name || n.CreateIndex > n.ModifyIndex || n.ModifyIndex > c.index || n.CreateIndex == 0 {
			t.Fatalf("%s: node %q: %+v (index %d)", c.local, name, *n, c.index)
		}
		if name != c.local && c.origins[name] == nil {
			t.Fatalf("%s: node %q has no origin", c.local, name)
		}
	}
}

func TestPutAndLocalServices(t *testing.T) {
	c := New("a", 7)
	if got := c.LocalServices(); len(got) != 0 {
		t.Fatalf("LocalServices of a new catalog = %v", got)
	}
	e1 := mustPut(t, c, Service{Name: "web", Port: 80}, t0)
	want1 := Entry{Origin: "a", Version: Version{7, 1},
		Service: Service{ID: "web", Name: "web", Port: 80, Weights: Weights{1, 1}}}
	if !reflect.DeepEqual(e1, want1) {
		t.Errorf("Put = %+v, want %+v", e1, want1)
	}
	e2 := mustPut(t, c, svc("db-2", "db"), t0)
	e3 := mustPut(t, c, svc("db-1", "db"), t0)
	if e2.Version != (Version{7, 2}) || e3.Version != (Version{7, 3}) {
		t.Errorf("versions %v %v, want counters 2 and 3 of epoch 7", e2.Version, e3.Version)
	}
	var got []string
	for _, s := range c.LocalServices() {
		got = append(got, s.ID)
	}
	if want := []string{"db-1", "db-2", "web"}; !slices.Equal(got, want) {
		t.Errorf("LocalServices IDs = %v, want %v", got, want)
	}
	if s, ok := c.LocalService("db-2"); !ok || !reflect.DeepEqual(s, svc("db-2", "db")) {
		t.Errorf("LocalService(db-2) = %+v, %v", s, ok)
	}
	if _, ok := c.LocalService("nope"); ok {
		t.Error("LocalService(nope) found something")
	}
	wantIDs(t, c, "db", "a/db-1", "a/db-2") // the local node is served without SetNode
	if got := c.LocalEntries(); len(got) != 3 || got[0].Service.ID != "db-1" {
		t.Errorf("LocalEntries = %+v", got)
	}

	// A change is a new version; the instance keeps its create index.
	before := c.Instances("web")[0]
	e4 := mustPut(t, c, Service{Name: "web", Port: 81}, t0)
	if e4.Version != (Version{7, 4}) {
		t.Errorf("changed Put version = %v, want {7 4}", e4.Version)
	}
	after := c.Instances("web")[0]
	if after.Service.Port != 81 || after.CreateIndex != before.CreateIndex || after.ModifyIndex <= before.ModifyIndex {
		t.Errorf("after update: %+v (before %+v)", after, before)
	}
}

func TestPutIdenticalChangesNothing(t *testing.T) {
	c := New("a", 1)
	s := Service{Name: "web", Port: 80, Tags: []string{"x", "y"}, Meta: map[string]string{"k": "v"}}
	e := mustPut(t, c, s, t0)
	mustPut(t, c, svc("db", "db"), t0)
	idx, sidx, entries := c.Index(), c.ServiceIndex("web"), c.Entries()

	// Same service, spelled with and without the defaults Normalize fills.
	for _, again := range []Service{s, {ID: "web", Name: "web", Port: 80, Tags: []string{"x", "y"},
		Meta: map[string]string{"k": "v"}, Weights: Weights{1, 1}}} {
		got, changed, err := c.Put(again, t0.Add(time.Minute))
		if err != nil || changed {
			t.Fatalf("identical Put = %v, changed %v", err, changed)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("identical Put returned %+v, want the stored %+v", got, e)
		}
	}
	if c.Index() != idx || c.ServiceIndex("web") != sidx || !reflect.DeepEqual(c.Entries(), entries) {
		t.Errorf("identical Put moved the catalog: index %d→%d, service index %d→%d", idx, c.Index(), sidx, c.ServiceIndex("web"))
	}
	// Tag order matters: it is kept.
	if _, changed, _ := c.Put(Service{Name: "web", Port: 80, Tags: []string{"y", "x"}, Meta: map[string]string{"k": "v"}}, t0); !changed {
		t.Error("reordered tags were taken as identical")
	}
}

func TestPutInvalidChangesNothing(t *testing.T) {
	c := New("a", 1)
	mustPut(t, c, svc("web", "web"), t0)
	idx, entries := c.Index(), c.Entries()
	bad := svc("web", "web")
	bad.Port = 0
	_, changed, err := c.Put(bad, t0)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "Port" || changed {
		t.Fatalf("Put(port 0) = %v, %v; want a Port FieldError", err, changed)
	}
	if c.Index() != idx || !reflect.DeepEqual(c.Entries(), entries) {
		t.Error("a rejected Put changed the catalog")
	}
}

func TestPutDoesNotShareCallerValues(t *testing.T) {
	c := New("a", 1)
	s := svc("web", "web", "a")
	s.Meta = map[string]string{"k": "v"}
	mustPut(t, c, s, t0)
	s.Tags[0] = "changed"
	s.Meta["k"] = "changed"
	got, _ := c.LocalService("web")
	if got.Tags[0] != "a" || got.Meta["k"] != "v" {
		t.Errorf("the catalog shares the caller's tags or meta: %+v", got)
	}
}

func TestDelete(t *testing.T) {
	c := New("a", 3)
	mustPut(t, c, svc("web-1", "web"), t0)
	mustPut(t, c, svc("web-2", "web"), t0)
	createIdx := c.Instances("web")[1].CreateIndex
	sidx := c.ServiceIndex("web")

	tomb := mustDelete(t, c, "web-2", t0)
	want := Entry{Origin: "a", Version: Version{3, 3}, Deleted: true, Service: Service{ID: "web-2", Name: "web"}}
	if !reflect.DeepEqual(tomb, want) {
		t.Errorf("Delete = %+v, want %+v", tomb, want)
	}
	if _, ok := c.LocalService("web-2"); ok {
		t.Error("LocalService finds a deleted service")
	}
	if got := c.LocalServices(); len(got) != 1 || got[0].ID != "web-1" {
		t.Errorf("LocalServices = %+v", got)
	}
	wantIDs(t, c, "web", "a/web-1")
	if c.ServiceIndex("web") <= sidx {
		t.Error("Delete did not move ServiceIndex")
	}
	if es := c.Entries(); len(es) != 2 || !es[1].Deleted {
		t.Errorf("Entries = %+v, want the tombstone kept", es)
	}
	if _, ok := c.Delete("web-2", t0); ok {
		t.Error("second Delete of the same ID reported ok")
	}
	if _, ok := c.Delete("nope", t0); ok {
		t.Error("Delete of an unknown ID reported ok")
	}

	mustDelete(t, c, "web-1", t0)
	if _, ok := c.Services()["web"]; ok {
		t.Error("Services lists a service with no instance left")
	}
	if got := c.Instances("web"); len(got) != 0 {
		t.Errorf("Instances = %+v", got)
	}

	// Registering again after a delete is a new instance.
	e := mustPut(t, c, svc("web-2", "web"), t0)
	if e.Version != (Version{3, 5}) {
		t.Errorf("re-registration version = %v", e.Version)
	}
	if in := c.Instances("web"); len(in) != 1 || in[0].CreateIndex <= createIdx {
		t.Errorf("re-registered instance %+v keeps the old create index %d", in, createIdx)
	}
}

func TestApply(t *testing.T) {
	a, r := New("a", 5), New("r", 1)
	setNode(r, "a", StatusAlive, 5, t0)
	e1 := mustPut(t, a, svc("web", "web"), t0)
	ch := r.Apply(e1, t0)
	checkConsistency(t, r)
	if len(ch.Accepted) != 1 || !reflect.DeepEqual(ch.Accepted[0], e1) || len(ch.Local) != 0 || !ch.Fresh {
		t.Errorf("Apply = %+v", ch)
	}
	wantIDs(t, r, "web", "a/web")
	if ch := r.Apply(e1, t0); !ch.Empty() || ch.Fresh {
		t.Errorf("duplicate Apply = %+v, want nothing and not fresh", ch)
	}
	e2 := mustPut(t, a, Service{ID: "web", Name: "web", Port: 9}, t0)
	applyAll(t, r, t0, e2)
	if ch := applyAll(t, r, t0, e1); !ch.Empty() {
		t.Errorf("Apply of an older version = %+v, want nothing", ch)
	}
	if in := r.Instances("web"); len(in) != 1 || in[0].Service.Port != 9 || in[0].Version != e2.Version {
		t.Errorf("Instances = %+v", in)
	}
	// The catalog keeps its own copy of what it is given.
	e3 := mustPut(t, a, svc("db", "db", "x"), t0)
	given := e3
	given.Service = e3.Service.Clone()
	applyAll(t, r, t0, given)
	given.Service.Tags[0] = "changed"
	if in := r.Instances("db"); in[0].Service.Tags[0] != "x" {
		t.Errorf("Apply shares the entry's tags: %+v", in[0].Service)
	}
	// A write made obsolete before it arrived is not stored, but it is
	// still news to pass on: relays downstream count on every counter.
	e4 := mustPut(t, a, svc("api", "api"), t0)
	e5 := mustPut(t, a, Service{ID: "api", Name: "api", Port: 1}, t0)
	applyAll(t, r, t0, e5)
	if ch := r.Apply(e4, t0); !ch.Fresh || !ch.Empty() {
		t.Errorf("Apply of an obsolete unseen write = %+v, want fresh and nothing stored", ch)
	}
	if _, known, _ := r.Known("a"); known != 5 {
		t.Errorf("known = %d after counters 1-5, want 5", known)
	}
}

// Entries are taken only of members, and only of the run a member
// announces: an imposter or a forger cannot move a node to a new epoch by
// gossip alone.
func TestApplyRefusesNonMembersAndUnannouncedEpochs(t *testing.T) {
	r := New("r", 1)
	a := New("a", 5)
	web := mustPut(t, a, svc("web", "web"), t0)
	if ch := r.Apply(web, t0); !ch.Empty() || ch.Fresh || r.Stats().UnknownOrigin != 1 {
		t.Errorf("entry of a non-member: %+v, stats %+v", ch, r.Stats())
	}
	setNode(r, "a", StatusAlive, 4, t0)
	if ch := r.Apply(web, t0); !ch.Empty() || r.Stats().AheadOfMember != 1 {
		t.Errorf("entry of an epoch the member does not announce: %+v, stats %+v", ch, r.Stats())
	}
	setNode(r, "a", StatusAlive, 5, t0)
	applyAll(t, r, t0, web)
	wantIDs(t, r, "web", "a/web")
	// An imposter's run (epoch 9) cannot drop the real node's services.
	imp := New("a", 9)
	applyAll(t, r, t0, mustPut(t, imp, svc("evil", "web"), t0))
	if ch := syncFrom(t, r, imp, t0); !ch.Empty() {
		t.Errorf("imposter's delta accepted: %+v", ch)
	}
	wantIDs(t, r, "web", "a/web")
}

// Invariant 8: epochs never wrap. An epoch far in the future (a forged
// one) is refused in node metadata and never taken over from.
func TestEpochsAreBounded(t *testing.T) {
	r := New("r", 1)
	setNode(r, "a", StatusAlive, 5, t0)
	setNode(r, "a", StatusAlive, math.MaxUint64, t0)
	if n, _ := r.Node("a"); n.Epoch != 5 || r.Stats().FutureEpoch != 1 {
		t.Errorf("a far-future epoch in membership: node %+v, stats %+v", n, r.Stats())
	}
	checkConsistency(t, r)
	// Within the skew it is taken (a clock years ahead still works).
	ahead := uint64(t0.Add(5 * 365 * 24 * time.Hour).UnixNano())
	setNode(r, "a", StatusAlive, ahead, t0)
	if n, _ := r.Node("a"); n.Epoch != ahead {
		t.Errorf("an epoch 5 years ahead refused: %+v", n)
	}

	// The victim of a forged entry of its own name at MaxUint64 keeps its
	// epoch and its services.
	v := New("v", uint64(t0.UnixNano()))
	mustPut(t, v, svc("web", "web"), t0)
	forged := Entry{Origin: "v", Version: Version{math.MaxUint64, 1}, Service: svc("x", "x")}
	if ch := v.Apply(forged, t0); !ch.Empty() || v.LocalEpoch() != uint64(t0.UnixNano()) || v.Stats().FutureEpoch != 1 {
		t.Errorf("forged own entry: %+v, epoch %d, stats %+v", ch, v.LocalEpoch(), v.Stats())
	}
	if _, _, ch := v.Plan([]OriginDigest{{Origin: "v", Epoch: math.MaxUint64 - 1, Known: 3}}, nil, t0); !ch.Empty() || v.LocalEpoch() != uint64(t0.UnixNano()) {
		t.Errorf("forged own digest: %+v, epoch %d", ch, v.LocalEpoch())
	}
	wantIDs(t, v, "web", "v/web")
	// A later epoch within the skew is taken over from, and counting
	// goes on from there.
	later := uint64(t0.Add(time.Hour).UnixNano())
	if ch := v.Apply(Entry{Origin: "v", Version: Version{later, 1}, Service: svc("x", "x")}, t0); len(ch.Local) != 1 || v.LocalEpoch() != later+1 {
		t.Errorf("take-over from a later run: %+v, epoch %d", ch, v.LocalEpoch())
	}
	checkConsistency(t, v)
}

// Invariants 3 and 8: a deregistered service stays gone, however late an
// old copy arrives: while its tombstone lives, by version; once the
// tombstone is reaped, by the origin's watermark.
func TestNoResurrection(t *testing.T) {
	a := New("a", 10)
	b, frozen := New("b", 20), New("frozen", 30)
	for _, c := range []*Catalog{a, b, frozen} {
		for _, n := range []*Catalog{a, b, frozen} {
			setNode(c, n.LocalName(), StatusAlive, n.LocalEpoch(), t0)
		}
	}
	web := mustPut(t, a, svc("web", "web"), t0)
	db := mustPut(t, a, svc("db", "db"), t0)
	applyAll(t, b, t0, web, db)
	applyAll(t, frozen, t0, web, db) // then its VM is suspended

	now := t0.Add(time.Minute)
	tomb := mustDelete(t, a, "web", now)
	applyAll(t, b, now, tomb)
	wantIDs(t, b, "web")

	// Old copies arriving later change nothing while the tombstone lives.
	if ch := syncFrom(t, b, frozen, now); !ch.Empty() {
		t.Errorf("the frozen node's delta = %+v", ch)
	}
	if ch := applyAll(t, b, now, web); !ch.Empty() {
		t.Errorf("Apply of the old entry = %+v", ch)
	}
	wantIDs(t, b, "web")

	// The tombstone outlives its TTL, no longer; reaping it raises the
	// watermark and moves no index.
	if n := b.Reap(now.Add(tombTTL), tombTTL, nodeTTL); n != 0 {
		t.Errorf("Reap at the TTL dropped %d", n)
	}
	later := now.Add(tombTTL + time.Second)
	idx := b.Index()
	for _, c := range []*Catalog{a, b} {
		if n := c.Reap(later, tombTTL, nodeTTL); n != 1 {
			t.Errorf("%s: Reap after the TTL dropped %d, want 1", c.LocalName(), n)
		}
		checkConsistency(t, c)
		if d, _ := c.OriginDigest("a"); d.Watermark != tomb.Version.Counter {
			t.Errorf("%s: watermark %d, want %d", c.LocalName(), d.Watermark, tomb.Version.Counter)
		}
	}
	if b.Index() != idx {
		t.Error("reaping a tombstone moved the index")
	}

	// The frozen node wakes long after the TTL and pushes its old copy:
	// refused by gossip and by anti-entropy, at the origin and elsewhere.
	for _, c := range []*Catalog{a, b} {
		if ch := applyAll(t, c, later, web); !ch.Empty() {
			t.Errorf("%s took back a reaped service by gossip: %+v", c.LocalName(), ch)
		}
		if ch := syncFrom(t, c, frozen, later); !ch.Empty() {
			t.Errorf("%s took back a reaped service by anti-entropy: %+v", c.LocalName(), ch)
		}
		wantIDs(t, c, "web")
		wantIDs(t, c, "db", "a/db")
	}
	if b.Stats().BelowWatermark == 0 {
		t.Error("the refused old copies were not counted")
	}
	// The frozen node itself is behind the watermark: it gets the
	// origin's whole section and drops what that does not confirm.
	syncFrom(t, frozen, b, later)
	wantIDs(t, frozen, "web")
	wantIDs(t, frozen, "db", "a/db")
	if d, _ := frozen.OriginDigest("a"); d.Watermark != tomb.Version.Counter || d.Known != a.origins["a"].known {
		t.Errorf("frozen node after catching up: %+v", d)
	}
	if ch := applyAll(t, frozen, later, web); !ch.Empty() {
		t.Errorf("frozen node took back the old copy after catching up: %+v", ch)
	}
}

// Two runs of one name that both took over from the same earlier epoch
// share an epoch; the live run overrides whatever the other one wrote.
func TestOwnEntriesOfAnotherRun(t *testing.T) {
	first := New("a", 5)
	old := mustPut(t, first, svc("old", "old"), t0)

	runA := New("a", 1) // dies after it took over
	mustPut(t, runA, svc("p", "p"), t0)
	chA := applyAll(t, runA, t0, old)
	sA := mustPut(t, runA, Service{ID: "s", Name: "s", Port: 1}, t0) // {6, 2}
	if runA.LocalEpoch() != 6 || sA.Version != (Version{6, 2}) {
		t.Fatalf("run A: epoch %d, %v", runA.LocalEpoch(), sA.Version)
	}

	runB := New("a", 2) // the live run
	mustPut(t, runB, svc("q", "q"), t0)
	mustPut(t, runB, Service{ID: "s", Name: "s", Port: 2}, t0)
	mustPut(t, runB, svc("z", "z"), t0)
	chB := applyAll(t, runB, t0, old)
	if runB.LocalEpoch() != 6 || len(chB.Local) != 3 {
		t.Fatalf("run B: epoch %d, %+v", runB.LocalEpoch(), chB)
	}

	r := New("r", 1)
	setNode(r, "a", StatusAlive, 6, t0)
	applyAll(t, r, t0, chA.Local...)
	applyAll(t, r, t0, sA)
	applyAll(t, r, t0, chB.Local...)
	// r holds run A's p (6.1) and one of the two writes at 6.2 (the same
	// one on every agent), and run B's z (6.3).
	wantIDs(t, r, "p", "a/p")

	// Anti-entropy brings r's copy to run B, which answers with its own
	// state over run A's writes.
	send, _, ch := r.Plan(runB.Digest(), nil, t0)
	_ = send
	_, want, ch := runB.Plan(r.Digest(), nil, t0)
	if len(ch.Local) != 0 {
		t.Fatalf("run B took over: %+v", ch)
	}
	for _, w := range want {
		for _, d := range r.Deltas(w, 1<<20) {
			c := runB.ApplyDelta(d, t0)
			checkConsistency(t, runB)
			ch.Local = append(ch.Local, c.Local...)
			if len(c.Accepted) != 0 {
				t.Fatalf("run B accepted others' writes of its name: %+v", c)
			}
		}
	}
	if runB.LocalEpoch() != 6 {
		t.Fatalf("run B moved to epoch %d", runB.LocalEpoch())
	}
	applyAll(t, r, t0, ch.Local...)
	syncFrom(t, r, runB, t0)
	wantIDs(t, r, "p")
	wantIDs(t, r, "q", "a/q")
	if in := r.Instances("s"); len(in) != 1 || in[0].Service.Port != 2 {
		t.Errorf("Instances(s) = %+v, want run B's", in)
	}
	if dr, _ := r.OriginDigest("a"); dr.Hash != runB.origins["a"].hash {
		t.Errorf("r's copy of a differs from run B's: %+v", dr)
	}
	if ch := syncFrom(t, runB, r, t0); !ch.Empty() {
		t.Errorf("second exchange: %+v", ch)
	}
}

// Invariant 4: a restarted origin is not outvoted by its older self.
func TestRestartDropsOldEntries(t *testing.T) {
	setup := func(t *testing.T) (r *Catalog, old []Entry, a1 *Catalog) {
		a1 = New("a", 100)
		old = []Entry{mustPut(t, a1, svc("web", "web"), t0), mustPut(t, a1, svc("db", "db"), t0)}
		old = append(old, mustDelete(t, a1, "db", t0), mustPut(t, a1, svc("db", "db"), t0))
		r = New("r", 1)
		setNode(r, "a", StatusAlive, 100, t0)
		applyAll(t, r, t0, old...)
		wantIDs(t, r, "web", "a/web")
		wantIDs(t, r, "db", "a/db")
		return r, old, a1
	}
	after := func(t *testing.T, r *Catalog, old []Entry, a1 *Catalog, want ...string) {
		t.Helper()
		wantIDs(t, r, "web")
		wantIDs(t, r, "db")
		for _, e := range r.Entries() {
			if e.Origin == "a" && e.Version.Epoch != 200 {
				t.Errorf("entry of the old run kept: %+v", e)
			}
		}
		// Older-epoch entries arriving afterwards are refused.
		if ch := applyAll(t, r, t0, old...); !ch.Empty() {
			t.Errorf("old entries accepted: %+v", ch)
		}
		if ch := syncFrom(t, r, a1, t0); !ch.Empty() {
			t.Errorf("old run's delta accepted: %+v", ch)
		}
		wantIDs(t, r, "web")
		wantIDs(t, r, "api", want...)
	}

	t.Run("node meta, then entry", func(t *testing.T) {
		r, old, a1 := setup(t)
		a2 := New("a", 200)
		sidx := r.ServiceIndex("web")
		setNode(r, "a", StatusAlive, 200, t0)
		applyAll(t, r, t0, mustPut(t, a2, svc("api", "api"), t0))
		if r.ServiceIndex("web") <= sidx {
			t.Error("dropping web did not move its ServiceIndex")
		}
		after(t, r, old, a1, "a/api")
	})
	t.Run("node meta while dead", func(t *testing.T) {
		r, old, a1 := setup(t)
		setNode(r, "a", StatusDead, 100, t0)
		setNode(r, "a", StatusAlive, 200, t0)
		checkConsistency(t, r)
		after(t, r, old, a1)
	})
	t.Run("delta of the restarted origin", func(t *testing.T) {
		r, old, a1 := setup(t)
		a2 := New("a", 200)
		mustPut(t, a2, svc("api", "api"), t0)
		setNode(r, "a", StatusAlive, 200, t0)
		syncFrom(t, r, a2, t0)
		after(t, r, old, a1, "a/api")
	})
}

func TestTakeOver(t *testing.T) {
	// A previous run of "a" had a clock ahead: epoch 200. The new run is 100.
	a1 := New("a", 200)
	web := mustPut(t, a1, svc("web", "web"), t0)
	gone := mustPut(t, a1, svc("gone", "gone"), t0)
	mkR := func() *Catalog {
		r := New("r", 1)
		setNode(r, "a", StatusAlive, 200, t0)
		applyAll(t, r, t0, web, gone)
		return r
	}

	t.Run("announced", func(t *testing.T) {
		// The new run's lower epoch, once memberlist announces it,
		// replaces the old run everywhere.
		r := mkR()
		a2 := New("a", 100)
		db := mustPut(t, a2, svc("db", "db"), t0)
		if ch := applyAll(t, r, t0, db); !ch.Empty() {
			t.Fatalf("the new run's entry taken before its announcement: %+v", ch)
		}
		setNode(r, "a", StatusAlive, 100, t0)
		wantIDs(t, r, "web")
		applyAll(t, r, t0, db)
		wantIDs(t, r, "db", "a/db")
		if ch := applyAll(t, r, t0, web); !ch.Empty() {
			t.Errorf("the old run's entry taken after the new run's announcement: %+v", ch)
		}
	})
	t.Run("digest", func(t *testing.T) {
		// The new run sees its name at the old run's epoch in a peer's
		// digest before its own announcement reached that peer: it moves
		// past that epoch and re-stamps its entries.
		r := mkR()
		a2 := New("a", 100)
		mustPut(t, a2, svc("db", "db"), t0)
		mustPut(t, a2, svc("x", "x"), t0)
		mustDelete(t, a2, "x", t0)
		_, _, ch := a2.Plan(r.Digest(), nil, t0)
		if a2.LocalEpoch() <= 200 {
			t.Fatalf("LocalEpoch = %d, want past 200", a2.LocalEpoch())
		}
		if len(ch.Accepted) != 0 || len(ch.Local) != 1 || ch.Local[0].Service.ID != "db" ||
			ch.Local[0].Version.Epoch != a2.LocalEpoch() || ch.Local[0].Origin != "a" {
			t.Fatalf("Changes = %+v, want db re-stamped in Local", ch)
		}
		if es := a2.LocalEntries(); len(es) != 1 {
			t.Errorf("LocalEntries = %+v, want the re-stamped db only", es)
		}
		setNode(r, "a", StatusAlive, a2.LocalEpoch(), t0)
		applyAll(t, r, t0, ch.Local...)
		wantIDs(t, r, "web")
		wantIDs(t, r, "gone")
		wantIDs(t, r, "db", "a/db")
		// Echoes of its own entries change nothing now.
		epoch := a2.LocalEpoch()
		if ch := syncFrom(t, a2, r, t0); !ch.Empty() || a2.LocalEpoch() != epoch {
			t.Errorf("echoed delta: %+v, epoch %d→%d", ch, epoch, a2.LocalEpoch())
		}
		if _, _, ch := a2.Plan(r.Digest(), nil, t0); !ch.Empty() {
			t.Errorf("echoed digest: %+v", ch)
		}
		e := mustPut(t, a2, svc("api", "api"), t0)
		if e.Version.Epoch != epoch {
			t.Errorf("Put after take-over in epoch %d, want %d", e.Version.Epoch, epoch)
		}
	})
	t.Run("entry", func(t *testing.T) {
		a3 := New("a", 100)
		mustPut(t, a3, svc("x", "x"), t0)
		ch := applyAll(t, a3, t0, web)
		if a3.LocalEpoch() <= 200 || len(ch.Local) != 1 || ch.Local[0].Service.ID != "x" || len(ch.Accepted) != 0 {
			t.Errorf("Apply of own later-epoch entry: epoch %d, %+v", a3.LocalEpoch(), ch)
		}
	})
	t.Run("delta", func(t *testing.T) {
		a4 := New("a", 100)
		ch := syncFrom(t, a4, mkR(), t0)
		if a4.LocalEpoch() <= 200 || !ch.Empty() {
			t.Errorf("epoch %d, %+v", a4.LocalEpoch(), ch)
		}
	})
	t.Run("same epoch, later counter", func(t *testing.T) {
		a5 := New("a", 200)
		mustPut(t, a5, svc("x", "x"), t0)
		ch := applyAll(t, a5, t0, gone) // {200, 2}
		if a5.LocalEpoch() <= 200 || len(ch.Local) != 1 {
			t.Errorf("epoch %d, %+v", a5.LocalEpoch(), ch)
		}
	})
	t.Run("echo", func(t *testing.T) {
		a6 := New("a", 200)
		e1 := mustPut(t, a6, svc("x", "x"), t0)
		e2 := mustPut(t, a6, svc("y", "y"), t0)
		r := New("r", 1)
		setNode(r, "a", StatusAlive, 200, t0)
		applyAll(t, r, t0, e1, e2)
		idx := a6.Index()
		ch := applyAll(t, a6, t0, e1, e2)
		ch2 := syncFrom(t, a6, r, t0)
		if !ch.Empty() || !ch2.Empty() || a6.LocalEpoch() != 200 || a6.Index() != idx {
			t.Errorf("own current entries echoed back: %+v %+v, epoch %d, index %d→%d", ch, ch2, a6.LocalEpoch(), idx, a6.Index())
		}
	})
	t.Run("older epoch", func(t *testing.T) {
		a7 := New("a", 300)
		if ch := applyAll(t, a7, t0, web); !ch.Empty() || a7.LocalEpoch() != 300 {
			t.Errorf("own older entry: %+v, epoch %d", ch, a7.LocalEpoch())
		}
	})
}

// Invariant 5: liveness filters the view.
func TestLiveness(t *testing.T) {
	r := New("r", 1)
	b := New("b", 5)
	web := mustPut(t, b, svc("web", "web", "v1"), t0)
	// Nodes in memberlist's unknown state are hidden.
	setNode(r, "b", StatusUnknown, 5, t0)
	applyAll(t, r, t0, web)
	wantIDs(t, r, "web")
	if _, ok := r.Services()["web"]; ok {
		t.Error("Services lists a service of a node in an unknown state")
	}

	for _, st := range []NodeStatus{StatusAlive, StatusSuspect} {
		setNode(r, "b", st, 5, t0)
		wantIDs(t, r, "web", "b/web")
		if tags, ok := r.Services()["web"]; !ok || !slices.Equal(tags, []string{"v1"}) {
			t.Errorf("%v: Services = %v", st, r.Services())
		}
	}
	for _, st := range []NodeStatus{StatusDead, StatusLeft} {
		setNode(r, "b", StatusAlive, 5, t0)
		sidx := r.ServiceIndex("web")
		setNode(r, "b", st, 5, t0)
		checkConsistency(t, r)
		wantIDs(t, r, "web")
		if _, ok := r.Services()["web"]; ok {
			t.Errorf("%v: Services still lists web", st)
		}
		if r.ServiceIndex("web") <= sidx {
			t.Errorf("%v: ServiceIndex did not move", st)
		}
		if n, ok := r.Node("b"); !ok || n.Status != st || n.Serving() {
			t.Errorf("Node(b) = %+v, %v", n, ok)
		}
		sidx = r.ServiceIndex("web")
		setNode(r, "b", StatusAlive, 5, t0)
		wantIDs(t, r, "web", "b/web")
		if r.ServiceIndex("web") <= sidx {
			t.Errorf("alive after %v: ServiceIndex did not move", st)
		}
	}

	// Changes of a hidden node are kept, hidden, and shown when it is back.
	setNode(r, "b", StatusDead, 5, t0)
	applyAll(t, r, t0, mustPut(t, b, svc("web2", "web"), t0))
	wantIDs(t, r, "web")
	setNode(r, "b", StatusAlive, 5, t0)
	wantIDs(t, r, "web", "b/web", "b/web2")

	// The local node is always served.
	mustPut(t, r, svc("web", "web"), t0)
	setNode(r, "r", StatusDead, 1, t0)
	wantIDs(t, r, "web", "b/web", "b/web2", "r/web")
}

func TestSetNode(t *testing.T) {
	c := New("r", 1)
	now := t0
	setNode(c, "b", StatusAlive, 5, now)
	checkConsistency(t, c)
	n, ok := c.Node("b")
	if !ok || n.Status != StatusAlive || n.Epoch != 5 || !n.StatusSince.Equal(now) || n.CreateIndex == 0 || n.CreateIndex != n.ModifyIndex {
		t.Fatalf("Node(b) = %+v, %v", n, ok)
	}
	idx := c.Index()
	setNode(c, "b", StatusAlive, 5, now.Add(time.Minute)) // identical
	if c.Index() != idx {
		t.Error("an identical SetNode moved the index")
	}
	c.SetNode(Node{Name: "b", Address: "10.0.0.2", Port: 7946, Status: StatusAlive, Epoch: 5}, now.Add(time.Minute))
	n2, _ := c.Node("b")
	if c.Index() <= idx || n2.ModifyIndex != c.Index() || n2.CreateIndex != n.CreateIndex || !n2.StatusSince.Equal(now) {
		t.Errorf("after an address change: %+v, index %d", n2, c.Index())
	}
	setNode(c, "b", StatusDead, 5, now.Add(2*time.Minute))
	if n3, _ := c.Node("b"); !n3.StatusSince.Equal(now.Add(2 * time.Minute)) {
		t.Errorf("StatusSince = %v after a status change", n3.StatusSince)
	}
	meta := map[string]string{"dc": "one"}
	c.SetNode(Node{Name: "a", Status: StatusAlive, Meta: meta}, now)
	meta["dc"] = "changed"
	if n, _ := c.Node("a"); n.Meta["dc"] != "one" {
		t.Errorf("the catalog shares the caller's node meta: %v", n.Meta)
	}
	var names []string
	for _, n := range c.Nodes() {
		names = append(names, n.Name)
	}
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("Nodes = %v", names)
	}
	if _, ok := c.Node("zz"); ok {
		t.Error("Node(zz) found")
	}
	checkConsistency(t, c)
}

func TestIndex(t *testing.T) {
	r := New("r", 1)
	b := New("b", 5)
	setNode(r, "b", StatusAlive, 5, t0)
	last := r.Index()
	step := func(what string) {
		t.Helper()
		checkConsistency(t, r)
		if r.Index() < last {
			t.Fatalf("%s: Index went back %d→%d", what, last, r.Index())
		}
		last = r.Index()
	}
	never := r.ServiceIndex("never-seen")
	mustPut(t, r, svc("web-1", "web"), t0)
	step("put web")
	web, db := r.ServiceIndex("web"), r.ServiceIndex("db")
	if web != r.Index() {
		t.Errorf("ServiceIndex(web) = %d after its change, Index %d", web, r.Index())
	}

	mustPut(t, r, svc("db-1", "db"), t0)
	step("put db")
	if r.ServiceIndex("web") != web {
		t.Error("a db change moved ServiceIndex(web)")
	}
	if r.ServiceIndex("db") <= db {
		t.Error("ServiceIndex(db) did not move")
	}

	applyAll(t, r, t0, mustPut(t, b, svc("web-2", "web"), t0))
	step("remote web")
	if r.ServiceIndex("web") <= web {
		t.Error("a remote web instance did not move ServiceIndex(web)")
	}
	web = r.ServiceIndex("web")

	// A service renamed under the same ID moves both names.
	db = r.ServiceIndex("db")
	mustPut(t, r, svc("db-1", "cache"), t0)
	step("rename")
	if r.ServiceIndex("db") <= db || r.ServiceIndex("cache") <= db {
		t.Error("a rename did not move both names")
	}
	wantIDs(t, r, "db")
	wantIDs(t, r, "cache", "r/db-1")
	if r.ServiceIndex("web") != web {
		t.Error("the rename moved ServiceIndex(web)")
	}

	// Changes of a hidden node are invisible in the service.
	setNode(r, "c", StatusDead, 9, t0)
	step("node c")
	c := New("c", 9)
	applyAll(t, r, t0, mustPut(t, c, svc("web-3", "web"), t0))
	step("hidden web")
	if r.ServiceIndex("web") != web {
		t.Error("a hidden node's web instance moved ServiceIndex(web)")
	}
	// A node without instances of web leaves it alone.
	setNode(r, "d", StatusAlive, 0, t0)
	step("node d")
	setNode(r, "c", StatusAlive, 9, t0)
	step("node c alive")
	if r.ServiceIndex("web") <= web {
		t.Error("a node with web instances coming alive did not move ServiceIndex(web)")
	}
	web = r.ServiceIndex("web")
	// A node's address is part of every instance it serves.
	r.SetNode(Node{Name: "c", Address: "10.9.9.9", Status: StatusAlive, Epoch: 9}, t0)
	step("node c address")
	if r.ServiceIndex("web") <= web {
		t.Error("a node address change did not move ServiceIndex of its services")
	}
	if in := r.Instances("web"); in[1].Node.Address != "10.9.9.9" || in[1].ModifyIndex > r.ServiceIndex("web") {
		t.Errorf("Instances = %+v", in)
	}
	// A name the catalog never held keeps its index through all of it:
	// a blocking query on it does not wake for others' changes.
	if r.ServiceIndex("never-seen") != never {
		t.Errorf("ServiceIndex of a name never seen moved %d→%d", never, r.ServiceIndex("never-seen"))
	}

	// Reaping changes nothing a reader sees of services; a name with no
	// instance left is forgotten, and keeps its index.
	mustDelete(t, r, "web-1", t0)
	step("delete")
	web = r.ServiceIndex("web")
	dbIdx := r.ServiceIndex("db")
	r.Reap(t0.Add(tombTTL+time.Second), tombTTL, nodeTTL)
	step("reap")
	if r.ServiceIndex("web") != web {
		t.Error("Reap moved ServiceIndex(web)")
	}
	if _, ok := r.names["db"]; ok || r.ServiceIndex("db") != dbIdx {
		t.Errorf("the empty name db: kept %v, index %d→%d", ok, dbIdx, r.ServiceIndex("db"))
	}
	if r.ServiceIndex("never-seen") < dbIdx {
		t.Error("ServiceIndex of an unknown name is below that of a forgotten one")
	}
	mustPut(t, r, svc("db-2", "db"), t0)
	step("db again")
	if r.ServiceIndex("db") <= dbIdx {
		t.Error("ServiceIndex(db) did not move when db came back")
	}
}

func TestReapNodes(t *testing.T) {
	r := New("r", 1)
	b, c := New("b", 5), New("c", 6)
	setNode(r, "b", StatusAlive, 5, t0)
	setNode(r, "c", StatusAlive, 6, t0)
	applyAll(t, r, t0, mustPut(t, b, svc("web-b", "web"), t0), mustPut(t, c, svc("web-c", "web"), t0))
	tomb := mustPut(t, b, svc("x", "x"), t0)
	applyAll(t, r, t0, tomb, mustDelete(t, b, "x", t0))
	mustPut(t, r, svc("web-r", "web"), t0)
	setNode(r, "r", StatusAlive, 1, t0)

	dead := t0.Add(time.Minute)
	setNode(r, "b", StatusDead, 5, dead)

	if n := r.Reap(dead.Add(nodeTTL), tombTTL, nodeTTL); n != 1 { // b's tombstone only
		t.Errorf("Reap before the node TTL dropped %d, want 1", n)
	}
	checkConsistency(t, r)
	if _, ok := r.Node("b"); !ok {
		t.Fatal("b reaped before its TTL")
	}

	idx := r.Index()
	web := r.ServiceIndex("web")
	late := dead.Add(nodeTTL + time.Second)
	if n := r.Reap(late, tombTTL, nodeTTL); n != 1 { // b's web-b
		t.Errorf("Reap after the node TTL dropped %d, want 1", n)
	}
	checkConsistency(t, r)
	if _, ok := r.Node("b"); ok {
		t.Error("dead node b not forgotten")
	}
	if r.ServiceIndex("web") != web {
		t.Error("reaping hidden instances moved ServiceIndex(web)")
	}
	if r.Index() <= idx {
		t.Error("forgetting node b (gone from Nodes) did not move the index")
	}
	for _, e := range r.Entries() {
		if e.Origin == "b" {
			t.Errorf("entry of a reaped node kept: %+v", e)
		}
	}
	wantIDs(t, r, "web", "c/web-c", "r/web-r")
	if _, ok := r.Node("c"); !ok {
		t.Error("alive node c reaped")
	}
	if n := r.Reap(late.Add(24*time.Hour), tombTTL, nodeTTL); n != 0 {
		t.Errorf("a second Reap dropped %d", n)
	}
}

func TestReapKeepsRecentEntriesOfGoneNodes(t *testing.T) {
	r := New("r", 1)
	setNode(r, "b", StatusLeft, 5, t0)
	late := t0.Add(nodeTTL + time.Second)
	// An entry that arrived recently (a lagging relay) keeps the origin for
	// another nodeTTL.
	b := New("b", 5)
	applyAll(t, r, late, mustPut(t, b, svc("web", "web"), t0))
	if n := r.Reap(late, tombTTL, nodeTTL); n != 0 {
		t.Errorf("Reap dropped %d recent entries", n)
	}
	if n := r.Reap(late.Add(nodeTTL+time.Second), tombTTL, nodeTTL); n != 1 {
		t.Errorf("Reap dropped %d, want 1", n)
	}
	checkConsistency(t, r)
}

// A dead node's entries, once reaped, are not taken back from peers that
// have not reaped them yet (else they bounce between peers for ever), but
// the node itself can come back.
func TestReapedNodeStaysForgotten(t *testing.T) {
	x := New("x", 5)
	web := mustPut(t, x, svc("web", "web"), t0)
	mustPut(t, x, svc("old", "old"), t0)
	tomb := mustDelete(t, x, "old", t0)
	a, b := New("a", 1), New("b", 1)
	for _, c := range []*Catalog{a, b} {
		setNode(c, "x", StatusAlive, 5, t0)
		syncFrom(t, c, x, t0)
		wantIDs(t, c, "web", "x/web")
	}
	setNode(a, "x", StatusDead, 5, t0)
	setNode(b, "x", StatusDead, 5, t0.Add(time.Minute)) // b learns it later

	at := t0.Add(nodeTTL + time.Second)
	if n := a.Reap(at, tombTTL, nodeTTL); n != 2 {
		t.Fatalf("a reaped %d, want 2", n)
	}
	checkConsistency(t, a)
	if n := b.Reap(at, tombTTL, nodeTTL); n != 1 { // only the tombstone yet
		t.Fatalf("b reaped %d, want 1", n)
	}
	// b, not done yet, pushes x's entries back to a.
	if ch := syncFrom(t, a, b, at); !ch.Empty() {
		t.Errorf("a took back a reaped node's entries: %+v", ch)
	}
	if ch := applyAll(t, a, at, web, tomb); !ch.Empty() {
		t.Errorf("a took back a reaped node's entries: %+v", ch)
	}
	if _, ok := a.OriginDigest("x"); ok {
		t.Error("a still announces the reaped origin")
	}
	if _, ok := a.origins["x"]; ok {
		t.Error("a keeps the reaped origin")
	}

	t.Run("back alive", func(t *testing.T) {
		// x was only cut off: it comes back alive in the same run.
		c := New("c", 1)
		setNode(c, "x", StatusAlive, 5, t0)
		syncFrom(t, c, x, t0)
		setNode(c, "x", StatusLeft, 5, t0)
		c.Reap(at, tombTTL, nodeTTL)
		setNode(c, "x", StatusAlive, 5, at)
		syncFrom(t, c, x, at)
		wantIDs(t, c, "web", "x/web")
	})
	t.Run("restarted", func(t *testing.T) {
		c := New("c", 1)
		setNode(c, "x", StatusAlive, 5, t0)
		syncFrom(t, c, x, t0)
		setNode(c, "x", StatusLeft, 5, t0)
		c.Reap(at, tombTTL, nodeTTL)
		x2 := New("x", 6)
		setNode(c, "x", StatusAlive, 6, at)
		applyAll(t, c, at, mustPut(t, x2, svc("api", "api"), at))
		wantIDs(t, c, "api", "x/api")
		wantIDs(t, c, "web")
	})
}

func TestInstancesAndServicesSorted(t *testing.T) {
	r := New("m", 1)
	for _, n := range []string{"c", "a", "b"} {
		o := New(n, 1)
		setNode(r, n, StatusAlive, 1, t0)
		for _, id := range []string{"web-9", "web-10", "web-1"} {
			applyAll(t, r, t0, mustPut(t, o, svc(id, "web", "z-"+n, "a", "m"), t0))
		}
	}
	mustPut(t, r, svc("web-0", "web", "local"), t0)
	mustPut(t, r, svc("db", "db"), t0)
	wantIDs(t, r, "web",
		"a/web-1", "a/web-10", "a/web-9",
		"b/web-1", "b/web-10", "b/web-9",
		"c/web-1", "c/web-10", "c/web-9",
		"m/web-0")
	in := r.Instances("web")
	if in[0].Node.Status != StatusAlive || in[0].Node.Address != "10.0.0.1" || in[9].Node.Name != "m" {
		t.Errorf("instance nodes: %+v / %+v", in[0].Node, in[9].Node)
	}
	want := map[string][]string{
		"web": {"a", "local", "m", "z-a", "z-b", "z-c"},
		"db":  {},
	}
	if got := r.Services(); !reflect.DeepEqual(got, want) {
		t.Errorf("Services = %v, want %v", got, want)
	}
	if got := r.Instances("nope"); got == nil || len(got) != 0 {
		t.Errorf("Instances(nope) = %#v, want empty", got)
	}
}

// Deltas carry exactly what a peer lacks, in counter order, in chunks of
// the asked size, and claim the runs they cover.
func TestDeltas(t *testing.T) {
	a := New("a", 3)
	for i := range 20 {
		mustPut(t, a, svc(fmt.Sprintf("web-%02d", i), "web"), t0)
	}
	mustDelete(t, a, "web-05", t0)                                 // 21
	mustPut(t, a, Service{ID: "web-07", Name: "web", Port: 9}, t0) // 22: 7 is now obsolete

	if ds := a.Deltas(Want{Origin: "a", Epoch: 3, Known: 22}, 1<<20); ds != nil {
		t.Errorf("a peer that is up to date gets %+v", ds)
	}
	ds := a.Deltas(Want{Origin: "a", Epoch: 3, Known: 18}, 1<<20)
	if len(ds) != 1 || ds[0].From != 18 || ds[0].To != 22 || ds[0].Full || len(ds[0].Entries) != 4 {
		t.Fatalf("delta from 18: %+v", ds)
	}
	for i, e := range ds[0].Entries {
		if want := uint64(19 + i); e.Version.Counter != want {
			t.Errorf("entry %d has counter %d, want %d (counter order)", i, e.Version.Counter, want)
		}
	}
	// A peer on another epoch, or below the watermark, gets the whole
	// section; small budgets split it into chunks that chain.
	for _, w := range []Want{{Origin: "a"}, {Origin: "a", Epoch: 2, Known: 30}, {Origin: "a", Epoch: 3, Known: 4, Full: true}} {
		ds := a.Deltas(w, 300)
		if len(ds) < 3 {
			t.Fatalf("%+v: %d chunks", w, len(ds))
		}
		var n int
		from := uint64(0)
		for _, d := range ds {
			if !d.Full || d.From != from || d.To < d.From || d.Upto != 22 || d.Epoch != 3 {
				t.Fatalf("%+v: chunk %+v does not chain from %d", w, d, from)
			}
			if size := deltaOverhead + len(d.Entries)*EntrySizeBound(d.Entries[0]); len(d.Entries) > 1 && size > 300 {
				t.Errorf("chunk of %d entries is over the budget", len(d.Entries))
			}
			from = d.To
			n += len(d.Entries)
		}
		if from != 22 || n != 20 {
			t.Errorf("%+v: chunks end at %d with %d entries, want 22 and 20", w, from, n)
		}
	}
	if ds := New("b", 1).Deltas(Want{Origin: "a"}, 100); ds != nil {
		t.Errorf("a catalog that holds nothing of a sends %+v", ds)
	}
}

// Digests and summaries: equal when two catalogs serve the same writes,
// different when they do not, even at equal versions.
func TestDigestAndSummary(t *testing.T) {
	a := New("a", 1)
	r1, r2 := New("r1", 1), New("r2", 1)
	for _, c := range []*Catalog{r1, r2} {
		setNode(c, "a", StatusAlive, 1, t0)
		setNode(c, "r1", StatusAlive, 1, t0)
		setNode(c, "r2", StatusAlive, 1, t0)
	}
	es := []Entry{mustPut(t, a, svc("web", "web"), t0), mustPut(t, a, svc("db", "db"), t0)}
	applyAll(t, r1, t0, es...)
	applyAll(t, r2, t0, es[1], es[0])
	if r1.Summary() != r2.Summary() {
		t.Fatalf("same writes, different summaries: %+v / %+v", r1.Digest(), r2.Digest())
	}
	d1, _ := r1.OriginDigest("a")
	if d1.Known != 2 || d1.Entries != 2 || !d1.Served {
		t.Errorf("digest of a: %+v", d1)
	}
	// A node going dead leaves the summary (its services are not served).
	before := r1.Summary()
	setNode(r1, "a", StatusDead, 1, t0)
	if r1.Summary() == before {
		t.Error("a node that is no longer served did not change the summary")
	}
	setNode(r1, "a", StatusAlive, 1, t0)
	if r1.Summary() != before {
		t.Error("the summary did not come back with the node")
	}

	// Different content at the same versions (a forged or broken write)
	// differs in the hash, and an exchange settles it.
	bad := es[1]
	bad.Service = svc("db", "db", "forged")
	r3 := New("r3", 1)
	setNode(r3, "a", StatusAlive, 1, t0)
	applyAll(t, r3, t0, es[0], bad)
	d3, _ := r3.OriginDigest("a")
	if d3.Known != d1.Known || d3.Hash == d1.Hash || r3.Summary() == r2.Summary() {
		t.Fatalf("same versions, different writes, same digest: %+v / %+v", d3, d1)
	}
	send, want, _ := r1.Plan(r3.Digest(), nil, t0)
	if len(send) != 1 || !send[0].Full || len(want) != 1 || !want[0].Full {
		t.Fatalf("plan for a hash mismatch: send %+v want %+v", send, want)
	}
	// The digests of the buckets that differ carry exactly the origins
	// that differ.
	b1, b3 := r1.Buckets(), r3.Buckets()
	var differ []int
	for i := range b1 {
		if b1[i] != b3[i] {
			differ = append(differ, i)
		}
	}
	if len(differ) != 1 || differ[0] != BucketOf("a") {
		t.Fatalf("buckets differing: %v, want a's (%d)", differ, BucketOf("a"))
	}
	if ds := r3.DigestIn(differ); len(ds) != 1 || ds[0].Origin != "a" {
		t.Fatalf("digest of the differing bucket: %+v", ds)
	}
	if send, want, _ := r1.Plan(r3.DigestIn(differ), InBuckets(differ), t0); len(send) != 1 || !send[0].Full || len(want) != 1 {
		t.Fatalf("plan for the differing bucket: send %+v want %+v", send, want)
	}
	// A partial digest (one origin, on purpose) proposes nothing of the
	// origins it leaves out.
	if send, _, _ := r1.Plan([]OriginDigest{{Origin: "zz"}}, Listed([]OriginDigest{{Origin: "zz"}}), t0); len(send) != 0 {
		t.Errorf("a partial digest: send %+v", send)
	}
	if send, _, _ := r1.Plan([]OriginDigest{{Origin: "zz"}}, nil, t0); len(send) != 1 || send[0].Origin != "a" {
		t.Errorf("a whole digest without a: send %+v", send)
	}
	syncFrom(t, r3, r1, t0)
	syncFrom(t, r1, r3, t0)
	if h1, h3 := r1.origins["a"].hash, r3.origins["a"].hash; h1 != h3 {
		t.Errorf("hashes still differ after exchanging full sections: %x / %x", h1, h3)
	}
}
