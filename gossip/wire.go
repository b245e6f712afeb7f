package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/gossip/plumtree"
)

// The wire format of Shoal's own messages (memberlist user messages, over
// UDP or TCP, and the push/pull state):
//
//	magic 'S', version, sender node name, then records
//	record: type (uvarint), length (uvarint), that many bytes
//
// version is the protocol version the sender speaks with this receiver:
// the highest both announce (see NodeMeta). A receiver skips records of
// types it does not know, so a later version can add records without
// splitting a cluster in the middle of an upgrade, and it keeps the bytes
// that follow the fields it knows in an entry (catalog.Entry.Ext), so that
// what a later version adds to an entry travels on through older agents
// intact.
//
// Protocol versions:
//   - 2: whole-catalog push/pull, relayed entries (refused since 3)
//   - 3: per-origin digests and deltas, epidemic broadcast trees
const (
	// ProtocolMin and ProtocolMax are the protocol versions this agent
	// speaks.
	ProtocolMin = 3
	ProtocolMax = 3

	wireMagic = 'S'
)

// Record types.
const (
	recEntry      = 1 // one write pushed along a broadcast tree
	recIHave      = 2 // "I have origin up to (epoch, counter)"
	recPrune      = 3 // stop pushing an origin's writes to me
	recWant       = 4 // "I hold origin up to (epoch, known): send what is newer"
	recDelta      = 5 // a run of one origin's writes
	recDigest     = 6 // per-origin versions, for anti-entropy
	recLeave      = 7 // a node leaves gracefully
	recSummaryReq = 8 // "what is your summary?" (convergence)
	recSummary    = 9 // the answer
	// recReset: the sender's neighbours changed; push it every origin's
	// writes again (its trees form anew).
	recReset = 10
	// recRelay: a write the sender learned by an exchange, passed on along
	// the trees; unlike recEntry a duplicate prunes nothing.
	recRelay = 11
	// recBuckets: the sender's summary by bucket (catalog.Buckets); the
	// receiver answers with the digest of the buckets that differ.
	recBuckets = 12
	// recKeyReq: a keyring operation (gossip/keyring.go); recKeyResp is
	// the answer. Both may grow: bytes after the fields known are ignored.
	recKeyReq  = 13
	recKeyResp = 14
)

