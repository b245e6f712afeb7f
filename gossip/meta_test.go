package gossip

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
)

// userRecord frames a user-metadata record from raw pairs, in the order
// given, so that tests can build records EncodeMeta never would.
func userRecord(pairs ...string) []byte {
	var rec []byte
	rec = binary.AppendUvarint(rec, uint64(len(pairs)/2))
	for _, s := range pairs {
		rec = appendString(rec, s)
	}
	return record(metaRecordUser, rec)
}

func record(typ byte, body []byte) []byte {
	b := []byte{typ}
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

// metaSeeds are metadata that stress the records: a later version's
// record, and malformed user records.
func metaSeeds(m NodeMeta) [][]byte {
	base := EncodeMeta(NodeMeta{Protocol: m.Protocol, Epoch: m.Epoch, Datacenter: m.Datacenter, Version: m.Version})
	cat := func(parts ...[]byte) []byte {
		out := append([]byte(nil), base...)
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	full := EncodeMeta(m)
	return [][]byte{
		cat(record(7, []byte("from the future"))),                        // skipped
		cat(record(7, nil), userRecord("env", "prod")),                   // skipped, then read
		full[:len(full)-1],                                               // truncated record
		cat(userRecord("env", "prod"), userRecord("env", "prod")),        // given twice
		cat(userRecord("rack", "1", "env", "prod")),                      // out of order
		cat(userRecord("env", "a", "env", "b")),                          // a key twice
		cat(userRecord("bad key", "x")),                                  // invalid key
		cat(userRecord("shoal-version", "x")),                            // reserved key
		cat(userRecord("env", "\xff")),                                   // not UTF-8
		cat(userRecord()),                                                // no pairs
		cat(record(metaRecordUser, append(userRecord("a", "b")[2:], 0))), // a byte left over
		cat([]byte{metaRecordUser, 0x7f}),                                // longer than the metadata
	}
}

func TestMetaUserRoundTrip(t *testing.T) {
	m := NodeMeta{Protocol: ProtocolMax, Epoch: 1 << 40, Datacenter: "dc1", Version: "1.2.3",
		User: map[string]string{"rack": "r12", "env": "prod", "az": "", "Team_A-1": "é"}}
	b := EncodeMeta(m)
	got, err := DecodeMeta(b)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, m)
	}
	if again := EncodeMeta(got); string(again) != string(b) {
		t.Fatalf("encoding is not canonical:\n%q\n%q", b, again)
	}
	// Without user metadata the bytes are what agents before node_meta
	// sent, and an empty map is no map.
	old := EncodeMeta(NodeMeta{Protocol: ProtocolMax, Epoch: 3, Datacenter: "dc1", Version: "1"})
	if withEmpty := EncodeMeta(NodeMeta{Protocol: ProtocolMax, Epoch: 3, Datacenter: "dc1", Version: "1", User: map[string]string{}}); string(withEmpty) != string(old) {
		t.Fatalf("empty user metadata changed the encoding: %q vs %q", withEmpty, old)
	}
	if got, err := DecodeMeta(old); err != nil || got.User != nil {
		t.Fatalf("metadata of an agent before node_meta: %+v, %v", got, err)
	}
}

// decodeMetaBeforeRecords is DecodeMeta as agents before node_meta have
// it: they read up to Version and ignore the rest.
func decodeMetaBeforeRecords(b []byte) (NodeMeta, error) {
	if len(b) < 2 || b[0] != metaMagic {
		return NodeMeta{}, ErrMalformed
	}
	m := NodeMeta{Protocol: b[1]}
	d := decoder{buf: b[2:]}
	m.Epoch = d.uvarint("epoch")
	m.Datacenter = d.string("datacenter")
	m.Version = d.string("version")
	return m, d.err
}

// An older agent in the same cluster keeps accepting an agent with user
// metadata: the protocol version is the same and it reads what it knows.
func TestMetaUserReadByOlderAgents(t *testing.T) {
	m := NodeMeta{Protocol: ProtocolMax, Epoch: 5, Datacenter: "dc1", Version: "2.0.0", User: map[string]string{"env": "prod"}}
	got, err := decodeMetaBeforeRecords(EncodeMeta(m))
	want := m
	want.User = nil
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("older agent read %+v, %v; want %+v", got, err, want)
	}
}

func TestMetaRecordsStrict(t *testing.T) {
	seeds := metaSeeds(NodeMeta{Protocol: ProtocolMax, Epoch: 2, Datacenter: "dc1", Version: "1"})
	accepted := map[int]map[string]string{0: nil, 1: {"env": "prod"}, 9: nil}
	for i, b := range seeds {
		m, err := DecodeMeta(b)
		want, ok := accepted[i]
		switch {
		case ok && (err != nil || !reflect.DeepEqual(m.User, want)):
			t.Errorf("seed %d %q: got %v, %v; want user %v", i, b, m.User, err, want)
		case !ok && err == nil:
			t.Errorf("seed %d %q: accepted as %+v", i, b, m)
		case !ok && !errors.Is(err, ErrMalformed):
			t.Errorf("seed %d: error %v does not wrap ErrMalformed", i, err)
		}
	}
}

// The largest user metadata the limits allow does not fit memberlist's
// node metadata: the agent must check the size of what it is given.
func TestMetaUserLimitsExceedMemberlist(t *testing.T) {
	user := map[string]string{}
	for i := range 32 {
		user[strings.Repeat(string(rune('a'+i%26)), 1+i)] = strings.Repeat("v", 512)
	}
	b := EncodeMeta(NodeMeta{Protocol: ProtocolMax, Epoch: 1, Datacenter: "dc1", Version: "1", User: user})
	if len(b) <= memberlist.MetaMaxSize {
		t.Fatalf("%d bytes fit; the size check would be dead code", len(b))
	}
	if m, err := DecodeMeta(b); err != nil || len(m.User) != 32 {
		t.Fatalf("decoding the largest user metadata: %d pairs, %v", len(m.User), err)
	}
}

// The protocol range and the refutation generation round-trip; agents of
// protocol 2 (one version byte, no range) read as that version alone.
func TestMetaProtocolsAndGen(t *testing.T) {
	m := NodeMeta{Protocol: 4, MinProtocol: 3, Epoch: 9, Datacenter: "dc1", Version: "1", Gen: 300}
	got, err := DecodeMeta(EncodeMeta(m))
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if lo, hi := got.Protocols(); lo != 3 || hi != 4 {
		t.Errorf("Protocols = %d, %d", lo, hi)
	}
	v2, err := DecodeMeta(EncodeMeta(NodeMeta{Protocol: 2, Epoch: 1, Datacenter: "dc1", Version: "0.1.0"}))
	if lo, hi := v2.Protocols(); err != nil || lo != 2 || hi != 2 {
		t.Errorf("a protocol 2 agent reads as %d to %d (%v)", lo, hi, err)
	}
	// A range above the version byte is refused.
	bad := append(EncodeMeta(NodeMeta{Protocol: 3, Epoch: 1, Datacenter: "dc1", Version: "1"}), record(metaRecordProtocols, []byte{4})...)
	if _, err := DecodeMeta(bad); !errors.Is(err, ErrMalformed) {
		t.Errorf("min protocol above max: %v", err)
	}
}
