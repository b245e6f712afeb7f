package gossip

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/coordinate"
)

// Network coordinates: every ack a node sends carries its Vivaldi
// coordinate (serf's coordinate package), and every ping it completes
// moves its own coordinate by the round trip it measured to the peer's.
// Any node can then estimate the round trip between any two nodes it holds
// coordinates for, without measuring it (?near, `shoal rtt`).
//
// Beside the coordinate the layer keeps, per peer, when it last heard from
// it: an answered ping, news the peer wrote, a push/pull with it. That is
// the staleness an answer shows for each instance.
//
// Acks also carry the summary of the catalog the answering agent serves
// (catalog.Summary): every probe thus tells the prober, for 10 bytes,
// whether a random peer serves the same catalog, and a difference that
// lasts starts an anti-entropy exchange (see exchange.go). This is what
// catches a change that was lost, or made while a link was down, without
// any traffic of its own while the cluster agrees.

// The ack payload: a version byte, the number of dimensions, then the
// vector, the error, the adjustment and the height as little-endian
// float32. float32 halves the payload (46 bytes for serf's 8 dimensions,
// in every ack, which shares its UDP packet with piggybacked gossip) and
// keeps 24 bits of mantissa: 60 ns at one second, far below what pings
// can measure.
const (
	coordVersion = 1
	// maxCoordDims bounds the dimensions a peer may claim.
	maxCoordDims = 32
	// maxCoordSeconds bounds every component: no real round trip comes
	// near it (serf refuses RTTs over 10 s), and it keeps every distance
	// far inside what a time.Duration holds.
	maxCoordSeconds = 1000
)

// EncodeCoordinate encodes a coordinate as an ack payload.
func EncodeCoordinate(c *coordinate.Coordinate) []byte {
	b := make([]byte, 2, 2+4*(len(c.Vec)+3))
	b[0], b[1] = coordVersion, byte(len(c.Vec))
	for _, v := range c.Vec {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
	}
	for _, v := range []float64{c.Error, c.Adjustment, c.Height} {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
	}
	return b
}

// DecodeCoordinate decodes an ack payload. It refuses anything but the
// exact encoding of a valid coordinate: finite components within
// ±maxCoordSeconds, with a non-negative error and height. Whether the
// coordinate is compatible with this node's (its dimensions) is the
// caller's question.
func DecodeCoordinate(b []byte) (*coordinate.Coordinate, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: coordinate of %d bytes", ErrMalformed, len(b))
	}
	if b[0] != coordVersion {
		return nil, fmt.Errorf("%w: coordinate version %d, this agent speaks %d", ErrMalformed, b[0], coordVersion)
	}
	dims := int(b[1])
	if dims == 0 || dims > maxCoordDims {
		return nil, fmt.Errorf("%w: coordinate of %d dimensions (1 to %d)", ErrMalformed, dims, maxCoordDims)
	}
	if want := 2 + 4*(dims+3); len(b) != want {
		return nil, fmt.Errorf("%w: coordinate of %d dimensions in %d bytes, want %d", ErrMalformed, dims, len(b), want)
	}
	f := make([]float64, dims+3)
	for i := range f {
		v := float64(math.Float32frombits(binary.LittleEndian.Uint32(b[2+4*i:])))
		// NaN fails both comparisons; ±Inf fails one.
		if !(v >= -maxCoordSeconds && v <= maxCoordSeconds) {
			return nil, fmt.Errorf("%w: coordinate component %d is %v, outside ±%d", ErrMalformed, i, v, maxCoordSeconds)
		}
		f[i] = v
	}
	c := &coordinate.Coordinate{Vec: f[:dims:dims], Error: f[dims], Adjustment: f[dims+1], Height: f[dims+2]}
	if c.Error < 0 || c.Height < 0 {
		return nil, fmt.Errorf("%w: coordinate with a negative error or height", ErrMalformed)
	}
	return c, nil
}

// contact is what the layer keeps of one peer.
type contact struct {
	heard atomic.Int64                          // clock() at the last news from the peer; 0: never
	coord atomic.Pointer[coordinate.Coordinate] // its latest coordinate; never changed once stored
}

// contacts holds the peers memberlist has announced, until they leave or
// the agent forgets them (ForgetExcept). Ping acks, gossip and push/pull
// update them concurrently; the lock only guards the map.
type contacts struct {
	start time.Time
	mu    sync.RWMutex
	m     map[string]*contact
}

// clock is the time since start on the monotonic clock, never 0: a wall
// clock that jumps must not make a peer look fresh or stale.
func (cs *contacts) clock() int64 { return int64(time.Since(cs.start)) + 1 }

func (cs *contacts) get(node string) *contact {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	return cs.m[node]
}

// add starts keeping a peer, if it is not kept already, and returns it.
func (cs *contacts) add(node string) *contact {
	if c := cs.get(node); c != nil {
		return c
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.m[node]
	if c == nil {
		c = new(contact)
		cs.m[node] = c
	}
	return c
}

func (cs *contacts) remove(node string) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	_, ok := cs.m[node]
	delete(cs.m, node)
	return ok
}

// heard records news from a peer now. Unknown names are ignored, so that
// names a peer merely claims (a snapshot's sender) cannot grow the map.
func (cs *contacts) heard(node string) {
	if c := cs.get(node); c != nil {
		c.heard.Store(cs.clock())
	}
}

// ping is memberlist's PingDelegate: coordinates ride on acks.
type ping struct{ g *Gossip }

var _ memberlist.PingDelegate = (*ping)(nil)

// The ack payload: a version byte, then records of a type byte, a length
// byte and that many bytes; records of unknown types are skipped.
const (
	ackVersion    = 2
	ackCoordinate = 1 // EncodeCoordinate
	ackSummary    = 2 // 8 bytes, big-endian
)

