package catalog

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
	"sort"
	"time"
)

// Anti-entropy by per-origin versions, as in Scuttlebutt (van Renesse et
// al., "Efficient Reconciliation and Flow Control for Anti-Entropy
// Protocols"): two agents compare, per origin, the epoch and the counter
// up to which they hold every write (Digest); each sends the other only
// the entries above the other's counter (Delta), so the cost follows what
// differs, not the size of the catalog. A content hash per origin catches
// two catalogs that claim the same versions but hold different writes.
//
// A peer that is behind an origin's watermark (it has not seen tombstones
// that were since reaped) or on an earlier epoch gets the origin's whole
// section instead (a full delta): it marks what it holds, and drops what
// the resend did not confirm once the resend has covered every counter.

// OriginDigest is what a catalog says of one origin in an exchange.
type OriginDigest struct {
	Origin string
	Epoch  uint64
	// Known is the counter up to which every write of Epoch is held.
	Known     uint64
	Watermark uint64
	// Hash is the XOR of the hashes of the origin's live entries
	// (entryHash: every field and the version).
	Hash uint64
	// Entries counts the live entries (not exchanged; for display).
	Entries int
	// Served is set when the node's services are served here (it is alive
	// or suspect in this agent's view, or is this agent).
	Served bool
}

// Digest lists every origin the catalog holds state of, sorted by name:
// what a peer needs to tell what this catalog lacks and what it has that
// the peer lacks. Origins of nodes that never wrote anything are left out.
func (c *Catalog) Digest() []OriginDigest {
	out := make([]OriginDigest, 0, len(c.origins))
	for name, o := range c.origins {
		if o.known == 0 && len(o.entries) == 0 {
			continue
		}
		out = append(out, c.originDigest(name, o))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin < out[j].Origin })
	return out
}

// OriginDigest returns what the catalog says of one origin; false if it
// holds nothing of it.
func (c *Catalog) OriginDigest(name string) (OriginDigest, bool) {
	o := c.origins[name]
	if o == nil || o.known == 0 && len(o.entries) == 0 {
		return OriginDigest{}, false
	}
	return c.originDigest(name, o), true
}

func (c *Catalog) originDigest(name string, o *origin) OriginDigest {
	live := 0
	for _, r := range o.entries {
		if !r.Deleted {
			live++
		}
	}
	return OriginDigest{Origin: name, Epoch: o.epoch, Known: o.known, Watermark: o.watermark,
		Hash: o.hash, Entries: live, Served: c.visible(name)}
}

// Summary sums up the served part of the catalog in 8 bytes: equal
// summaries mean (but for a hash collision) that two agents serve the
// same writes of the same origins. It is the XOR of SummaryOf over the
// served origins, kept current as the catalog changes.
func (c *Catalog) Summary() uint64 { return c.summary }

// SummaryBuckets is how many parts Buckets splits the summary into.
const SummaryBuckets = 64

// BucketOf is the summary bucket of an origin.
func BucketOf(origin string) int {
	h := fnv.New32a()
	h.Write([]byte(origin))
	return int(h.Sum32() % SummaryBuckets)
}

// Buckets is the summary split by the origins' buckets: two agents whose
// summaries differ compare these first, then exchange the digests of the
// buckets that differ only, a few origins' worth rather than all.
func (c *Catalog) Buckets() [SummaryBuckets]uint64 { return c.buckets }

// DigestIn is Digest restricted to the origins of the given buckets.
func (c *Catalog) DigestIn(bs []int) []OriginDigest {
	scope := InBuckets(bs)
	var out []OriginDigest
	for name, o := range c.origins {
		if (o.known > 0 || len(o.entries) > 0) && scope(name) {
			out = append(out, c.originDigest(name, o))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin < out[j].Origin })
	return out
}

// SummaryOf is one origin's share of a Summary.
func SummaryOf(d OriginDigest) uint64 {
	h := fnv.New64a()
	h.Write([]byte(d.Origin))
	var b [24]byte
	binary.BigEndian.PutUint64(b[0:], d.Epoch)
	binary.BigEndian.PutUint64(b[8:], d.Known)
	binary.BigEndian.PutUint64(b[16:], d.Hash)
	h.Write(b[:])
	return h.Sum64()
}

// FormatDigest writes a digest or summary as 16 hex digits.
func FormatDigest(d uint64) string {
	const hexDigits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[d&0xf]
		d >>= 4
	}
	return string(b[:])
}

// resum recomputes an origin's share of the summary after it changed.
func (c *Catalog) resum(name string) {
	o := c.origins[name]
	if o == nil {
		return
	}
	var s uint64
	if c.visible(name) && (o.known > 0 || len(o.entries) > 0) {
		s = SummaryOf(OriginDigest{Origin: name, Epoch: o.epoch, Known: o.known, Hash: o.hash})
	}
	c.summary ^= o.sum ^ s
	c.buckets[BucketOf(name)] ^= o.sum ^ s
	o.sum = s
}

