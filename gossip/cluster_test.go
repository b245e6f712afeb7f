package gossip

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-sd/shoal/catalog"
)

// tnode is one gossip layer on real loopback sockets with a real catalog:
// the layer as the agent runs it, without the rest of the agent.
type tnode struct {
	name string
	st   *catStore
	g    *Gossip
}

func startNode(t *testing.T, name string, protoMax uint8, extra []byte) *tnode {
	t.Helper()
	mc := memberlist.DefaultLANConfig()
	mc.Name, mc.BindAddr, mc.BindPort, mc.LogOutput = name, "127.0.0.1", 0, io.Discard
	mc.GossipInterval, mc.ProbeInterval, mc.ProbeTimeout = 20*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	mc.PushPullInterval, mc.TCPTimeout = time.Second, time.Second
	st := newCatStore(name, uint64(time.Now().UnixNano()))
	g, err := Create(Config{Memberlist: mc, Store: st, Datacenter: "dc1", Version: "test",
		Logger: slog.New(slog.DiscardHandler), protocolMax: protoMax, extraRecord: extra})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Shutdown() })
	return &tnode{name: name, st: st, g: g}
}

func (n *tnode) addr() string {
	ln := n.g.Memberlist().LocalNode()
	return fmt.Sprintf("%s:%d", ln.Addr, ln.Port)
}

// register writes a service on the node and spreads it, as the agent does.
func (n *tnode) register(t *testing.T, id string) {
	t.Helper()
	var e catalog.Entry
	var err error
	n.st.write(func(c *catalog.Catalog) {
		e, _, err = c.Put(catalog.Service{ID: id, Name: "web", Port: 80}, time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	n.g.Broadcast(e)
}

func (n *tnode) served() string {
	var ids []string
	n.st.read(func(c *catalog.Catalog) {
		for _, in := range c.Instances("web") {
			ids = append(ids, in.Node.Name+"/"+in.Service.ID)
		}
	})
	return strings.Join(ids, ",")
}

// waitFor polls try every 10 ms until it returns nil, and fails the test
// with its last error after d. (internal/testutil has the same, but
// imports the agent, which imports this package.)
func waitFor(t *testing.T, d time.Duration, try func() error) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := try()
		if err == nil {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("gave up after %v: %v", d, err)
		case <-tick.C:
		}
	}
}

// A cluster in the middle of an upgrade: three agents of this version
// and two of a later one that adds a record to every message. The later
// agents speak their version with each other (the record reaches them)
// and this one with the others (the record never does); all five serve
// one catalog.
func TestMixedVersionsServeOneCatalog(t *testing.T) {
	var nodes []*tnode
	for i := range 5 {
		v, extra := uint8(ProtocolMax), []byte(nil)
		if i >= 3 {
			v, extra = ProtocolMax+1, []byte("a later version's record")
		}
		nodes = append(nodes, startNode(t, fmt.Sprintf("v%d-node-%d", v, i), v, extra))
	}
	for _, n := range nodes[1:] {
		if _, err := n.g.Join([]string{nodes[0].addr()}); err != nil {
			t.Fatalf("%s joins: %v", n.name, err)
		}
	}
	waitFor(t, 20*time.Second, func() error {
		for _, n := range nodes {
			if m := n.g.Memberlist().NumMembers(); m != 5 {
				return fmt.Errorf("%s sees %d members", n.name, m)
			}
		}
		return nil
	})
	for _, n := range nodes {
		n.register(t, "web-"+n.name)
	}
	waitFor(t, 20*time.Second, func() error {
		want := nodes[0].served()
		if strings.Count(want, ",") != 4 {
			return fmt.Errorf("%s serves %s", nodes[0].name, want)
		}
		for _, n := range nodes[1:] {
			if got := n.served(); got != want {
				return fmt.Errorf("%s serves %s, %s serves %s", n.name, got, nodes[0].name, want)
			}
			if n.st.Summary() != nodes[0].st.Summary() {
				return fmt.Errorf("%s and %s differ in summary", n.name, nodes[0].name)
			}
		}
		return nil
	})
	// Every agent asks every other for its summary: each of the later
	// agents speaks to the other at least this once.
	for _, n := range nodes {
		if got := n.g.Probe(context.Background(), 5*time.Second); len(got) != 4 {
			t.Fatalf("%s's probe got %d answers", n.name, len(got))
		}
	}
	for i, n := range nodes {
		skipped := n.g.Stats().SkippedRecords.Load()
		if i < 3 && skipped != 0 {
			t.Errorf("%s (this version) got %d records of a later version: it was spoken to in a version it does not speak", n.name, skipped)
		}
		if i >= 3 && skipped == 0 {
			t.Errorf("%s (a later version) never got its version's record: the two later agents did not speak it", n.name)
		}
		if lo, hi, ok := nodes[0].g.Protocols(n.name); i > 0 && (!ok || lo != ProtocolMin || hi != n.g.protoMax) {
			t.Errorf("%s announces protocols %d to %d, want %d to %d", n.name, lo, hi, ProtocolMin, n.g.protoMax)
		}
	}
}

// Agents of protocol 2 (before this one) are refused with a clear error,
// as are agents whose range does not meet this agent's.
func TestOtherProtocolsAreRefused(t *testing.T) {
	d := &delegate{g: bareGossip("a")}
	d.g.dc = "dc1"
	for _, m := range []NodeMeta{{Protocol: 2, Epoch: 1, Datacenter: "dc1"}, {Protocol: 9, MinProtocol: 8, Epoch: 1, Datacenter: "dc1"}} {
		err := d.checkPeer(&memberlist.Node{Name: "b", Meta: EncodeMeta(m)})
		if err == nil || !strings.Contains(err.Error(), "gossip protocol") {
			t.Errorf("protocols %d to %d: %v", m.MinProtocol, m.Protocol, err)
		}
	}
	if err := d.checkPeer(&memberlist.Node{Name: "b", Meta: EncodeMeta(NodeMeta{Protocol: ProtocolMax + 3, MinProtocol: ProtocolMin, Datacenter: "dc1"})}); err != nil {
		t.Errorf("a later agent that still speaks this version: %v", err)
	}
}