// Decoding limits: a message that claims more than these is refused before
// anything is allocated for it.
const (
	maxString  = 1 << 16
	maxTags    = catalog.MaxTags
	maxMeta    = catalog.MaxMetaPairs
	maxRecords = 1 << 20
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed gossip message")

// Want flags.
const (
	wantFull  = 1 // the whole section: the two hold different writes at equal versions
	wantGraft = 2 // also a Plumtree graft: push this origin's writes to me again
	// wantSettled: skip the origin if it changed within the last second
	// (the change is most likely still on its way along the trees).
	wantSettled = 4
)

// Want is a decoded want record.
type Want struct {
	catalog.Want
	Graft, Settled bool
}

// Leave is a node's announcement of its graceful departure, valid for the
// run (epoch) and refutation generation it names (see NodeMeta.Gen).
type Leave struct {
	Node  string
	Epoch uint64
	Gen   uint64
}

// Message is a decoded Shoal message: its header and the records this
// version knows, in order by kind.
type Message struct {
	Version uint8
	From    string
	// Entries are pushed writes, each with its encoding (what a relay
	// passes on, byte for byte).
	Entries []RawEntry
	IHaves  []plumtree.ID
	Prunes  []string
	Wants   []Want
	Deltas  []catalog.Delta
	// Totals are, per delta, how many entries the transfer it is part of
	// holds in all (for progress logs).
	Totals []uint64
	// Digest is set when the message carries a digest; Reply when the
	// sender wants the receiver's side of the exchange too.
	Digest    []catalog.OriginDigest
	HasDigest bool
	Reply     bool
	partial   bool
	settled   bool
	// scope lists the buckets a digest speaks for (digestBuckets); nil
	// for a whole or partial digest.
	scope []int
	// Buckets is the sender's summary by bucket; BucketsReply asks for the
	// digest of those that differ.
	Buckets      *[catalog.SummaryBuckets]uint64
	BucketsReply bool
	Leaves       []Leave
	// SummaryReqs are request IDs; Summaries answers (ID, summary).
	SummaryReqs []uint64
	Summaries   [][2]uint64
	Reset       bool
	// KeyReqs and KeyResps are keyring operations and their answers.
	KeyReqs  []keyReq
	KeyResps []keyResp
	// Skipped counts records of types this version does not know.
	Skipped int
}

// RawEntry is a decoded entry with its encoding; Relay is set for one
// relayed after an exchange (recRelay).
type RawEntry struct {
	catalog.Entry
	Raw   []byte
	Relay bool
}

// builder appends records to a message.
type builder struct{ b []byte }

func newMessage(version uint8, from string) *builder {
	b := make([]byte, 0, 256)
	b = append(b, wireMagic, version)
	return &builder{appendString(b, from)}
}

func (m *builder) record(typ uint64, payload []byte) {
	m.b = binary.AppendUvarint(m.b, typ)
	m.b = binary.AppendUvarint(m.b, uint64(len(payload)))
	m.b = append(m.b, payload...)
}

func (m *builder) len() int { return len(m.b) }

// EncodeEntry encodes one entry: the fields this version knows, then its
// Ext as it came.
func EncodeEntry(e catalog.Entry) []byte {
	return appendEntry(make([]byte, 0, catalog.EntrySizeBound(e)), e)
}

// Entry flags.
const (
	flagDeleted byte = 1
	flagCheck   byte = 2 // a check entry (else a service entry)
	flagDamped  byte = 1 // in a check's own flags byte
)

func appendEntry(b []byte, e catalog.Entry) []byte {
	s := e.Service
	b = appendString(b, e.Origin)
	b = binary.AppendUvarint(b, e.Version.Epoch)
	b = binary.AppendUvarint(b, e.Version.Counter)
	var flags byte
	if e.Deleted {
		flags |= flagDeleted
	}
	if e.Kind == catalog.KindCheck {
		flags |= flagCheck
	}
	b = append(b, flags)
	if e.Kind == catalog.KindCheck {
		return append(appendCheck(b, e), e.Ext...)
	}
	b = appendString(b, s.ID)
	b = appendString(b, s.Name)
	if !e.Deleted {
		b = appendString(b, s.Address)
		b = binary.AppendUvarint(b, uint64(s.Port))
		b = binary.AppendUvarint(b, uint64(s.Weights.Passing))
		b = binary.AppendUvarint(b, uint64(s.Weights.Warning))
		b = binary.AppendUvarint(b, uint64(len(s.Tags)))
		for _, t := range s.Tags {
			b = appendString(b, t)
		}
		b = binary.AppendUvarint(b, uint64(len(s.Meta)))
		for _, k := range sortedKeys(s.Meta) {
			b = appendString(b, k)
			b = appendString(b, s.Meta[k])
		}
	}
	return append(b, e.Ext...)
}

func appendCheck(b []byte, e catalog.Entry) []byte {
	c := e.Check
	b = appendString(b, c.ID)
	b = appendString(b, c.ServiceID)
	if e.Deleted {
		return b
	}
	b = appendString(b, c.Name)
	b = appendString(b, c.Type)
	var flags byte
	if c.Damped {
		flags |= flagDamped
	}
	b = append(b, byte(c.Status), flags)
	b = appendString(b, c.Notes)
	return appendString(b, c.Output)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (m *builder) entry(raw []byte) { m.record(recEntry, raw) }

func (m *builder) relay(raw []byte) { m.record(recRelay, raw) }

func (m *builder) ihave(id plumtree.ID) {
	b := appendString(nil, id.Origin)
	b = binary.AppendUvarint(b, id.Epoch)
	m.record(recIHave, binary.AppendUvarint(b, id.Counter))
}

func (m *builder) prune(origin string) { m.record(recPrune, appendString(nil, origin)) }

func (m *builder) want(w catalog.Want, flags byte) {
	b := appendString(nil, w.Origin)
	b = binary.AppendUvarint(b, w.Epoch)
	b = binary.AppendUvarint(b, w.Known)
	if w.Full {
		flags |= wantFull
	}
	m.record(recWant, append(b, flags))
}

// delta encodes a delta that is part of a transfer of total entries.
func (m *builder) delta(d catalog.Delta, total uint64) {
	b := appendString(make([]byte, 0, 64+200*len(d.Entries)), d.Origin)
	for _, v := range []uint64{d.Epoch, d.From, d.To, d.Watermark, d.Upto, total} {
		b = binary.AppendUvarint(b, v)
	}
	var flags byte
	if d.Full {
		flags = 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(d.Entries)))
	for _, e := range d.Entries {
		raw := EncodeEntry(e)
		b = binary.AppendUvarint(b, uint64(len(raw)))
		b = append(b, raw...)
	}
	m.record(recDelta, b)
}

// deltaSize bounds what delta adds to a message.
func deltaSize(d catalog.Delta) int {
	n := 128 + len(d.Origin)
	for _, e := range d.Entries {
		n += catalog.EntrySizeBound(e) + 4
	}
	return n
}

// Digest flags.
const (
	digestReply   = 1 // the receiver sends its wants back (a one-way exchange)
	digestPartial = 2 // only the origins listed: nothing is sent of others
	// digestSettled: leave out origins that changed within the last second
	// (the exchange was started by a differing summary, which a change
	// still on its way also causes).
	digestSettled = 4
	// digestBuckets: the digest speaks for the origins of the buckets
	// listed after it (catalog.InBuckets).
	digestBuckets = 8
)

// digest encodes a digest; with buckets, one that speaks for the origins
// of those buckets only.
func (m *builder) digest(ds []catalog.OriginDigest, flags byte, buckets ...int) {
	if buckets != nil {
		flags |= digestBuckets
	}
	m.digestScoped(ds, flags, buckets)
}

// digestScoped encodes a digest with its flags, and the bucket list if
// flags say digestBuckets.
func (m *builder) digestScoped(ds []catalog.OriginDigest, flags byte, scope []int) {
	b := make([]byte, 0, 2+40*len(ds)+len(scope))
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(ds)))
	for _, d := range ds {
		b = appendString(b, d.Origin)
		b = binary.AppendUvarint(b, d.Epoch)
		b = binary.AppendUvarint(b, d.Known)
		b = binary.AppendUvarint(b, d.Watermark)
		b = binary.BigEndian.AppendUint64(b, d.Hash)
	}
	if flags&digestBuckets != 0 {
		b = binary.AppendUvarint(b, uint64(len(scope)))
		for _, x := range scope {
			b = append(b, byte(x))
		}
	}
	m.record(recDigest, b)
}

