package agent_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/gossip"
	"github.com/shoal-sd/shoal/internal/testutil"
)

const converge = 20 * time.Second

func web(id string, port int, tags ...string) catalog.Service {
	return catalog.Service{ID: id, Name: "web", Port: port, Tags: tags, Meta: map[string]string{"version": "1"}}
}

// seenBy waits until every running node serves exactly the given IDs of
// service "web" (as origin/id pairs).
func seenBy(t *testing.T, c *testutil.Cluster, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	testutil.WaitFor(t, converge, func() error {
		for _, n := range c.Nodes() {
			got := []string{}
			for _, in := range n.Instances("web") {
				got = append(got, in.Node.Name+"/"+in.Service.ID)
			}
			if !reflect.DeepEqual(got, want) {
				return fmt.Errorf("%s serves %v, want %v", n.Name, got, want)
			}
		}
		return nil
	})
}

func status(n *testutil.Node, node string) catalog.NodeStatus {
	var st catalog.NodeStatus
	n.Agent.Read(func(c *catalog.Catalog) {
		if nd, ok := c.Node(node); ok {
			st = nd.Status
		}
	})
	return st
}

func TestRegistrationAndDeregistrationReachEveryAgent(t *testing.T) {
	c := testutil.NewCluster(t, 5)
	n2 := c.Node("node-2")
	if err := n2.Agent.RegisterService(web("web-1", 8080, "v1"), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Node("node-4").Agent.RegisterService(web("web-2", 8081), nil); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-2/web-1", "node-4/web-2")
	got := c.Node("node-0").Instances("web")[0]
	if got.Service.Port != 8080 || got.Service.Tags[0] != "v1" || got.Service.Meta["version"] != "1" || got.Node.Address != "127.0.0.1" {
		t.Fatalf("remote copy differs: %+v", got)
	}

	// A change of an existing instance replaces it everywhere.
	if err := n2.Agent.RegisterService(web("web-1", 9090, "v2"), nil); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, converge, func() error {
		for _, n := range c.Nodes() {
			for _, in := range n.Instances("web") {
				if in.Service.ID == "web-1" && in.Service.Port != 9090 {
					return fmt.Errorf("%s still has port %d", n.Name, in.Service.Port)
				}
			}
		}
		return nil
	})

	if err := n2.Agent.DeregisterService("web-1"); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-4/web-2")
}

// A crashed node's services vanish once memberlist declares it dead; a
// node that leaves gracefully is recorded as left — its leave hid the
// services, not the failure detector.
func TestDepartureHidesServicesEverywhere(t *testing.T) {
	for _, tc := range []struct {
		name   string
		depart func(c *testutil.Cluster, node string)
		want   catalog.NodeStatus
	}{
		{"crash", (*testutil.Cluster).Crash, catalog.StatusDead},
		{"graceful leave", (*testutil.Cluster).Stop, catalog.StatusLeft},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testutil.NewCluster(t, 5)
			if err := c.Node("node-4").Agent.RegisterService(web("web-1", 8080), nil); err != nil {
				t.Fatal(err)
			}
			seenBy(t, c, "node-4/web-1")
			tc.depart(c, "node-4")
			seenBy(t, c)
			for _, n := range c.Nodes() {
				if st := status(n, "node-4"); st != tc.want {
					t.Errorf("%s holds node-4 as %s, want %s", n.Name, st, tc.want)
				}
			}
		})
	}
}

