// Package memnet is an in-memory network for memberlist: transports that
// carry packets and streams between agents of one process, with latency,
// jitter and packet loss injected and every byte counted, so that a
// benchmark can run a thousand real agents on one machine.
//
// Packets are delivered after the latency (plus up to the jitter, so they
// can arrive out of order), or lost with the given probability, or
// dropped when the receiver's queue is full (as a socket buffer would).
// Streams are reliable (they stand for TCP): a dial takes one latency,
// then bytes flow through an in-memory pipe.
package memnet

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Network connects Transports. Set its fields before the first
// transport is made.
type Network struct {
	Latency time.Duration // one way
	Jitter  time.Duration // added to each packet's latency, uniformly at random
	Loss    float64       // the probability that a packet is lost

	mu    sync.RWMutex
	nodes map[string]*Transport
	next  uint32
	down  atomic.Bool // Down: nothing is delivered any more

	// kinds counts packet bytes by their first byte, which for memberlist
	// is the message type (ping, ack, alive, compound, user, …); the
	// last counts every first byte of that value or more.
	kinds [PacketKinds]atomic.Uint64
	// dials counts the streams opened.
	dials atomic.Uint64
}

// Streams returns how many streams have been opened.
func (n *Network) Streams() uint64 { return n.dials.Load() }

// PacketKinds is how many packet kinds PacketBytes tells apart.
const PacketKinds = 16

// PacketBytes returns the bytes of packets sent so far, by their first
// byte (memberlist's message type; the last holds every higher one).
func (n *Network) PacketBytes() (out [PacketKinds]uint64) {
	for i := range out {
		out[i] = n.kinds[i].Load()
	}
	return out
}

// StreamBytes returns the bytes written to streams so far, both ways.
func (n *Network) StreamBytes() uint64 {
	return n.sum(func(t *Transport) uint64 { return t.Streamed.Load() })
}

// sum adds up one counter over every transport.
func (n *Network) sum(counter func(*Transport) uint64) uint64 {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var sum uint64
	for _, t := range n.nodes {
		sum += counter(t)
	}
	return sum
}

// Down cuts every link for good: packets are lost and dials fail, so a
// thousand agents shutting down at once do not each wait out a graceful
// leave that nobody can receive.
func (n *Network) Down() { n.down.Store(true) }

// queueDepth is how many packets a transport holds for its memberlist
// before it drops them.
const queueDepth = 4096

// NewTransport returns a transport with an address of its own on the
// network (10.x.y.z:7946).
func (n *Network) NewTransport() *Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes == nil {
		n.nodes = make(map[string]*Transport)
	}
	n.next++
	ip := net.IPv4(10, byte(n.next>>16), byte(n.next>>8), byte(n.next))
	t := &Transport{
		net:      n,
		ip:       ip,
		port:     7946,
		addr:     net.JoinHostPort(ip.String(), "7946"),
		packets:  make(chan *memberlist.Packet, queueDepth),
		streams:  make(chan net.Conn, 64),
		shutdown: make(chan struct{}),
	}
	n.nodes[t.addr] = t
	return t
}

// Bytes returns what every transport sent, packets and streams.
func (n *Network) Bytes() uint64 {
	return n.sum(func(t *Transport) uint64 { return t.Sent.Load() })
}