func (m *builder) buckets(bs *[catalog.SummaryBuckets]uint64, reply bool) {
	b := make([]byte, 0, 2+8*len(bs))
	var flags byte
	if reply {
		flags = 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(bs)))
	for _, x := range bs {
		b = binary.BigEndian.AppendUint64(b, x)
	}
	m.record(recBuckets, b)
}

func (m *builder) leave(l Leave) {
	b := appendString(nil, l.Node)
	b = binary.AppendUvarint(b, l.Epoch)
	m.record(recLeave, binary.AppendUvarint(b, l.Gen))
}

func (m *builder) reset() { m.record(recReset, nil) }

func (m *builder) summaryReq(id uint64) { m.record(recSummaryReq, binary.AppendUvarint(nil, id)) }

func (m *builder) summary(id, sum uint64) {
	m.record(recSummary, binary.BigEndian.AppendUint64(binary.AppendUvarint(nil, id), sum))
}

func (m *builder) keyReq(r keyReq) {
	b := binary.AppendUvarint(nil, r.ID)
	b = binary.AppendUvarint(b, r.LTime)
	b = append(b, byte(r.Op))
	m.record(recKeyReq, appendString(b, string(r.Key)))
}

func (m *builder) keyResp(r keyResp) {
	b := binary.AppendUvarint(nil, r.ID)
	b = binary.AppendUvarint(b, r.LTime)
	b = appendString(b, r.Err)
	b = binary.AppendUvarint(b, uint64(len(r.Keys)))
	for _, k := range r.Keys {
		b = appendString(b, string(k))
	}
	m.record(recKeyResp, b)
}

// EncodeEntries builds the message an agent named from sends to push
// entries along a broadcast tree (for tools and tests that speak to
// agents directly).
func EncodeEntries(from string, es ...catalog.Entry) []byte {
	b := newMessage(ProtocolMax, from)
	for _, e := range es {
		b.entry(EncodeEntry(e))
	}
	return b.b
}

// EncodeLeave builds the message an agent named from sends to pass on a
// leave announcement.
func EncodeLeave(from string, l Leave) []byte {
	b := newMessage(ProtocolMax, from)
	b.leave(l)
	return b.b
}

// DecodeEntry decodes one entry as EncodeEntry encodes it.
func DecodeEntry(b []byte) (catalog.Entry, error) {
	d := decoder{buf: b}
	e := d.entry()
	if d.err != nil {
		return catalog.Entry{}, d.err
	}
	return e, nil
}

