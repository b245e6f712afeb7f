package catalog

import (
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
// both count in the origin's one version sequence.
type Entry struct {
	Origin  string
	Version Version
	Deleted bool
	Kind    Kind
	Service Service // KindService; a tombstone carries only ID and Name
	Check   Check   // KindCheck; a tombstone carries only ID and ServiceID
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

// OriginState is what a snapshot says of one origin: the epoch it is in and
// the highest counter the sender has seen in that epoch.
type OriginState struct {
	Name    string
	Epoch   uint64
	Counter uint64
}

// Snapshot is a full copy of a catalog's entries, tombstones included, as
// sent on push/pull. From names the sending node: its own section is
// complete, so entries of it that the receiver holds and the snapshot lacks
// are gone (their tombstones were reaped).
type Snapshot struct {
	From    string
	Origins []OriginState
	Entries []Entry
}

// Changes is what a merge did.
type Changes struct {
	// Accepted are remote entries that were newer than what the catalog
	// held and are now stored; the gossip layer re-broadcasts them.
	Accepted []Entry
	// Local are this agent's own entries, re-stamped because the cluster
	// knew this node name under a later epoch; they must be broadcast.
	Local []Entry
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
	createIndex uint64
	modifyIndex uint64
	changed     time.Time // local time of the last change; tombstones age from it
}

type origin struct {
	epoch   uint64
	counter uint64 // highest counter seen in epoch; never decreases
	entries map[entryKey]*record
	// checks indexes the live check records by service ID ("" for node
	// checks) and check ID.
	checks map[string]map[string]*record
	// reaped is when Reap dropped the entries of this gone node, zero
	// otherwise. For another nodeTTL the origin refuses copies of its
	// epoch that peers which have not reaped yet still push, or they would
	// bounce between peers forever, each reaping them in turn.
	reaped time.Time
}

// Catalog holds every origin's entries and the liveness of every node.
type Catalog struct {
	local   string
	origins map[string]*origin
	nodes   map[string]*Node
	byName  map[string]map[key]*record // live entries by service name
	index   uint64
	names   map[string]uint64 // service name → index of its last visible change
}

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
	}
	c.origins[local] = newOrigin(epoch)
	return c
}

// LocalName is the node name of this agent.
func (c *Catalog) LocalName() string { return c.local }

// LocalEpoch is the epoch this agent writes its entries in. It grows when
// the cluster turns out to know this name under a later epoch.
func (c *Catalog) LocalEpoch() uint64 { return c.origins[c.local].epoch }

// Index is the catalog's change index: it grows with every change that a
// reader can see, and never goes back.
func (c *Catalog) Index() uint64 { return c.index }

// ServiceIndex is the index of the last change visible in the named
// service's instances (or the catalog index for a name never seen, which is
// never smaller).
func (c *Catalog) ServiceIndex(name string) uint64 {
	if i, ok := c.names[name]; ok {
		return i
	}
	return c.index
}

