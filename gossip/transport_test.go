package gossip

import (
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// A packet reaches memberlist in a buffer of its own size, not in the
// 64 KiB buffer the socket was read into, so queued messages hold only
// their bytes; a dynamic port is resolved into the config.
func TestCompactTransportCopiesPackets(t *testing.T) {
	newTr := func() (*compactTransport, *memberlist.Config) {
		mc := memberlist.DefaultLANConfig()
		mc.BindAddr, mc.BindPort, mc.LogOutput = "127.0.0.1", 0, io.Discard
		tr, err := transportFor(mc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Shutdown() })
		if mc.BindPort == 0 || mc.AdvertisePort != mc.BindPort {
			t.Fatalf("dynamic port not resolved: bind %d, advertise %d", mc.BindPort, mc.AdvertisePort)
		}
		return tr, mc
	}
	a, _ := newTr()
	b, bc := newTr()
	msg := []byte("an update of about a hundred bytes, as Shoal's entries are")
	to := net.JoinHostPort("127.0.0.1", strconv.Itoa(bc.BindPort))
	if _, err := a.WriteToAddress(msg, memberlist.Address{Addr: to}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-b.PacketCh():
		if string(p.Buf) != string(msg) {
			t.Fatalf("received %q, sent %q", p.Buf, msg)
		}
		if cap(p.Buf) > 2*len(msg) {
			t.Errorf("a %d-byte packet holds a buffer of %d bytes", len(p.Buf), cap(p.Buf))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no packet within 10s")
	}
}

// Shutdown returns even when memberlist has stopped reading packets.
func TestCompactTransportShutdownWithPacketWaiting(t *testing.T) {
	mc := memberlist.DefaultLANConfig()
	mc.BindAddr, mc.BindPort, mc.LogOutput = "127.0.0.1", 0, io.Discard
	tr, err := transportFor(mc)
	if err != nil {
		t.Fatal(err)
	}
	to := net.JoinHostPort("127.0.0.1", strconv.Itoa(mc.BindPort))
	if _, err := tr.WriteToAddress([]byte("nobody reads this"), memberlist.Address{Addr: to}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- tr.Shutdown() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown blocked")
	}
}