// Decode parses one Shoal message. It never panics on any input and never
// allocates more than the input can justify. Records of unknown types are
// skipped; a message of a version below ProtocolMin is refused.
func Decode(buf []byte) (Message, error) {
	if len(buf) < 3 || buf[0] != wireMagic {
		return Message{}, fmt.Errorf("%w: not a Shoal message", ErrMalformed)
	}
	if buf[1] < ProtocolMin {
		return Message{}, fmt.Errorf("%w: protocol version %d, this agent speaks %d to %d", ErrMalformed, buf[1], ProtocolMin, ProtocolMax)
	}
	m := Message{Version: buf[1]}
	d := decoder{buf: buf[2:]}
	m.From = d.string("sender")
	if d.err == nil && catalog.ValidateName("sender", m.From) != nil {
		d.fail("bad sender name")
	}
	for n := 0; d.err == nil && len(d.buf) > 0; n++ {
		if n >= maxRecords {
			d.fail("too many records")
			break
		}
		typ := d.uvarint("record type")
		size := d.uvarint("record length")
		if d.err == nil && size > uint64(len(d.buf)) {
			d.fail("record of %d bytes exceeds the message", size)
		}
		if d.err != nil {
			break
		}
		r := decoder{buf: d.buf[:size]}
		d.buf = d.buf[size:]
		switch typ {
		case recEntry, recRelay:
			raw := r.buf
			e := r.entry()
			m.Entries = append(m.Entries, RawEntry{Entry: e, Raw: raw, Relay: typ == recRelay})
		case recIHave:
			id := plumtree.ID{Origin: r.name("origin")}
			id.Epoch = r.uvarint("epoch")
			id.Counter = r.uvarint("counter")
			m.IHaves = append(m.IHaves, id)
		case recPrune:
			m.Prunes = append(m.Prunes, r.name("origin"))
		case recWant:
			var w Want
			w.Origin = r.name("origin")
			w.Epoch = r.uvarint("epoch")
			w.Known = r.uvarint("known")
			flags := r.byte("flags")
			w.Full, w.Graft, w.Settled = flags&wantFull != 0, flags&wantGraft != 0, flags&wantSettled != 0
			m.Wants = append(m.Wants, w)
		case recDelta:
			dl, total := r.delta()
			m.Deltas = append(m.Deltas, dl)
			m.Totals = append(m.Totals, total)
		case recDigest:
			if m.HasDigest {
				r.fail("two digests")
			}
			m.HasDigest = true
			flags := r.byte("flags")
			m.Reply, m.partial, m.settled = flags&digestReply != 0, flags&digestPartial != 0, flags&digestSettled != 0
			m.Digest = r.digest()
			if flags&digestBuckets != 0 {
				n := r.count("buckets", catalog.SummaryBuckets)
				m.scope = []int{}
				for range n {
					x := r.byte("bucket")
					if int(x) >= catalog.SummaryBuckets {
						r.fail("bucket %d out of range", x)
					}
					m.scope = append(m.scope, int(x))
				}
			}
		case recBuckets:
			m.BucketsReply = r.byte("flags")&1 != 0
			if n := r.count("buckets", 8*catalog.SummaryBuckets); r.err == nil && n != catalog.SummaryBuckets {
				r.fail("%d summary buckets, want %d", n, catalog.SummaryBuckets)
			}
			var bs [catalog.SummaryBuckets]uint64
			for i := range bs {
				bs[i] = r.uint64("bucket")
			}
			m.Buckets = &bs
		case recLeave:
			l := Leave{Node: r.name("node")}
			l.Epoch = r.uvarint("epoch")
			l.Gen = r.uvarint("gen")
			m.Leaves = append(m.Leaves, l)
		case recReset:
			m.Reset = true
		case recSummaryReq:
			m.SummaryReqs = append(m.SummaryReqs, r.uvarint("request id"))
		case recSummary:
			id := r.uvarint("request id")
			m.Summaries = append(m.Summaries, [2]uint64{id, r.uint64("summary")})
		case recKeyReq:
			k := keyReq{ID: r.uvarint("request id"), LTime: r.uvarint("lamport time")}
			k.Op = KeyOp(r.byte("keyring operation"))
			k.Key = []byte(r.string("key"))
			if r.err == nil && (k.Op < KeyList || k.Op > KeyRemove) {
				r.fail("unknown keyring operation %d", k.Op)
			}
			if r.err == nil && k.Op != KeyList && checkKey(k.Key) != nil {
				r.fail("keyring key of %d bytes", len(k.Key))
			}
			m.KeyReqs = append(m.KeyReqs, k)
			r.buf = nil // a later version may add fields
		case recKeyResp:
			k := keyResp{ID: r.uvarint("request id"), LTime: r.uvarint("lamport time")}
			k.Err = r.string("error")
			n := r.count("keys", maxKeys)
			for range n {
				key := []byte(r.string("key"))
				if r.err == nil && checkKey(key) != nil {
					r.fail("keyring key of %d bytes", len(key))
				}
				k.Keys = append(k.Keys, key)
			}
			m.KeyResps = append(m.KeyResps, k)
			r.buf = nil
		default:
			m.Skipped++
			continue
		}
		if r.err == nil && len(r.buf) != 0 && typ != recEntry && typ != recRelay {
			r.fail("%d bytes after a record of type %d", len(r.buf), typ)
		}
		if r.err != nil {
			d.err = r.err
		}
	}
	if d.err != nil {
		return Message{}, d.err
	}
	return m, nil
}