func (c *Catalog) getOrigin(name string) *origin {
	o := c.origins[name]
	if o == nil {
		o = newOrigin(0)
		c.origins[name] = o
	}
	return o
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

// index adds or drops a live record in the by-name or by-service indexes
// and returns the service names whose view it touches.
func (c *Catalog) indexRecord(o *origin, r *record, add bool) []string {
	if r.Deleted {
		return nil
	}
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
	return n != nil && (n.Status == StatusAlive || n.Status == StatusSuspect)
}

// store puts r in place of whatever the origin held under its ID.
func (c *Catalog) store(o *origin, e Entry, now time.Time) *record {
	k := e.key()
	old := o.entries[k]
	r := &record{Entry: e, changed: now}
	var touched []string
	if old != nil {
		r.createIndex = old.createIndex
		touched = append(touched, c.indexRecord(o, old, false)...)
	}
	o.entries[k] = r
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

// remove drops a record without leaving a tombstone (epoch change, reaping).
func (c *Catalog) remove(o *origin, r *record) (touched []string) {
	delete(o.entries, r.key())
	names := c.indexRecord(o, r, false)
	if !c.visible(r.Origin) {
		return nil
	}
	return names
}

// advanceEpoch moves a remote origin to a later epoch: everything it wrote
// before is from a previous run and is dropped.
func (c *Catalog) advanceEpoch(name string, o *origin, epoch uint64) {
	if epoch <= o.epoch {
		return
	}
	o.reaped = time.Time{} // a new run of a reaped node
	var touched []string
	for _, r := range o.entries {
		touched = append(touched, c.remove(o, r)...)
	}
	o.epoch, o.counter = epoch, 0
	if len(touched) > 0 {
		c.bump(touched...)
	}
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
	e = Entry{Origin: c.local, Version: Version{o.epoch, o.counter + 1}, Service: s}
	c.store(o, e, now)
	return e, true, nil
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
	e = Entry{Origin: c.local, Version: Version{o.epoch, o.counter + 1}, Kind: KindCheck, Check: ck}
	c.store(o, e, now)
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
	e = r.Entry.tombstone(Version{o.epoch, o.counter + 1})
	c.store(o, e, now)
	return e, true
}

// Delete deregisters one of this agent's own services, leaving a tombstone,
// and returns the tombstone to gossip. ok is false if no such service is
// registered.
func (c *Catalog) Delete(id string, now time.Time) (e Entry, ok bool) {
	return c.deleteLocal(entryKey{KindService, id}, now)
}

// Apply merges one entry received from another agent.
func (c *Catalog) Apply(e Entry, now time.Time) Changes {
	var ch Changes
	c.apply(e, now, &ch)
	return ch
}

func (c *Catalog) apply(e Entry, now time.Time, ch *Changes) {
	if e.Origin == c.local {
		c.own(e, now, ch)
		return
	}
	o := c.getOrigin(e.Origin)
	if e.Version.Epoch < o.epoch || e.Version.Epoch == o.epoch && !o.reaped.IsZero() {
		return
	}
	c.advanceEpoch(e.Origin, o, e.Version.Epoch)
	if r := o.entries[e.key()]; r != nil && !r.Version.Less(e.Version) {
		return
	}
	e.Service = e.Service.Clone()
	c.store(o, e, now)
	ch.Accepted = append(ch.Accepted, e)
}

// own handles an entry of this agent's own name that came back from the
// cluster. Only the agent writes its entries, so whatever the cluster
// holds of its current epoch must be what it holds itself.
func (c *Catalog) own(e Entry, now time.Time, ch *Changes) {
	o := c.origins[c.local]
	v := e.Version
	if v.Epoch != o.epoch || v.Counter > o.counter {
		c.takeOver(v, now, ch)
		return
	}
	// A counter of this epoch the agent has used: its own write coming
	// back, or the write of another run of this name that moved to the same
	// epoch (two runs can take over from the same earlier epoch), or an old
	// copy of a service deleted and reaped here. The last two must lose
	// everywhere, so the agent writes its own state over them. This relies
	// on the gossip codec carrying a service unchanged, as it does.
	r := o.entries[e.key()]
	switch {
	case r != nil && v.Less(r.Version):
		return // its own later write wins already
	case r != nil && v == r.Version && equalEntry(r.Entry, e):
		return // an echo
	case r != nil:
		e = r.Entry
		e.Version = Version{o.epoch, o.counter + 1}
	case !e.Deleted:
		e = e.tombstone(Version{o.epoch, o.counter + 1})
	default:
		// A tombstone of a service it does not hold: gone either way. It
		// may be its own, reaped here, so answering it could go on for
		// ever; another run's is reaped after the TTL.
		return
	}
	c.store(o, e, now)
	ch.Local = append(ch.Local, e)
}

// takeOver handles news of this agent's own name at a version it never
// wrote: a later epoch, or a later counter in its own epoch, is an earlier
// run of this node (whose clock was ahead, or that moved to the same epoch)
// still remembered by the cluster. The agent moves past that epoch and
// re-stamps its live services so they win everywhere. Versions at or
// below its own change nothing here.
func (c *Catalog) takeOver(v Version, now time.Time, ch *Changes) {
	o := c.origins[c.local]
	if v.Epoch < o.epoch || v.Epoch == o.epoch && v.Counter <= o.counter {
		return
	}
	o.epoch, o.counter = v.Epoch+1, 0
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
}

// Merge folds in a snapshot from another agent (push/pull).
func (c *Catalog) Merge(s Snapshot, now time.Time) Changes {
	var ch Changes
	for _, os := range s.Origins {
		if os.Name == c.local {
			c.takeOver(Version{os.Epoch, os.Counter}, now, &ch)
			continue
		}
		c.advanceEpoch(os.Name, c.getOrigin(os.Name), os.Epoch)
	}
	for _, e := range s.Entries {
		c.apply(e, now, &ch)
	}
	c.sweep(s, now, &ch)
	return ch
}

// sweep applies the sender's authority over its own entries: any entry of
// the sender's current epoch that the receiver holds as live, at or below
// the sender's counter, and that the sender no longer lists, was deleted
// and its tombstone reaped. Without this an old copy could outlive its
// tombstone on a node that was away longer than the tombstone TTL.
func (c *Catalog) sweep(s Snapshot, now time.Time, ch *Changes) {
	if s.From == "" || s.From == c.local {
		return
	}
	var st *OriginState
	for i := range s.Origins {
		if s.Origins[i].Name == s.From {
			st = &s.Origins[i]
		}
	}
	o := c.origins[s.From]
	if st == nil || o == nil || o.epoch != st.Epoch {
		return
	}
	listed := make(map[entryKey]bool)
	for _, e := range s.Entries {
		if e.Origin == s.From {
			listed[e.key()] = true
		}
	}
	for _, k := range sortedKeys(o) {
		r := o.entries[k]
		if r.Deleted || listed[k] || r.Version.Counter > st.Counter {
			continue
		}
		e := r.Entry.tombstone(Version{st.Epoch, st.Counter})
		if r.Version.Counter == st.Counter {
			// Cannot happen for an honest sender (its counter names the
			// write it lists); keep the live copy rather than tie.
			continue
		}
		c.store(o, e, now)
		ch.Accepted = append(ch.Accepted, e)
	}
}

// Snapshot copies every entry, tombstones included, and the state of every
// origin, in a deterministic order.
func (c *Catalog) Snapshot() Snapshot {
	s := Snapshot{From: c.local}
	names := make([]string, 0, len(c.origins))
	for n := range c.origins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		o := c.origins[n]
		if !o.reaped.IsZero() {
			continue // a gone node, forgotten but for its epoch
		}
		s.Origins = append(s.Origins, OriginState{Name: n, Epoch: o.epoch, Counter: o.counter})
		s.Entries = append(s.Entries, sortedEntries(o)...)
	}
	return s
}

// LocalEntries lists this agent's own entries, tombstones included, sorted
// by ID.
func (c *Catalog) LocalEntries() []Entry {
	return sortedEntries(c.origins[c.local])
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
// sees). It returns how many entries it dropped.
func (c *Catalog) Reap(now time.Time, tombstoneTTL, nodeTTL time.Duration) int {
	dropped, forgot := 0, false
	for name, o := range c.origins {
		if name != c.local && c.gone(name, o, now, nodeTTL) {
			had := len(o.entries) > 0
			for _, r := range o.entries {
				c.remove(o, r)
				dropped++
			}
			_, known := c.nodes[name]
			if known {
				delete(c.nodes, name)
				forgot = true
			}
			switch {
			case o.reaped.IsZero() && (had || known):
				o.reaped = now
			case o.reaped.IsZero() || now.Sub(o.reaped) > nodeTTL:
				delete(c.origins, name)
			}
			continue
		}
		for _, r := range o.entries {
			if r.Deleted && now.Sub(r.changed) > tombstoneTTL {
				c.remove(o, r)
				dropped++
			}
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
	if a.Deleted != b.Deleted || a.Kind != b.Kind {
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
