package catalog

import (
	"math"
	"sort"
	"time"
)

// Version orders the writes of one origin: Epoch changes at every start of
// the origin agent, Counter counts its changes within that epoch. A later
// epoch beats any counter of an earlier one.
type Version struct {
	Epoch   uint64
	Counter uint64
}

// Less reports whether v comes before w.
func (v Version) Less(w Version) bool {
	if v.Epoch != w.Epoch {
		return v.Epoch < w.Epoch
	}
	return v.Counter < w.Counter
}

// Kind tells what an entry holds.
type Kind uint8

// Entry kinds.
const (
	KindService Kind = 0 // a service instance
	KindCheck   Kind = 1 // the state of a health check
)

// Entry is one versioned write of an origin: a service instance or a
// check's state, or a tombstone (Deleted) recording that the instance or
// check with that ID is gone. Services and checks have separate ID spaces;
// both count in the origin's one version sequence, which has no gaps: the
// origin's n-th write has counter n.
type Entry struct {
	Origin  string
	Version Version
	Deleted bool
	Kind    Kind
	Service Service // KindService; a tombstone carries only ID and Name
	Check   Check   // KindCheck; a tombstone carries only ID and ServiceID
	// Ext is what a later protocol version added to the entry, as the
	// wire carried it. The catalog keeps it, hashes it and hands it back
	// with the entry, so that agents of different versions hold, pass on
	// and agree on the same write.
	Ext string
}

// ID is the ID of the service or check the entry is about.
func (e Entry) ID() string {
	if e.Kind == KindCheck {
		return e.Check.ID
	}
	return e.Service.ID
}

func (e Entry) key() entryKey { return entryKey{e.Kind, e.ID()} }

// tombstone returns the tombstone of e's service or check at version v.
func (e Entry) tombstone(v Version) Entry {
	t := Entry{Origin: e.Origin, Version: v, Deleted: true, Kind: e.Kind}
	if e.Kind == KindCheck {
		t.Check = Check{ID: e.Check.ID, ServiceID: e.Check.ServiceID}
	} else {
		t.Service = Service{ID: e.Service.ID, Name: e.Service.Name}
	}
	return t
}

