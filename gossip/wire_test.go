package gossip

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/gossip/plumtree"
)

func sampleService(r *rand.Rand) catalog.Service {
	s := catalog.Service{
		ID:      "web-" + randString(r, 1+r.IntN(20)),
		Name:    "web",
		Address: "10.0.0." + randString(r, 1),
		Port:    1 + r.IntN(65535),
		Weights: catalog.Weights{Passing: 1 + r.IntN(10), Warning: r.IntN(3)},
	}
	for i := r.IntN(4); i > 0; i-- {
		s.Tags = append(s.Tags, randString(r, 1+r.IntN(10)))
	}
	if n := r.IntN(4); n > 0 {
		s.Meta = map[string]string{}
		for i := n; i > 0; i-- {
			s.Meta["k"+randString(r, 3)] = randString(r, r.IntN(30))
		}
	}
	return s
}

func randString(r *rand.Rand, n int) string {
	const alpha = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alpha[r.IntN(len(alpha))]
	}
	return string(b)
}

func sampleCheck(r *rand.Rand) catalog.Check {
	c := catalog.Check{
		ID:     "service:web-" + randString(r, 1+r.IntN(20)),
		Name:   "HTTP on " + randString(r, r.IntN(10)),
		Type:   []string{"http", "tcp", "ttl", "grpc"}[r.IntN(4)],
		Status: catalog.Health(1 + r.IntN(3)),
		Notes:  randString(r, r.IntN(40)),
		Output: "HTTP GET /health: " + randString(r, r.IntN(100)),
		Damped: r.IntN(3) == 0,
	}
	if r.IntN(3) > 0 {
		c.ServiceID = "web-" + randString(r, 4)
	}
	return c
}

func sampleEntry(r *rand.Rand, i int) catalog.Entry {
	e := catalog.Entry{
		Origin:  "node-" + randString(r, 5),
		Version: catalog.Version{Epoch: r.Uint64(), Counter: 1 + r.Uint64N(1<<40)},
		Service: sampleService(r),
	}
	switch i % 5 {
	case 1:
		e.Deleted = true
		e.Service = catalog.Service{ID: e.Service.ID, Name: e.Service.Name}
	case 2:
		e.Kind, e.Service, e.Check = catalog.KindCheck, catalog.Service{}, sampleCheck(r)
	case 3:
		e.Kind, e.Service, e.Deleted = catalog.KindCheck, catalog.Service{}, true
		e.Check = catalog.Check{ID: "c-" + randString(r, 3), ServiceID: "web"}
	}
	if i%7 == 0 {
		// What a later version appended: kept as it came.
		e.Ext = "\x09\x03abc"
	}
	return e
}

func TestEntryRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 1000 {
		e := sampleEntry(r, i)
		got, err := DecodeEntry(EncodeEntry(e))
		if err != nil {
			t.Fatalf("decode %+v: %v", e, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip changed the entry:\n got %+v\nwant %+v", got, e)
		}
		if n, bound := len(EncodeEntry(e)), catalog.EntrySizeBound(e); n > bound {
			t.Fatalf("entry of %d bytes above its bound %d", n, bound)
		}
	}
}

// encode re-encodes a decoded message, records in the order Decode
// groups them.
func encode(m Message) []byte {
	b := newMessage(m.Version, m.From)
	for _, e := range m.Entries {
		if e.Relay {
			b.relay(e.Raw)
		} else {
			b.entry(e.Raw)
		}
	}
	for _, id := range m.IHaves {
		b.ihave(id)
	}
	for _, o := range m.Prunes {
		b.prune(o)
	}
	for _, w := range m.Wants {
		var flags byte
		if w.Graft {
			flags |= wantGraft
		}
		if w.Settled {
			flags |= wantSettled
		}
		b.want(w.Want, flags)
	}
	for i, d := range m.Deltas {
		b.delta(d, m.Totals[i])
	}
	if m.HasDigest {
		var flags byte
		if m.Reply {
			flags |= digestReply
		}
		if m.partial {
			flags |= digestPartial
		}
		if m.settled {
			flags |= digestSettled
		}
		if m.scope != nil {
			flags |= digestBuckets
		}
		b.digestScoped(m.Digest, flags, m.scope)
	}
	for _, l := range m.Leaves {
		b.leave(l)
	}
	for _, id := range m.SummaryReqs {
		b.summaryReq(id)
	}
	for _, s := range m.Summaries {
		b.summary(s[0], s[1])
	}
	if m.Reset {
		b.reset()
	}
	if m.Buckets != nil {
		b.buckets(m.Buckets, m.BucketsReply)
	}
	for _, k := range m.KeyReqs {
		b.keyReq(k)
	}
	for _, k := range m.KeyResps {
		b.keyResp(k)
	}
	return b.b
}

