package gossip

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-sd/shoal/catalog"
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

func TestEntryRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 500; i++ {
		e := catalog.Entry{
			Origin:  "node-" + randString(r, 5),
			Version: catalog.Version{Epoch: r.Uint64(), Counter: r.Uint64()},
			Service: sampleService(r),
		}
		if i%5 == 0 {
			e.Deleted = true
			e.Service = catalog.Service{ID: e.Service.ID, Name: e.Service.Name}
		}
		m, err := Decode(EncodeEntry(e))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if m.Type != msgEntry || !reflect.DeepEqual(m.Entry, e) {
			t.Fatalf("round trip changed the entry:\n got %+v\nwant %+v", m.Entry, e)
		}
	}
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

func TestCheckEntryRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 500; i++ {
		e := catalog.Entry{
			Origin:  "node-" + randString(r, 5),
			Version: catalog.Version{Epoch: r.Uint64(), Counter: r.Uint64()},
			Kind:    catalog.KindCheck,
			Check:   sampleCheck(r),
		}
		if i%5 == 0 {
			e.Deleted = true
			e.Check = catalog.Check{ID: e.Check.ID, ServiceID: e.Check.ServiceID}
		}
		m, err := Decode(EncodeEntry(e))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if m.Type != msgEntry || !reflect.DeepEqual(m.Entry, e) {
			t.Fatalf("round trip changed the entry:\n got %+v\nwant %+v", m.Entry, e)
		}
	}
}