func TestRestartWithEmptyStateUnderTheSameName(t *testing.T) {
	c := testutil.NewCluster(t, 5)
	n3 := c.Node("node-3")
	for _, id := range []string{"web-a", "web-b"} {
		if err := n3.Agent.RegisterService(web(id, 8080), nil); err != nil {
			t.Fatal(err)
		}
	}
	seenBy(t, c, "node-3/web-a", "node-3/web-b")

	// Crash and come back at once on the same address, before anyone has
	// noticed: the new run registers only web-c.
	port := n3.Port
	c.Crash("node-3")
	c.Net.Restore(n3.Gossip)
	n3 = c.Start("node-3", port)
	if err := n3.Agent.RegisterService(web("web-c", 8080), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := n3.Agent.Join(context.Background(), c.Addrs("node-0")); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-3/web-c")
}

func TestPartitionHealsToOneCatalog(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	// Memberlist gossips to a dead node only for GossipToTheDeadTime
	// (10 s here) after declaring it dead; on a loaded machine the heal
	// can come later than that, and then the halves meet again through
	// the agents' reconnect to failed members, made quick here.
	c.Configure = func(cfg *agent.Config) { cfg.ReconnectInterval = time.Second }
	for i := 0; i < 6; i++ {
		c.Start(fmt.Sprintf("node-%d", i), 0)
	}
	c.JoinAll()
	left, right := []string{"node-0", "node-1", "node-2"}, []string{"node-3", "node-4", "node-5"}
	if err := c.Node("node-0").Agent.RegisterService(web("old", 8080), nil); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-0/old")

	c.Net.Cut(c.Addrs(left...), c.Addrs(right...))
	// Each side sees the other fail.
	testutil.WaitFor(t, converge, func() error {
		for _, n := range c.Nodes() {
			if got := n.Alive(); got != 3 {
				return fmt.Errorf("%s sees %d alive, want 3", n.Name, got)
			}
		}
		return nil
	})
	// Both sides change the catalog while apart.
	if err := c.Node("node-0").Agent.DeregisterService("old"); err != nil {
		t.Fatal(err)
	}
	if err := c.Node("node-1").Agent.RegisterService(web("left-new", 8080), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Node("node-4").Agent.RegisterService(web("right-new", 8080), nil); err != nil {
		t.Fatal(err)
	}

	c.Net.Heal()
	c.WaitMembers(converge, 6)
	seenBy(t, c, "node-1/left-new", "node-4/right-new")
	testutil.WaitFor(t, converge, func() error {
		var first []catalog.Entry
		for i, n := range c.Nodes() {
			var es []catalog.Entry
			n.Agent.Read(func(cat *catalog.Catalog) { es = cat.Entries() })
			if i == 0 {
				first = es
			} else if !reflect.DeepEqual(es, first) {
				return fmt.Errorf("%s holds a different catalog than node-0", n.Name)
			}
		}
		return nil
	})
}

func TestNodeNameConflictIsAClearError(t *testing.T) {
	c := testutil.NewCluster(t, 2)
	twin := testutil.NewEmptyCluster(t)
	twin.Net = c.Net
	n := twin.Start("node-1", 0)
	_, err := n.Agent.Join(context.Background(), c.Addrs("node-0"))
	if !errors.Is(err, gossip.ErrNameConflict) {
		t.Fatalf("join with a taken name: got %v, want ErrNameConflict", err)
	}
}

func TestEncryptedClusterRefusesOtherKeys(t *testing.T) {
	key := "yX3pB4QJ2qzHn0yCfqBUhZgPp5nOo2rJ4N0dI1GmV5Q="
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) { cfg.EncryptKey = key }
	c.Start("node-0", 0)
	c.Start("node-1", 0)
	c.JoinAll()
	if err := c.Node("node-1").Agent.RegisterService(web("web-1", 8080), nil); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-1/web-1")

	other := testutil.NewEmptyCluster(t)
	other.Configure = func(cfg *agent.Config) { cfg.EncryptKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" }
	stranger := other.Start("stranger", 0)
	if _, err := stranger.Agent.Join(context.Background(), c.Addrs("node-0")); err == nil {
		t.Fatal("an agent with another key joined the encrypted cluster")
	}
}

func TestRetryJoinKeepsTryingUntilJoined(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	// Learn a free gossip address, then free it again: nothing answers there.
	a := c.Start("node-a", 0)
	port, addr := a.Port, a.Gossip
	c.Stop("node-a")

	c.Configure = func(cfg *agent.Config) {
		if cfg.NodeName == "node-b" {
			cfg.RetryJoin = []string{addr}
			cfg.RetryInterval = 500 * time.Millisecond
		}
	}
	c.Start("node-b", 0)
	// node-b has failed at least once by the time node-a comes up.
	c.Start("node-a", port)
	c.WaitMembers(converge, 2)
}

// A node restarted with its clock behind starts in an epoch lower than its
// previous run's: it must take over from the cluster's memory of that run,
// not be outvoted by it.
func TestRestartWithClockBehindTakesOver(t *testing.T) {
	c := testutil.NewCluster(t, 3)
	n2 := c.Node("node-2")
	if err := n2.Agent.RegisterService(web("web-old", 8080), nil); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-2/web-old")

	port := n2.Port
	c.Crash("node-2")
	c.Net.Restore(n2.Gossip)
	c.Configure = func(cfg *agent.Config) {
		if cfg.NodeName == "node-2" {
			cfg.Now = func() time.Time { return time.Now().Add(-time.Hour) }
		}
	}
	n2 = c.Start("node-2", port)
	if err := n2.Agent.RegisterService(web("web-new", 8080), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.Agent.Join(context.Background(), c.Addrs("node-0")); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-2/web-new")
}

// An agent of another datacenter cannot join, and its catalog does not
// leak into this one's.
func TestJoinAcrossDatacentersIsRefused(t *testing.T) {
	c := testutil.NewCluster(t, 2)
	other := testutil.NewEmptyCluster(t)
	other.Net = c.Net
	other.Configure = func(cfg *agent.Config) { cfg.Datacenter = "dc2" }
	stranger := other.Start("stranger", 0)
	if err := stranger.Agent.RegisterService(web("foreign", 8080), nil); err != nil {
		t.Fatal(err)
	}
	_, err := stranger.Agent.Join(context.Background(), c.Addrs("node-0"))
	if err == nil || !strings.Contains(err.Error(), "datacenter") {
		t.Fatalf("join from dc2: got %v, want a datacenter error", err)
	}
	for _, n := range c.Nodes() {
		var entries []catalog.Entry
		n.Agent.Read(func(cat *catalog.Catalog) { entries = cat.Entries() })
		for _, e := range entries {
			if e.Origin == "stranger" {
				t.Errorf("%s holds the stranger's entry %s", n.Name, e.Service.ID)
			}
		}
		if got := n.Alive(); got != 2 {
			t.Errorf("%s sees %d alive nodes, want 2", n.Name, got)
		}
	}
}

// A partition that outlasts memberlist's memory of dead nodes: each half
// forgets the other and stops gossiping to it, and only the agents'
// reconnect attempts merge them again once the network heals.
func TestLongPartitionMergesAfterHealing(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) {
		cfg.ReconnectInterval = 300 * time.Millisecond
		fast := cfg.Memberlist
		cfg.Memberlist = func(mc *memberlist.Config) {
			fast(mc)
			mc.GossipToTheDeadTime = 500 * time.Millisecond
		}
	}
	for i := 0; i < 4; i++ {
		c.Start(fmt.Sprintf("node-%d", i), 0)
	}
	c.JoinAll()
	left, right := []string{"node-0", "node-1"}, []string{"node-2", "node-3"}
	c.Net.Cut(c.Addrs(left...), c.Addrs(right...))
	// Apart for longer than GossipToTheDeadTime after each side declared
	// the other dead: memberlist alone would never bring them together.
	testutil.WaitFor(t, converge, func() error {
		for _, n := range c.Nodes() {
			if got := n.Alive(); got != 2 {
				return fmt.Errorf("%s sees %d alive, want 2", n.Name, got)
			}
		}
		return nil
	})
	if err := c.Node("node-3").Agent.RegisterService(web("during", 8080), nil); err != nil {
		t.Fatal(err)
	}
	// The partition lasts three times GossipToTheDeadTime beyond that: a
	// duration of the scenario, not a condition to poll for.
	<-time.After(1500 * time.Millisecond)
	c.Net.Heal()
	c.WaitMembers(converge, 4)
	seenBy(t, c, "node-3/during")
}

// sniffer is a memberlist transport that records whether any packet it
// sent was compressed.
type sniffer struct {
	memberlist.NodeAwareTransport
	compressed atomic.Bool
}

// memberlist's message types (net.go): a compressed payload, and the CRC
// header that may precede it.
const mlCompressMsg, mlHasCrcMsg = 9, 12

func (s *sniffer) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	payload := b
	if len(payload) > 5 && payload[0] == mlHasCrcMsg {
		payload = payload[5:]
	}
	if len(payload) > 0 && payload[0] == mlCompressMsg {
		s.compressed.Store(true)
	}
	return s.NodeAwareTransport.WriteToAddress(b, a)
}

func (s *sniffer) WriteTo(b []byte, addr string) (time.Time, error) {
	return s.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// An agent with --gossip-compression compresses what it sends, one
// without does not, and the two understand each other.
func TestGossipCompressionMixedCluster(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	sniff := map[bool]*sniffer{}
	start := func(name string, compress bool) {
		c.Configure = func(cfg *agent.Config) {
			cfg.GossipCompression = compress
			inner := cfg.Memberlist
			cfg.Memberlist = func(mc *memberlist.Config) {
				inner(mc)
				s := &sniffer{NodeAwareTransport: mc.Transport.(memberlist.NodeAwareTransport)}
				sniff[compress] = s
				mc.Transport = s
			}
		}
		c.Start(name, 0)
	}
	start("node-0", true)
	start("node-1", false)
	c.Configure = nil
	c.JoinAll()

	// Repetitive metadata, so that LZW shrinks the packets and
	// memberlist keeps the compressed form.
	meta := map[string]string{}
	for i := range 5 {
		meta[fmt.Sprintf("key-%d", i)] = strings.Repeat("compressible ", 8)
	}
	for i, n := range c.Nodes() {
		s := web(fmt.Sprintf("web-%d", i), 8080+i)
		s.Meta = meta
		if err := n.Agent.RegisterService(s, nil); err != nil {
			t.Fatal(err)
		}
	}
	seenBy(t, c, "node-0/web-0", "node-1/web-1")
	if !sniff[true].compressed.Load() {
		t.Error("the agent with GossipCompression sent nothing compressed")
	}
	if sniff[false].compressed.Load() {
		t.Error("the agent without GossipCompression sent a compressed packet")
	}
}
