package gossip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/coordinate"
)

// f32 rounds to what the wire carries.
func f32(v float64) float64 { return float64(float32(v)) }

func randCoordinate(r *rand.Rand, dims int) *coordinate.Coordinate {
	c := &coordinate.Coordinate{Vec: make([]float64, dims),
		Error: f32(r.Float64() * 1.5), Adjustment: f32(r.NormFloat64() * 1e-3), Height: f32(r.Float64() * 1e-2)}
	for i := range c.Vec {
		c.Vec[i] = f32(r.NormFloat64() * 0.05)
	}
	return c
}

func TestCoordinateRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 500 {
		dims := 1 + i%maxCoordDims
		want := randCoordinate(r, dims)
		b := EncodeCoordinate(want)
		if len(b) != 2+4*(dims+3) {
			t.Fatalf("%d dimensions encode in %d bytes", dims, len(b))
		}
		got, err := DecodeCoordinate(b)
		if err != nil {
			t.Fatalf("decode %+v: %v", want, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip changed the coordinate:\n got %+v\nwant %+v", got, want)
		}
	}
	// serf's default coordinate, as every agent starts with, fits an ack
	// with room to spare: 46 bytes.
	if n := len(EncodeCoordinate(coordinate.NewCoordinate(coordinate.DefaultConfig()))); n != 46 {
		t.Errorf("default coordinate encodes in %d bytes, want 46", n)
	}
}