type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	d.buf = nil
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail("bad varint for %s", what)
		return 0
	}
	if n > 1 && d.buf[n-1] == 0 {
		// An overlong encoding (0x80 0x00 for 0): every agent writes the
		// shortest, and an entry must mean one sequence of bytes, since
		// its hash is taken over them.
		d.fail("overlong varint for %s", what)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) uint64(what string) uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.buf) < 8 {
		d.fail("short %s", what)
		return 0
	}
	v := binary.BigEndian.Uint64(d.buf)
	d.buf = d.buf[8:]
	return v
}

// count reads a length that must not exceed max, nor the bytes left (every
// counted item takes at least one byte).
func (d *decoder) count(what string, max int) int {
	v := d.uvarint(what)
	if v > uint64(max) || v > uint64(len(d.buf)) {
		d.fail("%s count %d exceeds the limit", what, v)
		return 0
	}
	return int(v)
}

func (d *decoder) int(what string, max int) int {
	v := d.uvarint(what)
	if v > uint64(max) {
		d.fail("%s %d exceeds %d", what, v, max)
		return 0
	}
	return int(v)
}

func (d *decoder) string(what string) string {
	n := d.uvarint(what)
	if d.err != nil {
		return ""
	}
	if n > maxString || n > uint64(len(d.buf)) {
		d.fail("%s length %d exceeds the message", what, n)
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

// name reads a node name: DNS-safe, at most catalog.MaxNameLen bytes.
func (d *decoder) name(what string) string {
	s := d.string(what)
	if d.err == nil && catalog.ValidateName(what, s) != nil {
		d.fail("bad %s name", what)
	}
	return s
}

func (d *decoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) == 0 {
		d.fail("missing %s", what)
		return 0
	}
	c := d.buf[0]
	d.buf = d.buf[1:]
	return c
}

// entry decodes one entry; what follows the fields this version knows is
// its Ext.
func (d *decoder) entry() catalog.Entry {
	var e catalog.Entry
	e.Origin = d.name("origin")
	e.Version.Epoch = d.uvarint("epoch")
	e.Version.Counter = d.uvarint("counter")
	flags := d.byte("flags")
	if flags&^(flagDeleted|flagCheck) != 0 {
		d.fail("unknown flags %#x", flags)
	}
	e.Deleted = flags&flagDeleted != 0
	if flags&flagCheck != 0 {
		e.Kind = catalog.KindCheck
		d.check(&e)
	} else {
		d.service(&e)
	}
	if d.err == nil && e.Version.Counter == 0 {
		d.fail("entry %s/%s with counter 0", e.Origin, e.ID())
	}
	if d.err == nil && len(d.buf) > 0 {
		e.Ext = string(d.buf)
		d.buf = nil
	}
	return e
}

func (d *decoder) service(e *catalog.Entry) {
	e.Service.ID = d.string("service id")
	e.Service.Name = d.string("service name")
	if d.err == nil && (e.Service.ID == "" || len(e.Service.ID) > catalog.MaxIDLen) {
		d.fail("entry with a bad service id")
	}
	if e.Deleted {
		if d.err == nil && catalog.ValidateName("service name", e.Service.Name) != nil {
			d.fail("tombstone with a bad service name")
		}
		return
	}
	s := &e.Service
	s.Address = d.string("address")
	s.Port = d.int("port", 65535)
	s.Weights.Passing = d.int("passing weight", catalog.MaxWeight)
	s.Weights.Warning = d.int("warning weight", catalog.MaxWeight)
	if n := d.count("tags", maxTags); n > 0 {
		s.Tags = make([]string, n)
		for i := range s.Tags {
			s.Tags[i] = d.string("tag")
		}
	}
	if n := d.count("meta", maxMeta); n > 0 {
		s.Meta = make(map[string]string, n)
		prev := ""
		for i := 0; i < n; i++ {
			k := d.string("meta key")
			// Keys come sorted and once each, as every agent writes
			// them: one entry, one encoding.
			if i > 0 && k <= prev && d.err == nil {
				d.fail("meta key %q out of order", k)
			}
			prev = k
			s.Meta[k] = d.string("meta value")
		}
	}
	if d.err == nil {
		// A peer's entry passes the same checks as a local registration:
		// nothing invalid enters the catalog, whoever sent it.
		if err := s.Validate(); err != nil {
			d.fail("entry %s/%s: %v", e.Origin, s.ID, err)
		}
	}
}

func (d *decoder) check(e *catalog.Entry) {
	c := &e.Check
	c.ID = d.string("check id")
	c.ServiceID = d.string("check service id")
	if d.err == nil && (c.ID == "" || len(c.ID) > catalog.MaxCheckIDLen || len(c.ServiceID) > catalog.MaxIDLen) {
		d.fail("check entry with a bad check id or service id")
	}
	if e.Deleted {
		return
	}
	c.Name = d.string("check name")
	c.Type = d.string("check type")
	c.Status = catalog.Health(d.byte("check status"))
	flags := d.byte("check flags")
	if flags&^flagDamped != 0 {
		d.fail("unknown check flags %#x", flags)
	}
	c.Damped = flags&flagDamped != 0
	c.Notes = d.string("check notes")
	c.Output = d.string("check output")
	if d.err == nil {
		if err := c.Validate(); err != nil {
			d.fail("check %s/%s: %v", e.Origin, c.ID, err)
		}
	}
}

func (d *decoder) delta() (catalog.Delta, uint64) {
	var dl catalog.Delta
	dl.Origin = d.name("origin")
	dl.Epoch = d.uvarint("epoch")
	dl.From = d.uvarint("from")
	dl.To = d.uvarint("to")
	dl.Watermark = d.uvarint("watermark")
	dl.Upto = d.uvarint("upto")
	total := d.uvarint("total")
	flags := d.byte("flags")
	dl.Full = flags&1 != 0
	if d.err == nil && (dl.To < dl.From || dl.Watermark > dl.Upto && dl.Full) {
		d.fail("delta of %s with a bad run (%d, %d]", dl.Origin, dl.From, dl.To)
	}
	// Entries are appended as they decode: a count only says what the
	// sender claims, and must not reserve memory the bytes cannot back.
	n := d.count("entries", maxRecords)
	for i := 0; i < n && d.err == nil; i++ {
		size := d.uvarint("entry length")
		if d.err == nil && size > uint64(len(d.buf)) {
			d.fail("entry of %d bytes exceeds the delta", size)
		}
		if d.err != nil {
			break
		}
		r := decoder{buf: d.buf[:size]}
		d.buf = d.buf[size:]
		e := r.entry()
		if r.err != nil {
			d.err = r.err
			break
		}
		if e.Origin != dl.Origin || e.Version.Epoch != dl.Epoch {
			d.fail("delta of %s@%d holds an entry of %s@%d", dl.Origin, dl.Epoch, e.Origin, e.Version.Epoch)
			break
		}
		dl.Entries = append(dl.Entries, e)
	}
	return dl, total
}

func (d *decoder) digest() []catalog.OriginDigest {
	n := d.count("origins", maxRecords)
	var out []catalog.OriginDigest
	for i := 0; i < n && d.err == nil; i++ {
		od := catalog.OriginDigest{Origin: d.name("origin")}
		od.Epoch = d.uvarint("epoch")
		od.Known = d.uvarint("known")
		od.Watermark = d.uvarint("watermark")
		od.Hash = d.uint64("hash")
		if d.err == nil && od.Watermark > od.Known {
			d.fail("digest of %s: watermark %d above known %d", od.Origin, od.Watermark, od.Known)
		}
		out = append(out, od)
	}
	return out
}