// sampleMessage holds one record of every kind.
func sampleMessage(r *rand.Rand) []byte {
	b := newMessage(ProtocolMax, "node-a")
	e := sampleEntry(r, 0)
	b.entry(EncodeEntry(e))
	b.relay(EncodeEntry(sampleEntry(r, 2)))
	b.ihave(plumtree.ID{Origin: "node-b", Epoch: 9, Counter: 77})
	b.prune("node-c")
	b.want(catalog.Want{Origin: "node-d", Epoch: 3, Known: 4, Full: true}, wantGraft)
	d := catalog.Delta{Origin: "node-e", Epoch: 5, From: 2, To: 9, Watermark: 1, Upto: 9}
	for i := range 3 {
		x := sampleEntry(r, i)
		x.Origin, x.Version = "node-e", catalog.Version{Epoch: 5, Counter: uint64(3 + i)}
		d.Entries = append(d.Entries, x)
	}
	b.delta(d, 1000)
	b.digest([]catalog.OriginDigest{{Origin: "node-a", Epoch: 1, Known: 5, Watermark: 2, Hash: 0xfeed}, {Origin: "node-b", Epoch: 2}}, digestReply|digestPartial)
	b.leave(Leave{Node: "node-f", Epoch: 1 << 60, Gen: 2})
	b.summaryReq(42)
	b.summary(42, 0xabcdef)
	b.reset()
	var bs [catalog.SummaryBuckets]uint64
	bs[3], bs[63] = 7, 9
	b.buckets(&bs, true)
	b.keyReq(keyReq{ID: 1 << 63, LTime: 7, Op: KeyInstall, Key: make([]byte, 32)})
	b.keyReq(keyReq{ID: 2, LTime: 8, Op: KeyList, Key: []byte{}})
	b.keyResp(keyResp{ID: 1 << 63, LTime: 9, Keys: [][]byte{make([]byte, 16), make([]byte, 24)}})
	b.keyResp(keyResp{ID: 2, LTime: 9, Err: "the key is not installed"})
	return b.b
}

func TestMessageRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	buf := sampleMessage(r)
	m, err := Decode(buf)
	if err != nil {
		t.Fatal(err)
	}
	if m.From != "node-a" || len(m.Entries) != 2 || m.Entries[0].Relay || !m.Entries[1].Relay || len(m.IHaves) != 1 || len(m.Prunes) != 1 || len(m.Wants) != 1 ||
		len(m.Deltas) != 1 || len(m.Deltas[0].Entries) != 3 || m.Totals[0] != 1000 || !m.HasDigest || !m.Reply || !m.partial ||
		len(m.Digest) != 2 || len(m.Leaves) != 1 || len(m.SummaryReqs) != 1 || len(m.Summaries) != 1 || !m.Reset ||
		m.Buckets == nil || m.Buckets[63] != 9 || !m.BucketsReply {
		t.Fatalf("decoded %+v", m)
	}
	if w := m.Wants[0]; !w.Graft || !w.Full || w.Known != 4 {
		t.Errorf("want %+v", w)
	}
	if string(encode(m)) != string(buf) {
		t.Error("re-encoding changed the message")
	}
}

// Records of a later version are skipped, not refused; messages of a
// protocol before this one are refused.
func TestDecodeSkipsUnknownRecords(t *testing.T) {
	b := newMessage(ProtocolMax+1, "node-a")
	b.record(200, []byte("from the future"))
	b.prune("node-b")
	b.record(201, nil)
	m, err := Decode(b.b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Skipped != 2 || len(m.Prunes) != 1 || m.Version != ProtocolMax+1 {
		t.Errorf("decoded %+v", m)
	}
	old := newMessage(2, "node-a")
	old.prune("node-b")
	if _, err := Decode(old.b); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "protocol version 2") {
		t.Errorf("a protocol 2 message: %v", err)
	}
}

// keyRecord builds a message of one keyring record: id, Lamport time, an
// operation byte (a request) or an empty error (op 0, an answer), a
// string, then raw bytes.
func keyRecord(typ uint64, id, ltime uint64, op byte, s string, raw ...byte) []byte {
	p := binary.AppendUvarint(nil, id)
	p = binary.AppendUvarint(p, ltime)
	if typ == recKeyReq {
		p = append(p, op)
	}
	p = append(appendString(p, s), raw...)
	b := newMessage(ProtocolMax, "node-a")
	b.record(typ, p)
	return b.b
}

func TestDecodeRefusesGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	valid := sampleMessage(r)
	long := newMessage(ProtocolMax, "node-a")
	long.prune(strings.Repeat("x", 64))
	forged := newMessage(ProtocolMax, "node-a")
	forged.delta(catalog.Delta{Origin: "node-b", Epoch: 1, To: 1, Entries: []catalog.Entry{{Origin: "node-c",
		Version: catalog.Version{Epoch: 1, Counter: 1}, Service: catalog.Service{ID: "x", Name: "x", Port: 1}}}}, 1)
	zero := newMessage(ProtocolMax, "node-a")
	zero.entry(EncodeEntry(catalog.Entry{Origin: "node-b", Version: catalog.Version{Epoch: 1}, Service: catalog.Service{ID: "x", Name: "x", Port: 1, Weights: catalog.Weights{Passing: 1}}}))
	cases := map[string][]byte{
		"empty":              nil,
		"not ours":           []byte("\x01\x02\x03"),
		"truncated":          valid[:len(valid)-1],
		"trailing":           append(append([]byte(nil), valid...), 0),
		"huge record":        {wireMagic, ProtocolMax, 1, 'a', 1, 0xff, 0xff, 0xff, 0x7f},
		"bad sender":         {wireMagic, ProtocolMax, 1, '-'},
		"over-long name":     long.b,
		"entry not of delta": forged.b,
		"counter zero":       zero.b,
		"keyring op 9":       keyRecord(recKeyReq, 1, 1, 9, ""),
		"keyring short key":  keyRecord(recKeyReq, 1, 1, byte(KeyInstall), "12345"),
		"keyring answer key": keyRecord(recKeyResp, 1, 1, 0, "", 1, 5, 'a', 'b', 'c', 'd', 'e'),
		"keyring 65 keys":    keyRecord(recKeyResp, 1, 1, 0, "", 65),
	}
	for name, b := range cases {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

// Every valid instance and check fits a UDP message with room for the
// header; the validation limits promise that.
func TestLargestValidEntriesFitOnePacket(t *testing.T) {
	origin := strings.Repeat("o", catalog.MaxNameLen)
	s := catalog.Service{
		ID:      strings.Repeat("i", catalog.MaxIDLen),
		Name:    strings.Repeat("n", catalog.MaxNameLen),
		Port:    65535,
		Weights: catalog.Weights{Passing: catalog.MaxWeight, Warning: catalog.MaxWeight},
	}
	var last catalog.Service
	for i := 0; i < catalog.MaxTags; i++ {
		s.Tags = append(s.Tags, strings.Repeat("t", 40))
		if s.Validate() != nil {
			break
		}
		last = s.Clone()
	}
	c := catalog.Check{
		ID:        strings.Repeat("i", catalog.MaxCheckIDLen),
		Name:      strings.Repeat("n", catalog.MaxCheckNameLen),
		ServiceID: strings.Repeat("s", catalog.MaxIDLen),
		Type:      strings.Repeat("t", catalog.MaxCheckTypeLen),
		Status:    catalog.HealthCritical,
		Notes:     strings.Repeat("x", catalog.MaxNotesLen),
		Output:    strings.Repeat("o", catalog.MaxOutputHead),
		Damped:    true,
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	max := catalog.Version{Epoch: ^uint64(0), Counter: ^uint64(0)}
	for _, e := range []catalog.Entry{{Origin: origin, Version: max, Service: last}, {Origin: origin, Version: max, Kind: catalog.KindCheck, Check: c}} {
		b := newMessage(ProtocolMax, origin)
		b.entry(EncodeEntry(e))
		if b.len() > udpBudget {
			t.Errorf("largest valid %v entry makes a %d-byte message, above %d", e.Kind, b.len(), udpBudget)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the message decoder: it must never
// panic, and whatever it accepts must encode back to the same bytes.
func FuzzDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	f.Add(sampleMessage(r))
	f.Add(sampleMessage(r))
	f.Add([]byte{wireMagic, ProtocolMax, 1, 'a', byte(recDigest), 3, 0, 0xff, 0x7f})
	b := newMessage(ProtocolMax, "x")
	b.record(99, []byte{1, 2, 3})
	f.Add(b.b)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil || m.Skipped > 0 {
			return // skipped records are not re-encoded
		}
		again := encode(m)
		m2, err := Decode(again)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoding an accepted message changed it: %v", err)
		}
	})
}

// FuzzDecodeEntry: entries also arrive alone (inside deltas and pushes);
// no panic, and an accepted entry re-encodes to the same bytes, its Ext
// included.
func FuzzDecodeEntry(f *testing.F) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := range 6 {
		f.Add(EncodeEntry(sampleEntry(r, i)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			return
		}
		if again := EncodeEntry(e); string(again) != string(b) {
			t.Fatalf("re-encoding changed an accepted entry:\n%q\n%q", b, again)
		}
	})
}

// FuzzDecodeMeta feeds arbitrary node metadata (it arrives from any peer in
// alive messages): no panic, and what decodes re-encodes to the same meta.
func FuzzDecodeMeta(f *testing.F) {
	f.Add(EncodeMeta(NodeMeta{Protocol: ProtocolMax, MinProtocol: ProtocolMin, Epoch: 7, Datacenter: "dc1", Version: "0.1.0", Gen: 3}))
	f.Add([]byte("s\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Add([]byte{})
	user := NodeMeta{Protocol: ProtocolMax, Epoch: 9, Datacenter: "dc1", Version: "0.2.0",
		User: map[string]string{"env": "prod", "rack": "r-12", "az": "", "team_a": "🐟"}}
	f.Add(EncodeMeta(user))
	for _, seed := range metaSeeds(user) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		if len(m.User) > 0 && catalog.ValidateNodeMeta("node meta", m.User) != nil {
			t.Fatalf("accepted invalid user metadata %q", m.User)
		}
		m2, err := DecodeMeta(EncodeMeta(m))
		if err != nil || !reflect.DeepEqual(m2, m) {
			t.Fatalf("re-encoding accepted metadata changed it: %+v → %+v (%v)", m, m2, err)
		}
	})
}