func (n *Network) lookup(addr string) *Transport {
	if n.down.Load() {
		return nil
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.nodes[addr]
}

// delay draws a packet's fate from math/rand/v2's global source, which
// needs no lock: a thousand agents sending at once do not queue on it.
func (n *Network) delay(packet bool) (time.Duration, bool) {
	if packet && n.Loss > 0 && rand.Float64() < n.Loss {
		return 0, false
	}
	d := n.Latency
	if packet && n.Jitter > 0 {
		d += time.Duration(rand.Int64N(int64(n.Jitter)))
	}
	return d, true
}

// Transport is one agent's end of the network: a
// memberlist.NodeAwareTransport.
type Transport struct {
	net      *Network
	ip       net.IP
	port     int
	addr     string
	packets  chan *memberlist.Packet
	streams  chan net.Conn
	shutdown chan struct{}
	once     sync.Once

	// conns are the streams with an end at this transport; Shutdown
	// closes them, as a host going away resets its TCP connections (a
	// pipe, unlike a socket, would otherwise block its writer for ever).
	mu    sync.Mutex
	conns map[*conn]bool

	// Sent counts the bytes this transport sent: packets, and what was
	// written to its streams; Streamed the latter alone. Dropped counts
	// the packets it could not take because its queue was full.
	Sent, Streamed, Dropped atomic.Uint64
}

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

// Addr is the transport's address, ip:port.
func (t *Transport) Addr() string { return t.addr }

// FinalAdvertiseAddr is the transport's own address.
func (t *Transport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.ip, t.port, nil
}

// WriteTo sends a packet to an address.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a packet: delivered after the network's latency,
// or lost.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	t.Sent.Add(uint64(len(b)))
	if len(b) > 0 {
		t.net.kinds[min(int(b[0]), PacketKinds-1)].Add(uint64(len(b)))
	}
	dst := t.net.lookup(a.Addr)
	d, ok := t.net.delay(true)
	if dst == nil || !ok {
		return now, nil // lost on the wire, as UDP is
	}
	p := &memberlist.Packet{Buf: append([]byte(nil), b...), From: &net.UDPAddr{IP: t.ip, Port: t.port}}
	time.AfterFunc(d, func() {
		p.Timestamp = time.Now()
		select {
		case dst.packets <- p:
		case <-dst.shutdown:
		default:
			dst.Dropped.Add(1)
		}
	})
	return now, nil
}

// PacketCh delivers the packets sent to this transport.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// DialTimeout opens a stream to an address.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream: after one latency the other end has
// it, as after a TCP handshake.
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	dst := t.net.lookup(a.Addr)
	if dst == nil {
		return nil, fmt.Errorf("dial %s: %w", a.Addr, errUnreachable)
	}
	d, _ := t.net.delay(false)
	if d > timeout {
		return nil, fmt.Errorf("dial %s: i/o timeout", a.Addr)
	}
	time.Sleep(d)
	t.net.dials.Add(1)
	client, server := net.Pipe()
	sc := &conn{Conn: server, counter: &dst.Sent, streamed: &dst.Streamed, remote: t.tcpAddr()}
	cc := &conn{Conn: client, counter: &t.Sent, streamed: &t.Streamed, remote: dst.tcpAddr()}
	sc.peer, cc.peer = cc, sc
	if !dst.track(sc) || !t.track(cc) {
		sc.Close()
		return nil, fmt.Errorf("dial %s: %w", a.Addr, errUnreachable)
	}
	select {
	case dst.streams <- sc:
	case <-dst.shutdown:
		sc.Close()
		return nil, fmt.Errorf("dial %s: %w", a.Addr, errUnreachable)
	case <-time.After(timeout):
		sc.Close()
		return nil, fmt.Errorf("dial %s: i/o timeout", a.Addr)
	}
	return cc, nil
}

// track adds a stream end to the transport, unless it is shut down.
func (t *Transport) track(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns == nil {
		t.conns = make(map[*conn]bool)
	}
	select {
	case <-t.shutdown:
		return false
	default:
	}
	t.conns[c] = true
	c.owner = t
	return true
}

func (t *Transport) untrack(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.conns, c)
}

var errUnreachable = errors.New("no route to host")

func (t *Transport) tcpAddr() net.Addr { return &net.TCPAddr{IP: t.ip, Port: t.port} }

// StreamCh delivers the streams dialed to this transport.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown takes the transport off the network and closes its streams.
func (t *Transport) Shutdown() error {
	t.once.Do(func() {
		t.net.mu.Lock()
		delete(t.net.nodes, t.addr)
		t.net.mu.Unlock()
		t.mu.Lock()
		close(t.shutdown)
		conns := make([]*conn, 0, len(t.conns))
		for c := range t.conns {
			conns = append(conns, c)
		}
		t.mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return nil
}

// conn is one end of a stream, counting what it writes. Closing either
// end closes both.
type conn struct {
	net.Conn
	counter  *atomic.Uint64
	streamed *atomic.Uint64
	remote   net.Addr
	owner    *Transport
	peer     *conn
	closed   atomic.Bool
}

func (c *conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.Conn.Close()
	if c.owner != nil {
		c.owner.untrack(c)
	}
	if c.peer != nil {
		c.peer.Close()
	}
	return nil
}

func (c *conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.counter.Add(uint64(n))
	c.streamed.Add(uint64(n))
	if errors.Is(err, io.ErrClosedPipe) {
		err = net.ErrClosed
	}
	return n, err
}

func (c *conn) RemoteAddr() net.Addr { return c.remote }