// A coordinate the Vivaldi client produced survives the wire within
// float32's precision.
func TestCoordinateFromClientRoundTrip(t *testing.T) {
	cl, err := coordinate.NewClient(coordinate.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	other := coordinate.NewCoordinate(coordinate.DefaultConfig())
	other.Vec[0] = 0.02
	for range 20 {
		if _, err := cl.Update("peer", other, 17*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	c := cl.GetCoordinate()
	got, err := DecodeCoordinate(EncodeCoordinate(c))
	if err != nil {
		t.Fatal(err)
	}
	if d := got.DistanceTo(other) - c.DistanceTo(other); d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("distance moved by %v over the wire", d)
	}
}

// encodeRaw encodes components as they are, for payloads no coordinate
// would encode to.
func encodeRaw(version, dims byte, comps ...float32) []byte {
	b := []byte{version, dims}
	for _, v := range comps {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func TestDecodeCoordinateRefuses(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	good := []float32{0.01, 0.02, 1.5, 0, 1e-5}
	tests := map[string][]byte{
		"empty":              nil,
		"header only":        {coordVersion, 2},
		"other version":      encodeRaw(2, 2, good...),
		"no dimensions":      encodeRaw(coordVersion, 0, 1.5, 0, 1e-5),
		"too many":           encodeRaw(coordVersion, maxCoordDims+1, make([]float32, maxCoordDims+4)...),
		"short":              encodeRaw(coordVersion, 2, good[:4]...),
		"trailing":           encodeRaw(coordVersion, 2, append(good, 0)...),
		"dims lie":           encodeRaw(coordVersion, 3, good...),
		"NaN vec":            encodeRaw(coordVersion, 2, nan, 0.02, 1.5, 0, 1e-5),
		"+Inf error":         encodeRaw(coordVersion, 2, 0.01, 0.02, inf, 0, 1e-5),
		"-Inf adjustment":    encodeRaw(coordVersion, 2, 0.01, 0.02, 1.5, -inf, 1e-5),
		"NaN height":         encodeRaw(coordVersion, 2, 0.01, 0.02, 1.5, 0, nan),
		"huge vec":           encodeRaw(coordVersion, 2, 1e30, 0.02, 1.5, 0, 1e-5),
		"negative error":     encodeRaw(coordVersion, 2, 0.01, 0.02, -1, 0, 1e-5),
		"negative height":    encodeRaw(coordVersion, 2, 0.01, 0.02, 1.5, 0, -1e-5),
		"huge adjustment":    encodeRaw(coordVersion, 2, 0.01, 0.02, 1.5, -2000, 1e-5),
		"just past boundary": encodeRaw(coordVersion, 1, maxCoordSeconds*1.0001, 1.5, 0, 0),
	}
	for name, b := range tests {
		if c, err := DecodeCoordinate(b); err == nil || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: decoded %+v, %v; want ErrMalformed", name, c, err)
		}
	}
	if _, err := DecodeCoordinate(encodeRaw(coordVersion, 2, good...)); err != nil {
		t.Errorf("a good payload: %v", err)
	}
	if _, err := DecodeCoordinate(encodeRaw(coordVersion, 1, -maxCoordSeconds, maxCoordSeconds, maxCoordSeconds, 0)); err != nil {
		t.Errorf("components at the bounds: %v", err)
	}
}

// FuzzDecodeCoordinate: ack payloads come from the network. Decoding
// never panics; what it accepts is a valid, bounded coordinate whose
// encoding is exactly the input.
func FuzzDecodeCoordinate(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, dims := range []int{1, 2, 8, maxCoordDims} {
		f.Add(EncodeCoordinate(randCoordinate(r, dims)))
	}
	f.Add([]byte{})
	f.Add([]byte{coordVersion, 8})
	f.Add(encodeRaw(coordVersion, 1, float32(math.NaN()), 1, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCoordinate(b)
		if err != nil {
			if c != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v with coordinate %+v", err, c)
			}
			return
		}
		if !c.IsValid() || c.Error < 0 || c.Height < 0 || len(c.Vec) == 0 || len(c.Vec) > maxCoordDims {
			t.Fatalf("accepted a bad coordinate %+v", c)
		}
		if d := c.DistanceTo(c); d < 0 || d > 100*maxCoordSeconds*time.Second {
			t.Fatalf("distance to itself %v", d)
		}
		if again := EncodeCoordinate(c); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding changed the payload:\n got %x\nwant %x", again, b)
		}
	})
}

// newPingGossip is a Gossip with only what the ping delegate uses.
func newPingGossip(t *testing.T, name string) *Gossip {
	t.Helper()
	cl, err := coordinate.NewClient(coordinate.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	g := bareGossip(name)
	g.log, g.coord = slog.New(slog.DiscardHandler), cl
	ack := EncodeCoordinate(cl.GetCoordinate())
	g.ackPayload.Store(&ack)
	return g
}

// Two nodes pinging each other with a fixed round trip: the coordinates
// move apart until their distance estimates it, and each caches the
// other's latest coordinate.
func TestPingsMoveCoordinates(t *testing.T) {
	a, b := newPingGossip(t, "a"), newPingGossip(t, "b")
	a.contacts.add("b")
	b.contacts.add("a")
	pa, pb := &ping{g: a}, &ping{g: b}
	const rtt = 20 * time.Millisecond
	for range 200 {
		pa.NotifyPingComplete(&memberlist.Node{Name: "b"}, rtt, pb.AckPayload())
		pb.NotifyPingComplete(&memberlist.Node{Name: "a"}, rtt, pa.AckPayload())
	}
	ca, _ := a.Coordinate("a")
	cb, ok := a.Coordinate("b")
	if !ok {
		t.Fatal("a holds no coordinate for b")
	}
	if d := ca.DistanceTo(cb); d < 15*time.Millisecond || d > 25*time.Millisecond {
		t.Errorf("estimated round trip %v, want about %v", d, rtt)
	}
	if _, ok := a.Coordinate("c"); ok {
		t.Error("a coordinate for a node never heard of")
	}
}

func TestPingIgnoresBadCoordinates(t *testing.T) {
	g := newPingGossip(t, "a")
	g.contacts.add("b")
	p := &ping{g: g}
	before := p.AckPayload()

	other := coordinate.DefaultConfig()
	other.Dimensionality = 3
	p.NotifyPingComplete(&memberlist.Node{Name: "b"}, time.Millisecond, EncodeAck(EncodeCoordinate(coordinate.NewCoordinate(other)), 0))
	p.NotifyPingComplete(&memberlist.Node{Name: "b"}, time.Millisecond, EncodeAck([]byte{coordVersion, 8, 1, 2, 3}, 0))
	p.NotifyPingComplete(&memberlist.Node{Name: "b"}, time.Millisecond, nil)
	if _, ok := g.Coordinate("b"); ok {
		t.Error("kept a coordinate of other dimensions or a malformed one")
	}
	if !bytes.Equal(p.AckPayload(), before) {
		t.Error("this node's coordinate moved on a bad coordinate")
	}
	if n := g.stats.Malformed.Load(); n != 1 {
		t.Errorf("%d malformed payloads counted, want 1 (an empty one is an older agent's)", n)
	}
	// The acks still prove b alive.
	ago := make([]time.Duration, 1)
	g.LastHeard([]string{"b"}, ago)
	if ago[0] < 0 {
		t.Error("an answered ping did not count as hearing from b")
	}
}

func TestLastHeardAndForget(t *testing.T) {
	g := newPingGossip(t, "a")
	g.contacts.add("b")
	g.contacts.add("c")
	g.contacts.heard("b")
	g.contacts.heard("zz") // not a member: ignored
	(&ping{g: g}).NotifyPingComplete(&memberlist.Node{Name: "c"}, time.Millisecond, EncodeAck(EncodeCoordinate(coordinate.NewCoordinate(coordinate.DefaultConfig())), 0))

	nodes := []string{"a", "b", "c", "d", "zz"}
	ago := make([]time.Duration, len(nodes))
	g.LastHeard(nodes, ago)
	if ago[0] != 0 || ago[1] < 0 || ago[1] > time.Minute || ago[2] < 0 || ago[3] != -1 || ago[4] != -1 {
		t.Fatalf("last heard %v for %v", ago, nodes)
	}
	if _, ok := g.Coordinate("c"); !ok {
		t.Fatal("no coordinate for c")
	}

	g.ForgetExcept(func(n string) bool { return n == "b" })
	g.LastHeard(nodes, ago)
	if ago[1] < 0 || ago[2] != -1 {
		t.Errorf("after forgetting c: %v", ago)
	}
	if _, ok := g.Coordinate("c"); ok {
		t.Error("c's coordinate outlived it")
	}
	if _, ok := g.Coordinate("a"); !ok {
		t.Error("this node has no coordinate")
	}
}

// An ack carries the answering agent's summary beside its coordinate;
// records of a later version are skipped.
func TestAckRoundTrip(t *testing.T) {
	c := EncodeCoordinate(coordinate.NewCoordinate(coordinate.DefaultConfig()))
	b := EncodeAck(c, 0xfeedface)
	got, sum, ok, err := DecodeAck(b)
	if err != nil || !ok || sum != 0xfeedface || got == nil {
		t.Fatalf("DecodeAck = %v, %x, %v, %v", got, sum, ok, err)
	}
	later := append(append([]byte(nil), b...), 9, 2, 'h', 'i')
	if _, sum, ok, err := DecodeAck(later); err != nil || !ok || sum != 0xfeedface {
		t.Errorf("a later version's ack: %x, %v, %v", sum, ok, err)
	}
	for name, bad := range map[string][]byte{"empty": nil, "version 1": c, "truncated": b[:len(b)-1], "short summary": {ackVersion, ackSummary, 7, 0, 0, 0, 0, 0, 0, 0}} {
		if _, _, _, err := DecodeAck(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzDecodeAck: ack payloads come from any peer.
func FuzzDecodeAck(f *testing.F) {
	f.Add(EncodeAck(EncodeCoordinate(coordinate.NewCoordinate(coordinate.DefaultConfig())), 7))
	f.Add([]byte{ackVersion})
	f.Add([]byte{ackVersion, 9, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, _, _, err := DecodeAck(b)
		if err == nil && c != nil && !c.IsValid() {
			t.Fatalf("accepted an invalid coordinate %+v", c)
		}
	})
}