// The largest valid check, like the largest service, fits one message.
func TestLargestValidCheckFitsOneMessage(t *testing.T) {
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
	origin := strings.Repeat("o", catalog.MaxNameLen)
	msg := EncodeEntry(catalog.Entry{Origin: origin, Version: catalog.Version{Epoch: ^uint64(0), Counter: ^uint64(0)}, Kind: catalog.KindCheck, Check: c})
	if bound := catalog.CheckEncodedSizeBound(origin, c) + 2; len(msg) > bound {
		t.Fatalf("encoded %d bytes, above the bound %d", len(msg), bound)
	}
	if len(msg) > MaxMessageSize {
		t.Fatalf("largest valid check encodes to %d bytes, above MaxMessageSize %d", len(msg), MaxMessageSize)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	s := catalog.Snapshot{From: "node-a"}
	for i := 0; i < 50; i++ {
		s.Origins = append(s.Origins, catalog.OriginState{Name: randString(r, 6), Epoch: r.Uint64(), Counter: r.Uint64()})
		s.Entries = append(s.Entries, catalog.Entry{Origin: "node-a", Version: catalog.Version{Epoch: 7, Counter: uint64(i + 1)}, Service: sampleService(r)})
	}
	for i := 0; i < 20; i++ {
		s.Entries = append(s.Entries, catalog.Entry{Origin: "node-a", Version: catalog.Version{Epoch: 7, Counter: uint64(i + 51)}, Kind: catalog.KindCheck, Check: sampleCheck(r)})
	}
	m, err := Decode(EncodeSnapshot(s))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(m.Snapshot, s) {
		t.Fatalf("round trip changed the snapshot")
	}
	empty, err := Decode(EncodeSnapshot(catalog.Snapshot{From: "x"}))
	if err != nil || empty.Snapshot.From != "x" || len(empty.Snapshot.Entries) != 0 {
		t.Fatalf("empty snapshot: %+v, %v", empty, err)
	}
}

// The validation limits promise that any valid instance fits one gossip
// message; hold the codec to the bound they compute.
func TestLargestValidServiceFitsOneMessage(t *testing.T) {
	s := catalog.Service{
		ID:      strings.Repeat("i", catalog.MaxIDLen),
		Name:    strings.Repeat("n", catalog.MaxNameLen),
		Port:    65535,
		Weights: catalog.Weights{Passing: catalog.MaxWeight, Warning: catalog.MaxWeight},
	}
	// Grow tags until validation refuses; the last accepted must fit.
	var last catalog.Service
	for i := 0; i < catalog.MaxTags; i++ {
		s.Tags = append(s.Tags, strings.Repeat("t", 40))
		if s.Validate() != nil {
			break
		}
		last = s.Clone()
	}
	origin := strings.Repeat("o", catalog.MaxNameLen)
	e := catalog.Entry{Origin: origin, Version: catalog.Version{Epoch: ^uint64(0), Counter: ^uint64(0)}, Service: last}
	msg := EncodeEntry(e)
	if bound := catalog.EncodedSizeBound(origin, last) + 2; len(msg) > bound {
		t.Fatalf("encoded %d bytes, above the bound %d", len(msg), bound)
	}
	if len(msg) > MaxMessageSize {
		t.Fatalf("largest valid instance encodes to %d bytes, above MaxMessageSize %d", len(msg), MaxMessageSize)
	}
}

func TestDecodeRefusesGarbage(t *testing.T) {
	valid := EncodeEntry(catalog.Entry{Origin: "a", Version: catalog.Version{Epoch: 1, Counter: 1}, Service: catalog.Service{ID: "x", Name: "x", Port: 1}})
	cases := map[string][]byte{
		"empty":         nil,
		"one byte":      {msgEntry},
		"wrong version": {msgEntry, 99, 0},
		"unknown type":  {77, ProtocolVersion},
		"truncated":     valid[:len(valid)-1],
		"trailing":      append(append([]byte(nil), valid...), 0),
		"huge count":    {msgSnapshot, ProtocolVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge string":   {msgEntry, ProtocolVersion, 0xff, 0xff, 0x03},
	}
	for name, b := range cases {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestLeaveRoundTrip(t *testing.T) {
	l := Leave{Node: "node-1", Epoch: 1 << 60}
	m, err := Decode(EncodeLeave(l))
	if err != nil || m.Type != msgLeave || m.Leave != l {
		t.Fatalf("got %+v, %v", m, err)
	}
}

func TestMetaRoundTrip(t *testing.T) {
	m := NodeMeta{Protocol: ProtocolVersion, Epoch: 1 << 62, Datacenter: "dc1", Version: "0.1.0"}
	b := EncodeMeta(m)
	if len(b) > 512 {
		t.Fatalf("meta is %d bytes, memberlist allows 512", len(b))
	}
	got, err := DecodeMeta(b)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := DecodeMeta([]byte("serf tags")); err == nil {
		t.Fatal("foreign metadata decoded")
	}
}

// FuzzDecode feeds arbitrary bytes to the gossip decoder: it must never
// panic, and whatever it accepts must encode back to the same message.
func FuzzDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	f.Add(EncodeEntry(catalog.Entry{Origin: "a", Version: catalog.Version{Epoch: 1, Counter: 2}, Service: sampleService(r)}))
	f.Add(EncodeEntry(catalog.Entry{Origin: "a", Version: catalog.Version{Epoch: 1, Counter: 3}, Deleted: true, Service: catalog.Service{ID: "x", Name: "x"}}))
	f.Add(EncodeSnapshot(catalog.Snapshot{From: "a", Origins: []catalog.OriginState{{Name: "a", Epoch: 1, Counter: 2}},
		Entries: []catalog.Entry{{Origin: "a", Version: catalog.Version{Epoch: 1, Counter: 2}, Service: sampleService(r)}}}))
	f.Add(EncodeEntry(catalog.Entry{Origin: "a", Version: catalog.Version{Epoch: 1, Counter: 4}, Kind: catalog.KindCheck, Check: sampleCheck(r)}))
	f.Add(EncodeEntry(catalog.Entry{Origin: "a", Version: catalog.Version{Epoch: 1, Counter: 5}, Deleted: true, Kind: catalog.KindCheck, Check: catalog.Check{ID: "c", ServiceID: "x"}}))
	f.Add([]byte{msgSnapshot, ProtocolVersion, 0, 0xff, 0xff, 0x7f})
	f.Add(EncodeLeave(Leave{Node: "node-1", Epoch: 42}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		var again []byte
		switch m.Type {
		case msgEntry:
			again = EncodeEntry(m.Entry)
		case msgSnapshot:
			again = EncodeSnapshot(m.Snapshot)
		case msgLeave:
			again = EncodeLeave(m.Leave)
		}
		m2, err := Decode(again)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoding an accepted message changed it: %v", err)
		}
	})
}

// FuzzDecodeMeta feeds arbitrary node metadata (it arrives from any peer in
// alive messages): no panic, and what decodes re-encodes to the same meta.
func FuzzDecodeMeta(f *testing.F) {
	f.Add(EncodeMeta(NodeMeta{Protocol: ProtocolVersion, Epoch: 7, Datacenter: "dc1", Version: "0.1.0"}))
	f.Add([]byte("s\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Add([]byte{})
	user := NodeMeta{Protocol: ProtocolVersion, Epoch: 9, Datacenter: "dc1", Version: "0.2.0",
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
