package memnet

import (
	"io"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// Packets arrive after the latency, from the sender's address, and every
// byte sent is counted; with loss 1 nothing arrives.
func TestPackets(t *testing.T) {
	n := &Network{Latency: 20 * time.Millisecond}
	a, b := n.NewTransport(), n.NewTransport()
	start := time.Now()
	if _, err := a.WriteTo([]byte("hello"), b.Addr()); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-b.PacketCh():
		if string(p.Buf) != "hello" || p.From.String() != a.Addr() {
			t.Errorf("got %q from %s", p.Buf, p.From)
		}
		if d := time.Since(start); d < 20*time.Millisecond {
			t.Errorf("arrived after %v, before the latency", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no packet")
	}
	if a.Sent.Load() != 5 || n.Bytes() != 5 {
		t.Errorf("counted %d (network %d), want 5", a.Sent.Load(), n.Bytes())
	}
	// By first byte: 'h' is past the kinds told apart, so it is in the
	// last; a memberlist ping (type 0) in the first.
	a.WriteTo([]byte{0, 1, 2}, b.Addr())
	if k := n.PacketBytes(); k[0] != 3 || k[PacketKinds-1] != 5 || n.StreamBytes() != 0 {
		t.Errorf("by kind %v, streams %d", k, n.StreamBytes())
	}
	lossy := &Network{Loss: 1}
	c, d := lossy.NewTransport(), lossy.NewTransport()
	c.WriteTo([]byte("x"), d.Addr())
	c.WriteTo([]byte("x"), "10.9.9.9:7946") // nobody there: lost too
	select {
	case p := <-d.PacketCh():
		t.Fatalf("a packet got through loss 1: %q", p.Buf)
	case <-time.After(50 * time.Millisecond):
	}
}

// A stream carries bytes both ways and counts them; shutting down either
// end's transport closes it, so that a writer never blocks for ever on a
// peer that went away (a pipe has no buffer to absorb the write).
func TestStreams(t *testing.T) {
	n := &Network{}
	a, b := n.NewTransport(), n.NewTransport()
	done := make(chan []byte)
	go func() {
		c := <-b.StreamCh()
		buf, _ := io.ReadAll(c)
		done <- buf
	}()
	conn, err := a.DialAddressTimeout(memberlist.Address{Addr: b.Addr()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("push/pull"))
	conn.Close()
	if got := <-done; string(got) != "push/pull" {
		t.Fatalf("read %q", got)
	}
	if a.Sent.Load() != 9 || n.StreamBytes() != 9 || n.Streams() != 1 {
		t.Errorf("counted %d bytes (streams %d)", a.Sent.Load(), n.StreamBytes())
	}

	// The receiver goes away with the stream unread.
	stuck, err := a.DialAddressTimeout(memberlist.Address{Addr: b.Addr()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error)
	go func() {
		_, err := stuck.Write(make([]byte, 1<<16))
		wrote <- err
	}()
	b.Shutdown()
	select {
	case err := <-wrote:
		if err == nil {
			t.Error("a write to a peer that went away succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the write is still blocked after the peer shut down")
	}
	if _, err := a.DialAddressTimeout(memberlist.Address{Addr: b.Addr()}, time.Second); err == nil {
		t.Error("dialled a transport that shut down")
	}
}

// A network that is down delivers nothing and refuses dials.
func TestDown(t *testing.T) {
	n := &Network{}
	a, b := n.NewTransport(), n.NewTransport()
	n.Down()
	a.WriteTo([]byte("x"), b.Addr())
	if _, err := a.DialTimeout(b.Addr(), time.Second); err == nil {
		t.Fatal("dialled through a network that is down")
	}
	select {
	case p := <-b.PacketCh():
		t.Fatalf("a packet got through: %q", p.Buf)
	case <-time.After(50 * time.Millisecond): // nothing may come: 50 ms is many latencies of 0
	}
}