// EncodeAck encodes an ack payload: a coordinate (encoded) and a summary.
func EncodeAck(coord []byte, summary uint64) []byte {
	b := make([]byte, 0, 4+len(coord)+10)
	b = append(b, ackVersion, ackCoordinate, byte(len(coord)))
	b = append(b, coord...)
	b = append(b, ackSummary, 8)
	return binary.BigEndian.AppendUint64(b, summary)
}

// DecodeAck decodes an ack payload. A payload without a summary record
// returns ok false for it.
func DecodeAck(b []byte) (coord *coordinate.Coordinate, summary uint64, ok bool, err error) {
	if len(b) < 1 || b[0] != ackVersion {
		return nil, 0, false, fmt.Errorf("%w: ack payload of version %v", ErrMalformed, b[:min(1, len(b))])
	}
	b = b[1:]
	for len(b) > 0 {
		if len(b) < 2 || int(b[1]) > len(b)-2 {
			return nil, 0, false, fmt.Errorf("%w: truncated ack record", ErrMalformed)
		}
		typ, rec := b[0], b[2:2+b[1]]
		b = b[2+b[1]:]
		switch typ {
		case ackCoordinate:
			if coord, err = DecodeCoordinate(rec); err != nil {
				return nil, 0, false, err
			}
		case ackSummary:
			if len(rec) != 8 {
				return nil, 0, false, fmt.Errorf("%w: summary of %d bytes", ErrMalformed, len(rec))
			}
			summary, ok = binary.BigEndian.Uint64(rec), true
		}
	}
	return coord, summary, ok, nil
}

// AckPayload is called from memberlist's packet loop for every ping this
// node answers: the coordinate as last encoded and the current summary.
func (p *ping) AckPayload() []byte {
	return EncodeAck(*p.g.ackPayload.Load(), p.g.store.Summary())
}

// NotifyPingComplete is called by memberlist's prober after a direct ping
// was answered (not an indirect one: its round trip is not the peer's).
// other is memberlist's own node; only its name is read.
func (p *ping) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	g := p.g
	// memberlist pings only its members, so this cannot grow the map
	// without bound; it also restores a peer ForgetExcept dropped while
	// it was joining.
	c := g.contacts.add(other.Name)
	c.heard.Store(g.contacts.clock())
	if len(payload) == 0 {
		return // not a Shoal agent's ack: nothing to learn
	}
	theirs, summary, hasSummary, err := DecodeAck(payload)
	if err != nil {
		g.stats.Malformed.Add(1)
		g.log.Debug("ignored a ping ack's payload", "from", other.Name, "err", err)
		return
	}
	if hasSummary {
		g.peerSummary(other.Name, summary)
	}
	if theirs == nil {
		return
	}
	ours := g.coord.GetCoordinate()
	if !ours.IsCompatibleWith(theirs) {
		g.log.Debug("ignored a coordinate of other dimensions", "from", other.Name, "dimensions", len(theirs.Vec), "ours", len(ours.Vec))
		return
	}
	if g.pingRTT != nil {
		rtt = g.pingRTT(other.Name, rtt)
	}
	c.coord.Store(theirs)
	updated, err := g.coord.Update(other.Name, theirs, rtt)
	if err != nil {
		g.log.Debug("coordinate not updated", "from", other.Name, "rtt", rtt, "err", err)
		return
	}
	b := EncodeCoordinate(updated)
	g.ackPayload.Store(&b)
}

// Coordinate returns the network coordinate of a node: this node's own,
// or the one a peer last sent in an ack; false if there is none.
func (g *Gossip) Coordinate(node string) (*coordinate.Coordinate, bool) {
	if node == g.name {
		return g.coord.GetCoordinate(), true
	}
	if c := g.contacts.get(node); c != nil {
		if co := c.coord.Load(); co != nil {
			return co.Clone(), true
		}
	}
	return nil, false
}

// LastHeard sets ago[i] to how long ago this node last heard from
// nodes[i]: an answered ping, news it wrote, or a push/pull with it. It
// is 0 for this node and -1 for a node never heard from (or forgotten).
// ago must be as long as nodes.
func (g *Gossip) LastHeard(nodes []string, ago []time.Duration) {
	now := g.contacts.clock()
	g.contacts.mu.RLock()
	defer g.contacts.mu.RUnlock()
	for i, n := range nodes {
		ago[i] = -1
		if n == g.name {
			ago[i] = 0
		} else if c := g.contacts.m[n]; c != nil {
			if t := c.heard.Load(); t != 0 {
				ago[i] = time.Duration(max(now-t, 0))
			}
		}
	}
}

// ForgetExcept drops what the layer keeps (coordinate, last heard, leave,
// broadcast tree) of every node keep rejects: the owner calls it with the
// nodes its catalog still holds, so that nodes reaped there are forgotten
// here too. keep is called without the layer's locks.
func (g *Gossip) ForgetExcept(keep func(node string) bool) {
	g.contacts.mu.RLock()
	names := make([]string, 0, len(g.contacts.m))
	for n := range g.contacts.m {
		names = append(names, n)
	}
	g.contacts.mu.RUnlock()
	g.mu.Lock()
	for n := range g.leaving {
		names = append(names, n)
	}
	for n := range g.lastPeer {
		names = append(names, n)
	}
	for n := range g.seen {
		names = append(names, n)
	}
	g.mu.Unlock()
	for _, n := range names {
		if n != g.name && !keep(n) {
			g.forgetNode(n)
		}
	}
}

// forget drops a peer's contact and its round trip samples.
func (g *Gossip) forget(node string) {
	if g.contacts.remove(node) {
		g.coord.ForgetNode(node)
	}
}
