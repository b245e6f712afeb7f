package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// freePortBlock returns a base such that base…base+n-1 are free for TCP
// and UDP on 127.0.0.1 right now, below the ranges the runner hands out
// (20000 and up) and below the ephemeral ports.
func freePortBlock(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base := 10000 + rand.IntN(10000-n)
		if portsFree(base, base+n-1) {
			return base
		}
	}
	t.Fatalf("no %d free ports in a row", n)
	return 0
}

// newTestByteCounter makes a counter or skips the test, saying why.
func newTestByteCounter(t *testing.T, ctx context.Context) *byteCounter {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("counting bytes needs root for nftables")
	}
	if _, err := findNft(); err != nil {
		t.Skipf("no nft: %v (apt-get install nftables)", err)
	}
	b, err := newByteCounter(ctx)
	if err != nil {
		t.Skipf("nftables unusable here: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Errorf("closing counter: %v", err)
		}
	})
	return b
}

// udpSend sends count datagrams of size bytes from one socket to the
// other and reads them all back, so they have passed the output hook.
func udpSend(t *testing.T, from, to net.PacketConn, count, size int) {
	t.Helper()
	buf := bytes.Repeat([]byte{'x'}, size)
	rbuf := make([]byte, size+1)
	for range count {
		if _, err := from.WriteTo(buf, to.LocalAddr()); err != nil {
			t.Fatalf("udp send: %v", err)
		}
		if err := to.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, _, err := to.ReadFrom(rbuf)
		if err != nil || n != size {
			t.Fatalf("udp receive: %d bytes, %v", n, err)
		}
	}
}

// tcpExchange dials the listener, sends up bytes and reads down bytes
// back, then closes the connection.
func tcpExchange(t *testing.T, l net.Listener, up, down int) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		if _, err := io.CopyN(io.Discard, c, int64(up)); err != nil {
			errc <- fmt.Errorf("server read: %w", err)
			return
		}
		_, err = c.Write(bytes.Repeat([]byte{'y'}, down))
		errc <- err
	}()
	c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(bytes.Repeat([]byte{'x'}, up)); err != nil {
		t.Fatalf("client write: %v", err)
	}
	if _, err := io.CopyN(io.Discard, c, int64(down)); err != nil {
		t.Fatalf("client read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestBytesCountsRangeOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := newTestByteCounter(t, ctx)

	// Ports: base+0 and base+8 just outside the watched range
	// base+1…base+7; base+9…base+12 a second, quiet, watched range.
	base := freePortBlock(t, 13)
	lo, hi := base+1, base+7
	w, err := b.Watch(ctx, lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	quiet, err := b.Watch(ctx, base+9, base+12)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Read(ctx, w); err != nil || got != 0 {
		t.Fatalf("fresh watch reads %d, %v; want 0", got, err)
	}

	listen := func(p int) net.PacketConn {
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close() })
		return u
	}
	listenTCP := func(p int) net.Listener {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}

	// In range: UDP between two listeners, TCP to a listener and back.
	const (
		udpCount, udpSize = 50, 1000
		tcpUp, tcpDown    = 40_000, 60_000
	)
	udpSend(t, listen(lo), listen(hi), udpCount, udpSize)
	tcpExchange(t, listenTCP(lo+1), tcpUp, tcpDown)
	inRange := uint64(udpCount*udpSize + tcpUp + tcpDown)

	// Out of range, on the ports either side of it, ten times as much.
	udpSend(t, listen(base), listen(base+8), 10*udpCount, udpSize)
	tcpExchange(t, listenTCP(base+8), 10*tcpUp, 10*tcpDown)

	got, err := b.Read(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("payload %d B in range, counted %d B (%.1f%% headers and handshakes)", inRange, got, 100*(float64(got)/float64(inRange)-1))
	if got < inRange {
		t.Errorf("counted %d B, less than the %d B of payload sent in range", got, inRange)
	}
	// Headers are some 30-70 B a packet; anything near the out-of-range
	// traffic (ten times as much) means it was counted.
	if got > inRange*3/2 {
		t.Errorf("counted %d B for %d B of payload: traffic outside the range counted", got, inRange)
	}
	if q, err := b.Read(ctx, quiet); err != nil || q != 0 {
		t.Errorf("quiet range counted %d B (%v), want 0", q, err)
	}

	// Counters only grow.
	udpSend(t, listen(lo+2), listen(lo+3), 1, 500)
	again, err := b.Read(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if again < got+500 {
		t.Errorf("after 500 more bytes: %d, was %d", again, got)
	}
}

func TestBytesClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := newTestByteCounter(t, ctx)
	w, err := b.Watch(ctx, 1000, 1001)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Watch(ctx, 5, 4); err == nil {
		t.Error("Watch took the range 5-4")
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.Read(ctx, w); err == nil {
		t.Error("Read after Close succeeded")
	}
	out, err := exec.CommandContext(ctx, b.nft, "list", "tables").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list tables: %v: %s", err, out)
	}
	if strings.Contains(string(out), b.table) {
		t.Errorf("table %s still there after Close:\n%s", b.table, out)
	}
}

func TestBytesParseCounters(t *testing.T) {
	out := []byte(`{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
		{"counter": {"family": "inet", "name": "w1_udp", "table": "t", "handle": 2, "packets": 3, "bytes": 1234}},
		{"counter": {"family": "inet", "name": "w1_tcp_in", "table": "t", "handle": 3, "packets": 0, "bytes": 0}},
		{"rule": {"family": "inet", "table": "t", "chain": "out", "handle": 6, "expr": [{"counter": {"packets": 9, "bytes": 99}}]}}]}`)
	got, err := parseNftCounters(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["w1_udp"] != 1234 || got["w1_tcp_in"] != 0 {
		t.Errorf("parsed %v", got)
	}
	if _, err := parseNftCounters([]byte("Error: oops")); err == nil {
		t.Error("parsed garbage")
	}
	if _, err := parseNftCounters([]byte("{")); err == nil {
		t.Error("no error for truncated JSON")
	}
}