// Want is an agent's state of one origin, as sent to a peer that is ahead
// of it: "I hold Origin up to (Epoch, Known); send what is newer". Full
// asks for the whole section (the two hold different writes at the same
// versions).
type Want struct {
	Origin string
	Epoch  uint64
	Known  uint64
	Full   bool
}

// Scope says which origins a digest speaks for: an origin in scope that
// the digest does not list is one the peer lacks. nil is every origin (a
// whole digest).
type Scope func(origin string) bool

// Listed is the scope of a digest that lists only some origins on
// purpose: the others are not taken for lacking.
func Listed(ds []OriginDigest) Scope {
	m := make(map[string]bool, len(ds))
	for _, d := range ds {
		m[d.Origin] = true
	}
	return func(o string) bool { return m[o] }
}

// InBuckets is the scope of a digest of the origins of some summary
// buckets (see Buckets).
func InBuckets(bs []int) Scope {
	var in [SummaryBuckets]bool
	for _, b := range bs {
		if b >= 0 && b < SummaryBuckets {
			in[b] = true
		}
	}
	return func(o string) bool { return in[BucketOf(o)] }
}

// Plan compares a peer's digest with this catalog. send lists, as the
// peer's Wants, the origins the peer is behind on (or lacks) that this
// catalog can bring up to date (see Deltas); want lists this catalog's own
// Wants for the origins the peer is ahead on. scope says which origins the
// digest speaks for (nil: all). A digest that shows this agent's own name
// at a later version than it wrote makes it take over (ch.Local must be
// broadcast).
func (c *Catalog) Plan(peer []OriginDigest, scope Scope, now time.Time) (send, want []Want, ch Changes) {
	theirs := make(map[string]bool, len(peer))
	for _, p := range peer {
		theirs[p.Origin] = true
		if p.Origin == c.local {
			c.takeOver(Version{p.Epoch, p.Known}, now, &ch)
		}
		o := c.origins[p.Origin]
		if o != nil && (o.known > 0 || len(o.entries) > 0) {
			switch {
			case p.Epoch < o.epoch:
				send = append(send, Want{Origin: p.Origin, Epoch: p.Epoch, Known: p.Known})
				continue
			case p.Epoch == o.epoch && p.Known < o.known:
				send = append(send, Want{Origin: p.Origin, Epoch: p.Epoch, Known: p.Known})
				continue
			case p.Epoch == o.epoch && p.Known == o.known && p.Hash != o.hash:
				send = append(send, Want{Origin: p.Origin, Epoch: p.Epoch, Known: p.Known, Full: true})
				want = append(want, Want{Origin: p.Origin, Epoch: o.epoch, Known: o.known, Full: true})
				continue
			}
		}
		if p.Origin == c.local {
			continue
		}
		// The peer is ahead. Only a member's announced run is taken.
		if n := c.nodes[p.Origin]; n == nil || p.Epoch > n.Epoch {
			continue
		}
		switch {
		case o == nil || p.Epoch > o.epoch:
			want = append(want, Want{Origin: p.Origin})
		case p.Known > o.known:
			want = append(want, Want{Origin: p.Origin, Epoch: o.epoch, Known: o.known})
		}
	}
	for name, o := range c.origins {
		if !theirs[name] && (o.known > 0 || len(o.entries) > 0) && (scope == nil || scope(name)) {
			send = append(send, Want{Origin: name})
		}
	}
	sort.Slice(send, func(i, j int) bool { return send[i].Origin < send[j].Origin })
	return send, want, ch
}

// Delta is a run of one origin's writes sent to a peer that is behind:
// every entry of Epoch the sender holds with a counter in (From, To], in
// counter order, tombstones included. The counters in between belong to
// writes made obsolete by later ones, so the receiver holds everything up
// to To once it has applied the delta. A Full delta is part of a resend of
// the whole section, which completes when the receiver has had every
// counter up to Upto from Full deltas.
type Delta struct {
	Origin    string
	Epoch     uint64
	From, To  uint64
	Watermark uint64
	Full      bool
	Upto      uint64
	Entries   []Entry
}

// deltaOverhead bounds what a delta costs on the wire besides its entries.
const deltaOverhead = 64 + MaxNameLen