// Changes is what a write, an entry or a delta did.
type Changes struct {
	// Accepted are remote entries that were newer than what the catalog
	// held and are now stored: news to pass on.
	Accepted []Entry
	// Local are this agent's own entries, re-stamped because the cluster
	// knew this node name at a later version; they must be broadcast.
	Local []Entry
	// Fresh is set by Apply when the entry's (origin, epoch, counter) had
	// not been seen before, whether or not a newer write of the same ID
	// made it obsolete: a relay passes fresh entries on. Dup is set when it
	// had: the copy came by a second path. An entry that is neither (of
	// another run, or of a node that is not a member) was refused.
	Fresh, Dup bool
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool { return len(c.Accepted) == 0 && len(c.Local) == 0 }

type key struct{ origin, id string }

// entryKey names an entry within its origin.
type entryKey struct {
	kind Kind
	id   string
}

func (k entryKey) less(l entryKey) bool {
	if k.kind != l.kind {
		return k.kind < l.kind
	}
	return k.id < l.id
}

type record struct {
	Entry
	hash        uint64 // entryHash(Entry), for the origin's content hash
	createIndex uint64
	modifyIndex uint64
	changed     time.Time // local time of the last change; tombstones age from it
	// unconfirmed marks an entry held when a full resend of its origin
	// began and not sent again since: if the resend completes without it,
	// the sender no longer has it and neither does anyone current.
	unconfirmed bool
}

// span is a run of counters lo…hi, both included.
type span struct{ lo, hi uint64 }

// maxSpans bounds the runs of counters an origin remembers above its
// contiguous prefix. Forgetting the highest runs costs nothing but
// duplicates: those writes look new again if they come back.
const maxSpans = 256

type origin struct {
	epoch uint64
	// known is the counter up to which every write of epoch is reflected
	// here: held, or made obsolete by a later write of the same ID that
	// is held. A peer behind it needs only the entries above it.
	known uint64
	// seen are the runs of counters above known+1 that arrived out of
	// order, sorted and disjoint.
	seen []span
	// counter is the highest counter held or seen in epoch (for the local
	// origin: the last it wrote).
	counter uint64
	// watermark is the highest counter of a tombstone reaped here or at
	// a peer this catalog caught up from. Every write at or below it is
	// reflected, so an entry at or below it whose ID is not held is an
	// old copy of something deleted long ago, and is refused.
	watermark uint64
	hash      uint64    // XOR of the hashes of the live entries
	sum       uint64    // this origin's share of the catalog's summary
	changed   time.Time // local time of the last write stored
	// resync is the counter a full resend under way must reach before it
	// completes (0: none); resyncW the highest watermark it announced;
	// resynced the counters its chunks have covered.
	resync   uint64
	resyncW  uint64
	resynced []span
	entries  map[entryKey]*record
	// checks indexes the live check records by service ID ("" for node
	// checks) and check ID.
	checks map[string]map[string]*record
}

// Catalog holds every origin's entries and the liveness of every node.
type Catalog struct {
	local   string
	origins map[string]*origin
	nodes   map[string]*Node
	byName  map[string]map[key]*record // live entries by service name
	index   uint64
	names   map[string]uint64 // service name → index of its last visible change
	// namesFloor is the ServiceIndex of a name the catalog holds no index
	// for: the highest index of a name it forgot, so that a name's index
	// never goes back and unrelated changes never move it.
	namesFloor uint64
	summary    uint64 // XOR of the served origins' sums
	buckets    [SummaryBuckets]uint64
	maxSkew    time.Duration
	stats      Stats
	pres       preserve // self-preservation (preserve.go)
}

// Stats counts what the catalog refused, for metrics. Each is a number
// of entries, deltas or node records.
type Stats struct {
	// FutureEpoch: epochs further ahead of this agent's clock than the
	// allowed skew (see SetMaxEpochSkew).
	FutureEpoch uint64
	// UnknownOrigin: entries of nodes the catalog does not know as
	// members (never joined, or reaped).
	UnknownOrigin uint64
	// AheadOfMember: entries of an epoch later than the one the node
	// announces in its membership.
	AheadOfMember uint64
	// BelowWatermark: entries at or below their origin's watermark for an
	// ID the catalog no longer holds: copies of writes deleted and reaped.
	BelowWatermark uint64
}

// DefaultMaxEpochSkew is how far ahead of this agent's clock an epoch may
// be. Epochs are nanoseconds since 1970 at an agent's start, and a uint64
// of them runs out in 2554: the bound keeps a forged or broken epoch from
// getting near that, so that no takeover can wrap. It is wide so that an
// agent whose clock is wrong by years still works; a forged epoch within
// it costs its victim only a takeover.
const DefaultMaxEpochSkew = 20 * 365 * 24 * time.Hour

// New returns an empty catalog for the agent named local, started in the
// given epoch (any value larger than the epochs of its previous runs; the
// agent uses its start time in nanoseconds).
func New(local string, epoch uint64) *Catalog {
	c := &Catalog{
		local:   local,
		origins: make(map[string]*origin),
		nodes:   make(map[string]*Node),
		byName:  make(map[string]map[key]*record),
		names:   make(map[string]uint64),
		index:   1,
		maxSkew: DefaultMaxEpochSkew,
	}
	c.origins[local] = newOrigin(epoch)
	c.resum(local)
	return c
}

// SetMaxEpochSkew sets how far ahead of the clock passed in (now) an
// epoch may be before it is refused.
func (c *Catalog) SetMaxEpochSkew(d time.Duration) { c.maxSkew = d }

// Stats returns what the catalog refused so far.
func (c *Catalog) Stats() Stats { return c.stats }

// LocalName is the node name of this agent.
func (c *Catalog) LocalName() string { return c.local }

// LocalEpoch is the epoch this agent writes its entries in. It grows when
// the cluster turns out to know this name under a later epoch.
func (c *Catalog) LocalEpoch() uint64 { return c.origins[c.local].epoch }

// Index is the catalog's change index: it grows with every change that a
// reader can see, and never goes back.
func (c *Catalog) Index() uint64 { return c.index }

// ServiceIndex is the index of the last change visible in the named
// service's instances. It never goes back and moves only when they
// change (or, for a name the catalog holds nothing of, when Reap forgets
// another name).
func (c *Catalog) ServiceIndex(name string) uint64 {
	if i, ok := c.names[name]; ok {
		return i
	}
	return c.namesFloor
}

// future reports whether an epoch is further ahead of now than allowed.
func (c *Catalog) future(epoch uint64, now time.Time) bool {
	limit := uint64(max(now.UnixNano(), 0)) + uint64(c.maxSkew)
	if limit < uint64(c.maxSkew) { // overflow: nothing is too far
		return false
	}
	return epoch > limit
}

func newOrigin(epoch uint64) *origin {
	return &origin{epoch: epoch, entries: make(map[entryKey]*record), checks: make(map[string]map[string]*record)}
}

// namesOf lists the names of the origin's live services that a change of
// the given check touches: the service it is bound to, or every service
// for a node check.
func (o *origin) namesOf(c Check) []string {
	if c.ServiceID != "" {
		if r := o.entries[entryKey{KindService, c.ServiceID}]; r != nil && !r.Deleted {
			return []string{r.Service.Name}
		}
		return nil
	}
	var names []string
	for k, r := range o.entries {
		if k.kind == KindService && !r.Deleted {
			names = append(names, r.Service.Name)
		}
	}
	return names
}

// indexRecord adds or drops a live record in the by-name or by-service
// indexes and the origin's content hash, and returns the service names
// whose view it touches.
func (c *Catalog) indexRecord(o *origin, r *record, add bool) []string {
	if r.Deleted {
		return nil
	}
	o.hash ^= r.hash
	if r.Kind == KindCheck {
		m := o.checks[r.Check.ServiceID]
		if add {
			if m == nil {
				m = make(map[string]*record)
				o.checks[r.Check.ServiceID] = m
			}
			m[r.Check.ID] = r
		} else {
			delete(m, r.Check.ID)
			if len(m) == 0 {
				delete(o.checks, r.Check.ServiceID)
			}
		}
		return o.namesOf(r.Check)
	}
	k := key{r.Origin, r.Service.ID}
	if add {
		m := c.byName[r.Service.Name]
		if m == nil {
			m = make(map[key]*record)
			c.byName[r.Service.Name] = m
		}
		m[k] = r
	} else {
		delete(c.byName[r.Service.Name], k)
		if len(c.byName[r.Service.Name]) == 0 {
			delete(c.byName, r.Service.Name)
		}
	}
	return []string{r.Service.Name}
}

// bump advances the index for a change that touches the given services.
func (c *Catalog) bump(names ...string) {
	c.index++
	for _, n := range names {
		c.names[n] = c.index
	}
}

// visible reports whether the named node's services are served: the local
// node always, others while memberlist holds them alive or suspect.
func (c *Catalog) visible(node string) bool {
	if node == c.local {
		return true
	}
	n := c.nodes[node]
	return n != nil && n.Serving()
}

// store puts e in place of whatever the origin held under its ID.
func (c *Catalog) store(o *origin, e Entry, now time.Time) *record {
	k := e.key()
	old := o.entries[k]
	r := &record{Entry: e, hash: entryHash(e), changed: now}
	var touched []string
	if old != nil {
		r.createIndex = old.createIndex
		touched = append(touched, c.indexRecord(o, old, false)...)
	}
	o.entries[k] = r
	o.changed = now
	touched = append(touched, c.indexRecord(o, r, true)...)
	if e.Version.Counter > o.counter {
		o.counter = e.Version.Counter
	}
	if !c.visible(e.Origin) {
		touched = nil // hidden: readers see no change
	}
	c.bump(touched...)
	if old == nil || old.Deleted {
		r.createIndex = c.index
	}
	r.modifyIndex = c.index
	return r
}

// remove drops a record without leaving a tombstone (epoch change, reaping,
// a completed resend) and returns the service names whose view it touches.
func (c *Catalog) remove(o *origin, r *record) (touched []string) {
	delete(o.entries, r.key())
	names := c.indexRecord(o, r, false)
	if !c.visible(r.Origin) {
		return nil
	}
	return names
}

// setEpoch moves a remote origin to the epoch its node announces: what it
// wrote in any other run is gone.
func (c *Catalog) setEpoch(name string, o *origin, epoch uint64) {
	if epoch == o.epoch {
		return
	}
	var touched []string
	for _, r := range o.entries {
		touched = append(touched, c.remove(o, r)...)
	}
	*o = origin{epoch: epoch, entries: o.entries, checks: o.checks, sum: o.sum}
	if len(touched) > 0 {
		c.bump(touched...)
	}
	c.resum(name)
}

// Put registers or replaces one of this agent's own services and returns
// the entry to gossip. An identical re-registration changes nothing and
// returns the stored entry with changed false.
func (c *Catalog) Put(s Service, now time.Time) (e Entry, changed bool, err error) {
	s = s.Normalize()
	if err := s.Validate(); err != nil {
		return Entry{}, false, err
	}
	o := c.origins[c.local]
	if r := o.entries[entryKey{KindService, s.ID}]; r != nil && !r.Deleted && equalService(r.Service, s) {
		return r.Entry, false, nil
	}
	e = Entry{Origin: c.local, Version: c.nextLocal(), Service: s}
	c.writeLocal(e, now)
	return e, true, nil
}

// nextLocal is the version of the agent's next write.
func (c *Catalog) nextLocal() Version {
	o := c.origins[c.local]
	return Version{o.epoch, o.counter + 1}
}

// writeLocal stores one of the agent's own writes: its counters have no
// gaps, so known follows counter.
func (c *Catalog) writeLocal(e Entry, now time.Time) {
	o := c.origins[c.local]
	c.store(o, e, now)
	o.known = o.counter
	c.resum(c.local)
}

// PutCheck records the state of one of this agent's own checks and
// returns the entry to gossip. An unchanged state changes nothing and
// returns the stored entry with changed false. The check's service need
// not be registered (yet): a check is shown with the service it names.
func (c *Catalog) PutCheck(ck Check, now time.Time) (e Entry, changed bool, err error) {
	if err := ck.Validate(); err != nil {
		return Entry{}, false, err
	}
	o := c.origins[c.local]
	if r := o.entries[entryKey{KindCheck, ck.ID}]; r != nil && !r.Deleted && r.Check == ck {
		return r.Entry, false, nil
	}
	e = Entry{Origin: c.local, Version: c.nextLocal(), Kind: KindCheck, Check: ck}
	c.writeLocal(e, now)
	return e, true, nil
}

// DeleteCheck removes one of this agent's own checks, leaving a tombstone
// to gossip. ok is false if there is no such check.
func (c *Catalog) DeleteCheck(id string, now time.Time) (e Entry, ok bool) {
	return c.deleteLocal(entryKey{KindCheck, id}, now)
}

func (c *Catalog) deleteLocal(k entryKey, now time.Time) (e Entry, ok bool) {
	o := c.origins[c.local]
	r := o.entries[k]
	if r == nil || r.Deleted {
		return Entry{}, false
	}
	e = r.Entry.tombstone(c.nextLocal())
	c.writeLocal(e, now)
	return e, true
}

// Delete deregisters one of this agent's own services, leaving a tombstone,
// and returns the tombstone to gossip. ok is false if no such service is
// registered.
func (c *Catalog) Delete(id string, now time.Time) (e Entry, ok bool) {
	return c.deleteLocal(entryKey{KindService, id}, now)
}

// Apply merges one entry received from another agent (gossip). It
// refuses, and counts, entries of nodes that are not members, of an epoch
// later than the one the node announces, or below their origin's
// watermark.
func (c *Catalog) Apply(e Entry, now time.Time) Changes {
	var ch Changes
	if e.Origin == c.local {
		o := c.origins[c.local]
		seen := e.Version.Epoch == o.epoch && e.Version.Counter <= o.counter
		ch.Fresh = c.own(e, now, &ch)
		ch.Dup = !ch.Fresh && seen
		return ch
	}
	o := c.admit(e.Origin, e.Version.Epoch)
	if o == nil || e.Version.Epoch < o.epoch {
		return ch
	}
	ch.Dup = o.covered(e.Version.Counter)
	ch.Fresh = !ch.Dup
	c.applyRemote(o, e, now, &ch)
	o.cover(e.Version.Counter, e.Version.Counter)
	c.resum(e.Origin)
	return ch
}

// admit returns the origin an entry or delta of the given remote node
// and epoch goes to; nil if it must be refused. Only the run a node
// announces in its membership is taken, so nothing but the node's own
// agent (through memberlist) can move a node to a new run: not an
// imposter's or a forger's gossip, not an old run's entries still
// circulating.
func (c *Catalog) admit(name string, epoch uint64) *origin {
	n := c.nodes[name]
	switch {
	case n == nil:
		c.stats.UnknownOrigin++
		return nil
	case epoch > n.Epoch:
		c.stats.AheadOfMember++
		return nil
	case epoch < n.Epoch:
		return nil // an earlier run's
	}
	o := c.getOrigin(name)
	c.setEpoch(name, o, epoch)
	return o
}

func (c *Catalog) getOrigin(name string) *origin {
	o := c.origins[name]
	if o == nil {
		o = newOrigin(0)
		c.origins[name] = o
	}
	return o
}

// applyRemote stores a remote entry of o's epoch if it is newer than what
// o holds under its ID. Two different writes at one version (two runs of
// one node that ended in one epoch) are ordered by their hashes, so that
// every agent keeps the same one.
func (c *Catalog) applyRemote(o *origin, e Entry, now time.Time, ch *Changes) {
	r := o.entries[e.key()]
	if r == nil && e.Version.Counter <= o.watermark {
		c.stats.BelowWatermark++
		return
	}
	if r != nil {
		if e.Version.Less(r.Version) {
			return
		}
		if e.Version == r.Version {
			if equalEntry(r.Entry, e) {
				r.unconfirmed = false
				return
			}
			if entryHash(e) < r.hash {
				r.unconfirmed = false
				return
			}
		}
	}
	e.Service = e.Service.Clone()
	c.store(o, e, now)
	ch.Accepted = append(ch.Accepted, e)
}

// own handles an entry of this agent's own name that came back from the
// cluster, and reports whether it was news. Only the agent writes its
// entries, so whatever the cluster holds of its current epoch must be
// what it holds itself.
func (c *Catalog) own(e Entry, now time.Time, ch *Changes) bool {
	o := c.origins[c.local]
	v := e.Version
	if v.Epoch != o.epoch || v.Counter > o.counter {
		return c.takeOver(v, now, ch)
	}
	// A counter of this epoch the agent has used: its own write coming
	// back, or the write of another run of this name that moved to the same
	// epoch (two runs can take over from the same earlier epoch), or an old
	// copy of a service deleted and reaped here. The second must lose
	// everywhere, so the agent writes its own state over it.
	r := o.entries[e.key()]
	switch {
	case r != nil && v.Less(r.Version):
		return false // its own later write wins already
	case r != nil && v == r.Version && equalEntry(r.Entry, e):
		return false // an echo
	case r == nil && v.Counter <= o.watermark:
		c.stats.BelowWatermark++
		return false // deleted and reaped here; every current copy agrees
	case r != nil:
		e = r.Entry
		e.Version = c.nextLocal()
	case !e.Deleted:
		e = e.tombstone(c.nextLocal())
	default:
		// A tombstone of something it does not hold: gone either way.
		return false
	}
	c.writeLocal(e, now)
	ch.Local = append(ch.Local, e)
	return true
}

// takeOver handles news of this agent's own name at a version it never
// wrote: a later epoch, or a later counter in its own epoch, is an earlier
// run of this node (whose clock was ahead, or that moved to the same epoch)
// still remembered by the cluster. The agent moves past that epoch and
// re-stamps its live services so they win everywhere. Versions at or
// below its own change nothing here, and nor does an epoch too far in the
// future (a forged one: taking it would bring the epoch near wrapping).
func (c *Catalog) takeOver(v Version, now time.Time, ch *Changes) bool {
	o := c.origins[c.local]
	if v.Epoch < o.epoch || v.Epoch == o.epoch && v.Counter <= o.counter {
		return false
	}
	if v.Epoch == math.MaxUint64 || c.future(v.Epoch+1, now) {
		c.stats.FutureEpoch++
		return false
	}
	o.epoch, o.counter, o.known, o.watermark = v.Epoch+1, 0, 0, 0
	for _, k := range sortedKeys(o) {
		r := o.entries[k]
		if r.Deleted {
			delete(o.entries, k)
			continue
		}
		o.counter++
		e := r.Entry
		e.Version = Version{o.epoch, o.counter}
		c.store(o, e, now)
		ch.Local = append(ch.Local, e)
	}
	o.known = o.counter
	c.resum(c.local)
	return true
}

// LocalEntries lists this agent's own entries, tombstones included, sorted
// by ID.
func (c *Catalog) LocalEntries() []Entry {
	return sortedEntries(c.origins[c.local])
}

// Entries lists every stored entry, tombstones included, sorted by origin
// and ID. It is the catalog's whole merge state, for tests and debugging.
func (c *Catalog) Entries() []Entry {
	names := make([]string, 0, len(c.origins))
	for n := range c.origins {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Entry
	for _, n := range names {
		out = append(out, sortedEntries(c.origins[n])...)
	}
	return out
}

// sortedKeys lists the origin's entry keys, services first, each kind by
// ID.
func sortedKeys(o *origin) []entryKey {
	keys := make([]entryKey, 0, len(o.entries))
	for k := range o.entries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	return keys
}

func sortedEntries(o *origin) []Entry {
	keys := sortedKeys(o)
	out := make([]Entry, 0, len(keys))
	for _, k := range keys {
		out = append(out, o.entries[k].Entry)
	}
	return out
}

// Reap forgets tombstones older than tombstoneTTL and everything of nodes
// that have been dead, left or unknown for longer than nodeTTL (the node
// leaves Nodes, which moves the index; it changes nothing else a reader
// sees), and the indexes of service names that have no instances left.
// A reaped tombstone raises its origin's watermark, so that no old copy of
// what it deleted can come back. It returns how many entries it dropped.
func (c *Catalog) Reap(now time.Time, tombstoneTTL, nodeTTL time.Duration) int {
	dropped, forgot := 0, false
	for name, o := range c.origins {
		if name != c.local && c.gone(name, o, now, nodeTTL) {
			for _, r := range o.entries {
				c.remove(o, r)
				dropped++
			}
			if _, known := c.nodes[name]; known {
				delete(c.nodes, name)
				forgot = true
			}
			c.summary ^= o.sum
			c.buckets[BucketOf(name)] ^= o.sum
			delete(c.origins, name)
			continue
		}
		for _, r := range o.entries {
			// A tombstone above known may stand for writes this catalog
			// has not seen yet; it stays until they arrive.
			if r.Deleted && now.Sub(r.changed) > tombstoneTTL && r.Version.Counter <= o.known {
				c.remove(o, r)
				o.watermark = max(o.watermark, r.Version.Counter)
				dropped++
			}
		}
	}
	for name, i := range c.names {
		if len(c.byName[name]) == 0 {
			delete(c.names, name)
			c.namesFloor = max(c.namesFloor, i)
		}
	}
	if forgot {
		c.bump()
	}
	return dropped
}

// gone reports whether a remote origin's node has been dead, left or
// unknown, and the origin unchanged, for longer than nodeTTL.
func (c *Catalog) gone(name string, o *origin, now time.Time, nodeTTL time.Duration) bool {
	n := c.nodes[name]
	if n != nil && n.Status != StatusDead && n.Status != StatusLeft {
		return false
	}
	return (n == nil || now.Sub(n.StatusSince) > nodeTTL) && c.allOlder(o, now, nodeTTL)
}

func (c *Catalog) allOlder(o *origin, now time.Time, d time.Duration) bool {
	for _, r := range o.entries {
		if now.Sub(r.changed) <= d {
			return false
		}
	}
	return true
}

// equalEntry reports whether two entries hold the same write (versions
// aside).
func equalEntry(a, b Entry) bool {
	if a.Deleted != b.Deleted || a.Kind != b.Kind || a.Ext != b.Ext {
		return false
	}
	if a.Kind == KindCheck {
		return a.Check == b.Check
	}
	return equalService(a.Service, b.Service)
}

func equalService(a, b Service) bool {
	if a.ID != b.ID || a.Name != b.Name || a.Address != b.Address || a.Port != b.Port ||
		a.Weights != b.Weights || len(a.Tags) != len(b.Tags) || len(a.Meta) != len(b.Meta) {
		return false
	}
	for i := range a.Tags {
		if a.Tags[i] != b.Tags[i] {
			return false
		}
	}
	for k, v := range a.Meta {
		if w, ok := b.Meta[k]; !ok || w != v {
			return false
		}
	}
	return true
}