// Deltas builds what a peer at w needs of w.Origin, split into deltas of
// at most budget encoded bytes each (EncodedSizeBound; at least one entry
// each), in counter order. It returns nil if this catalog has nothing
// newer.
func (c *Catalog) Deltas(w Want, budget int) []Delta {
	o := c.origins[w.Origin]
	if o == nil || o.known == 0 && len(o.entries) == 0 {
		return nil
	}
	full := w.Full || w.Epoch != o.epoch || w.Known < o.watermark
	if !full && w.Known >= o.known {
		return nil
	}
	from := w.Known
	if full {
		from = 0
	}
	var rs []*record
	for _, r := range o.entries {
		if r.Version.Counter > from {
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, func(a, b *record) int {
		if a.Version.Counter < b.Version.Counter {
			return -1
		}
		if a.Version.Counter > b.Version.Counter {
			return 1
		}
		return 0
	})
	// A chunk claims the run up to its last entry, the last chunk the
	// run up to known. Entries held above known (arrived out of order)
	// travel too, but no run beyond known is claimed.
	var out []Delta
	d := Delta{Origin: w.Origin, Epoch: o.epoch, From: from, Watermark: o.watermark, Full: full, Upto: o.known}
	size := deltaOverhead
	for _, r := range rs {
		n := EntrySizeBound(r.Entry)
		if len(d.Entries) > 0 && size+n > budget {
			d.To = max(d.From, min(d.Entries[len(d.Entries)-1].Version.Counter, o.known))
			out = append(out, d)
			d = Delta{Origin: w.Origin, Epoch: o.epoch, From: d.To, Watermark: o.watermark, Full: full, Upto: o.known}
			size = deltaOverhead
		}
		d.Entries = append(d.Entries, r.Entry)
		size += n
	}
	d.To = max(d.From, o.known)
	return append(out, d)
}

// EntrySizeBound bounds the bytes an entry takes on the wire.
func EntrySizeBound(e Entry) int {
	if e.Kind == KindCheck {
		return CheckEncodedSizeBound(e.Origin, e.Check) + len(e.Ext) + 4
	}
	return EncodedSizeBound(e.Origin, e.Service) + len(e.Ext) + 4
}

// ApplyDelta merges a delta from a peer. Entries of the delta that are
// not of its origin and epoch, or outside its run, are ignored; so is a
// delta of a node that is not a member or of an epoch beyond the one the
// node announces (counted in Stats).
func (c *Catalog) ApplyDelta(d Delta, now time.Time) Changes {
	var ch Changes
	if d.Origin == c.local {
		// Peers hold nothing of this agent that it does not; what they
		// hold at later versions is an earlier run it takes over from.
		if d.Epoch != c.LocalEpoch() || d.To > c.origins[c.local].counter {
			c.takeOver(Version{d.Epoch, d.To}, now, &ch)
		}
		for _, e := range d.Entries {
			if e.Origin == d.Origin && e.Version.Epoch == d.Epoch {
				c.own(e, now, &ch)
			}
		}
		return ch
	}
	if d.To < d.From {
		return ch
	}
	o := c.admit(d.Origin, d.Epoch)
	if o == nil || d.Epoch < o.epoch {
		return ch
	}
	if d.Full {
		c.startResync(o, d)
	}
	for _, e := range d.Entries {
		if e.Origin != d.Origin || e.Version.Epoch != d.Epoch || e.Version.Counter <= d.From {
			continue
		}
		c.applyRemote(o, e, now, &ch)
		o.cover(e.Version.Counter, e.Version.Counter)
		if d.Full {
			o.resynced = addSpan(o.resynced, span{e.Version.Counter, e.Version.Counter})
		}
	}
	if d.To > d.From {
		o.cover(d.From+1, d.To)
		if d.Full {
			o.resynced = addSpan(o.resynced, span{d.From + 1, d.To})
		}
	}
	if !d.Full && o.known >= d.Watermark {
		o.watermark = max(o.watermark, d.Watermark)
	}
	c.finishResync(d.Origin, o)
	c.resum(d.Origin)
	return ch
}

// startResync begins (or widens) a full resend of o: everything held now
// is marked unconfirmed.
func (c *Catalog) startResync(o *origin, d Delta) {
	if o.resync == 0 {
		for _, r := range o.entries {
			r.unconfirmed = true
		}
		o.resynced = nil
	}
	o.resync = max(o.resync, d.Upto, 1)
	o.resyncW = max(o.resyncW, d.Watermark)
}

// finishResync completes a full resend once its chunks covered every
// counter up to its target: what it did not confirm at or below the target
// is gone at the sender, deleted and reaped, and is dropped here too.
func (c *Catalog) finishResync(name string, o *origin) {
	if o.resync == 0 || len(o.resynced) == 0 || o.resynced[0].lo > 1 || o.resynced[0].hi < o.resync {
		return
	}
	var touched []string
	for _, r := range o.entries {
		if r.unconfirmed && r.Version.Counter <= o.resync {
			touched = append(touched, c.remove(o, r)...)
			continue
		}
		r.unconfirmed = false
	}
	if len(touched) > 0 {
		c.bump(touched...)
	}
	o.cover(1, o.resync)
	o.watermark = max(o.watermark, min(o.resyncW, o.known))
	o.resync, o.resyncW, o.resynced = 0, 0, nil
}

// covered reports whether a counter of o's epoch has been seen.
func (o *origin) covered(n uint64) bool {
	if n <= o.known {
		return true
	}
	i := sort.Search(len(o.seen), func(i int) bool { return o.seen[i].hi >= n })
	return i < len(o.seen) && o.seen[i].lo <= n
}

// cover records counters lo…hi as seen and moves known over every run
// that now joins it.
func (o *origin) cover(lo, hi uint64) {
	if hi <= o.known || lo > hi {
		return
	}
	lo = max(lo, o.known+1)
	o.seen = addSpan(o.seen, span{lo, hi})
	for len(o.seen) > 0 && o.seen[0].lo <= o.known+1 {
		o.known = max(o.known, o.seen[0].hi)
		o.seen = o.seen[1:]
	}
	if len(o.seen) > maxSpans {
		o.seen = o.seen[:maxSpans]
	}
	if o.known > o.counter {
		o.counter = o.known
	}
	if len(o.seen) > 0 {
		o.counter = max(o.counter, o.seen[len(o.seen)-1].hi)
	}
}

// addSpan merges s into sorted, disjoint, non-adjacent spans.
func addSpan(spans []span, s span) []span {
	i := sort.Search(len(spans), func(i int) bool { return spans[i].hi+1 >= s.lo })
	j := i
	for j < len(spans) && spans[j].lo <= s.hi+1 {
		s.lo = min(s.lo, spans[j].lo)
		s.hi = max(s.hi, spans[j].hi)
		j++
	}
	if i == j {
		spans = append(spans, span{})
		copy(spans[i+1:], spans[i:])
		spans[i] = s
		return spans
	}
	spans[i] = s
	return append(spans[:i+1], spans[j:]...)
}

// Known reports, for a remote origin, the epoch and the counter up to
// which this catalog holds every write, and whether it holds anything of
// the origin; a lazy announcement of (origin, epoch, counter) is news if
// the epoch is later or the counter above known and not seen.
func (c *Catalog) Known(name string) (epoch, known uint64, ok bool) {
	o := c.origins[name]
	if o == nil {
		return 0, 0, false
	}
	return o.epoch, o.known, true
}

// Changed is when the catalog last stored a write of an origin (the
// local clock passed to the write); zero if never.
func (c *Catalog) Changed(name string) time.Time {
	if o := c.origins[name]; o != nil {
		return o.changed
	}
	return time.Time{}
}

// Has reports whether the catalog has seen the write of an origin at a
// version (or an origin's later epoch).
func (c *Catalog) Has(name string, v Version) bool {
	o := c.origins[name]
	if o == nil {
		return false
	}
	if v.Epoch != o.epoch {
		return v.Epoch < o.epoch
	}
	return o.covered(v.Counter)
}

// entryHash hashes every field of an entry and its version, services'
// meta in key order, so equal writes hash equal on every agent.
func entryHash(e Entry) uint64 {
	h := fnv.New64a()
	var b [8]byte
	w := func(s string) {
		binary.BigEndian.PutUint32(b[:4], uint32(len(s)))
		h.Write(b[:4])
		h.Write([]byte(s))
	}
	n := func(v uint64) {
		binary.BigEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	w(e.Origin)
	n(e.Version.Epoch)
	n(e.Version.Counter)
	flags := uint64(e.Kind) << 1
	if e.Deleted {
		flags |= 1
	}
	n(flags)
	if e.Kind == KindCheck {
		ck := e.Check
		w(ck.ID)
		w(ck.ServiceID)
		w(ck.Name)
		w(ck.Type)
		n(uint64(ck.Status))
		if ck.Damped {
			n(1)
		} else {
			n(0)
		}
		w(ck.Notes)
		w(ck.Output)
	} else {
		s := e.Service
		w(s.ID)
		w(s.Name)
		w(s.Address)
		n(uint64(s.Port))
		n(uint64(s.Weights.Passing))
		n(uint64(s.Weights.Warning))
		n(uint64(len(s.Tags)))
		for _, t := range s.Tags {
			w(t)
		}
		n(uint64(len(s.Meta)))
		keys := make([]string, 0, len(s.Meta))
		for k := range s.Meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			w(k)
			w(s.Meta[k])
		}
	}
	w(e.Ext)
	return h.Sum64()
}
