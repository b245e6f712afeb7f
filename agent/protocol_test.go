package agent_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/hashicorp/memberlist"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/gossip"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// Each test here feeds the cluster a message a broken or hostile member
// could send, and fails on protocol 2.

// forge sends a Shoal message to an agent as a bare UDP packet (a
// memberlist user message, unencrypted), as any member could.
func forge(t *testing.T, to string, msg []byte) {
	t.Helper()
	conn, err := net.Dial("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const userMsg = 8 // memberlist's message type of a user message
	if _, err := conn.Write(append([]byte{userMsg}, msg...)); err != nil {
		t.Fatal(err)
	}
}

func epochOf(n *testutil.Node, node string) uint64 {
	var e uint64
	n.Agent.Read(func(c *catalog.Catalog) {
		if nd, ok := c.Node(node); ok {
			e = nd.Epoch
		}
	})
	return e
}

// watchAbsent fails the test if any agent but those skipped serves
// service "web" instance id of origin at any change until stop is
// called: it checks at every change of every agent's catalog, not at a
// poll's tick.
func watchAbsent(t *testing.T, c *testutil.Cluster, origin, id string, skip ...string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var seen atomic.Value
	for _, n := range c.Nodes() {
		if slices.Contains(skip, n.Name) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ch := n.Agent.Changed()
				for _, in := range n.Instances("web") {
					if in.Node.Name == origin && in.Service.ID == id {
						seen.CompareAndSwap(nil, n.Name)
					}
				}
				select {
				case <-ch:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return func() {
		cancel()
		wg.Wait()
		if who := seen.Load(); who != nil {
			t.Errorf("%s served %s/%s, which was deregistered", who, origin, id)
		}
	}
}

// An entry of another node's name with the largest epoch is refused (and
// counted), by the others and by the node itself: before protocol 3 it
// was taken, the node's services vanished, and its own takeover wrapped
// its epoch to 0, for good.
func TestEpochOverflowIsRefused(t *testing.T) {
	c := testutil.NewCluster(t, 3)
	n2 := c.Node("node-2")
	if err := n2.Agent.RegisterService(web("web-1", 8080), nil); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-2/web-1")
	epoch := epochOf(c.Node("node-0"), "node-2")
	forged := catalog.Entry{Origin: "node-2", Version: catalog.Version{Epoch: math.MaxUint64, Counter: 1},
		Service: catalog.Service{ID: "evil", Name: "web", Port: 1, Weights: catalog.Weights{Passing: 1, Warning: 1}}}
	for _, n := range c.Nodes() {
		from := "node-0" // any other member
		if n.Name == from {
			from = "node-1"
		}
		forge(t, n.Gossip, gossip.EncodeEntries(from, forged))
	}
	// Each agent counts what it refused: the others as an epoch node-2
	// does not announce, node-2 as an epoch too far ahead.
	testutil.WaitFor(t, converge, func() error {
		for _, n := range c.Nodes() {
			var st catalog.Stats
			n.Agent.Read(func(c *catalog.Catalog) { st = c.Stats() })
			if st.AheadOfMember+st.FutureEpoch == 0 {
				return fmt.Errorf("%s has not refused the forged entry yet", n.Name)
			}
		}
		return nil
	})
	seenBy(t, c, "node-2/web-1")
	for _, n := range c.Nodes() {
		if e := epochOf(n, "node-2"); e != epoch {
			t.Errorf("%s holds node-2 at epoch %d, want %d", n.Name, e, epoch)
		}
	}
	if e := n2.Agent.Self().Member.Tags["epoch"]; e != fmt.Sprint(epoch) {
		t.Errorf("node-2's own epoch is %s, want %d", e, epoch)
	}
}

// A leave announced in a live node's name with its current epoch (any
// member can read both) hides its services for a moment at most: the
// node refutes it, and everyone serves it again. A leave of an old run
// is dropped.
func TestForgedLeaveIsRefuted(t *testing.T) {
	c := testutil.NewCluster(t, 3)
	n2 := c.Node("node-2")
	if err := n2.Agent.RegisterService(web("web-1", 8080), nil); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-2/web-1")
	epoch := epochOf(c.Node("node-0"), "node-2")
	forge(t, c.Node("node-1").Gossip, gossip.EncodeLeave("node-0", gossip.Leave{Node: "node-2", Epoch: epoch - 1}))
	forge(t, c.Node("node-1").Gossip, gossip.EncodeLeave("node-0", gossip.Leave{Node: "node-2", Epoch: epoch}))
	testutil.WaitFor(t, converge, func() error {
		if n := scrape(t, n2)["shoal_gossip_leaves_refuted_total"]; n < 1 {
			return fmt.Errorf("node-2 refuted %v leaves", n)
		}
		return nil
	})
	seenBy(t, c, "node-2/web-1")
	for _, n := range c.Nodes() {
		if st := status(n, "node-2"); st != catalog.StatusAlive {
			t.Errorf("%s holds node-2 as %s", n.Name, st)
		}
	}
}

// An imposter with a live node's name cannot join through any member:
// the join fails on both sides, and the seed keeps the real node's
// services (before protocol 3 the seed took the imposter's catalog
// until its next push/pull).
func TestImposterJoinIsRefusedByTheSeed(t *testing.T) {
	c := testutil.NewCluster(t, 2)
	if err := c.Node("node-1").Agent.RegisterService(web("web-1", 8080), nil); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-1/web-1")
	twin := testutil.NewEmptyCluster(t)
	twin.Net = c.Net
	imp := twin.Start("node-1", 0)
	if err := imp.Agent.RegisterService(web("evil", 6666), nil); err != nil {
		t.Fatal(err)
	}
	stop := watchAbsent(t, c, "node-1", "evil")
	_, err := imp.Agent.Join(context.Background(), c.Addrs("node-0"))
	if !errors.Is(err, gossip.ErrNameConflict) {
		t.Fatalf("imposter join: got %v, want ErrNameConflict", err)
	}
	// Whatever the imposter sends now comes from a non-member.
	imp.Agent.RegisterService(web("evil2", 6667), nil)
	seenBy(t, c, "node-1/web-1")
	stop()
	for _, n := range c.Nodes() {
		if a := n.Alive(); a != 2 {
			t.Errorf("%s sees %d alive members", n.Name, a)
		}
	}
}

// A node frozen (a suspended VM) for longer than the tombstone TTL wakes
// with an old copy of a service that was deregistered, and its tombstone
// reaped, meanwhile. No agent serves the copy at any moment, and the
// frozen node drops it.
func TestFrozenNodeCannotResurrectAfterTheTombstoneTTL(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) {
		cfg.TombstoneTTL = time.Second
		cfg.ReconnectInterval = 300 * time.Millisecond
	}
	for i := range 3 {
		c.Start(fmt.Sprintf("node-%d", i), 0)
	}
	c.JoinAll()
	n0 := c.Node("node-0")
	if err := n0.Agent.RegisterService(web("web-1", 8080), nil); err != nil {
		t.Fatal(err)
	}
	if err := n0.Agent.RegisterService(web("web-2", 8080), nil); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-0/web-1", "node-0/web-2")

	frozen := c.Node("node-2")
	var others []string
	for _, n := range c.Nodes() {
		if n != frozen {
			others = append(others, n.Gossip)
		}
	}
	c.Net.Cut([]string{frozen.Gossip}, others)
	if err := n0.Agent.DeregisterService("web-1"); err != nil {
		t.Fatal(err)
	}
	// Both awake agents reap the tombstone.
	testutil.WaitFor(t, converge, func() error {
		for _, n := range c.Nodes() {
			if n == frozen {
				continue
			}
			var held bool
			n.Agent.Read(func(c *catalog.Catalog) {
				for _, e := range c.Entries() {
					held = held || e.Origin == "node-0" && e.Service.ID == "web-1"
				}
			})
			if held {
				return fmt.Errorf("%s still holds web-1's tombstone", n.Name)
			}
		}
		return nil
	})
	// The frozen node itself serves its copy until it has caught up
	// (its apps saw it all along); nobody else takes it.
	stop := watchAbsent(t, c, "node-0", "web-1", frozen.Name)
	c.Net.Heal()
	c.WaitMembers(converge, 3)
	seenBy(t, c, "node-0/web-2")
	converged(t, c, true)
	stop()
}

// A blocking query on one service does not return while other services
// change (before protocol 3 every change moved every node's metadata and
// woke it), and returns when its own service changes: HashiCorp's client.
func TestUnrelatedChangesDoNotWakeABlockingQuery(t *testing.T) {
	c := testutil.NewCluster(t, 3)
	if err := c.Node("node-1").Agent.RegisterService(web("web-1", 8080), nil); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-1/web-1")
	cl, err := consul.NewClient(&consul.Config{Address: c.Node("node-0").Agent.HTTPAddr()})
	if err != nil {
		t.Fatal(err)
	}
	_, meta, err := cl.Health().Service("web", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	type wake struct {
		n   int
		err error
	}
	woke := make(chan wake, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		idx := meta.LastIndex
		for {
			es, m, err := cl.Health().Service("web", "", false, (&consul.QueryOptions{WaitIndex: idx, WaitTime: time.Minute}).WithContext(ctx))
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				woke <- wake{err: err}
				return
			}
			if m.LastIndex != idx {
				idx = m.LastIndex
				woke <- wake{n: len(es)}
			}
		}
	}()
	for i := range 30 {
		n := c.Nodes()[i%3]
		if err := n.Agent.RegisterService(catalog.Service{ID: fmt.Sprintf("db-%d", i), Name: fmt.Sprintf("db%d", i%7), Port: 5432}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Every agent has them all, and one of them changed its checks too.
	testutil.WaitFor(t, converge, func() error {
		for _, n := range c.Nodes() {
			total := 0
			for i := range 7 {
				total += len(n.Instances(fmt.Sprintf("db%d", i)))
			}
			if total != 30 {
				return fmt.Errorf("%s serves %d db instances", n.Name, total)
			}
		}
		return nil
	})
	converged(t, c, true)
	select {
	case w := <-woke:
		t.Fatalf("the query on web woke for other services: %+v", w)
	default:
	}
	if err := c.Node("node-2").Agent.RegisterService(web("web-2", 8080), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-woke:
		if w.err != nil || w.n != 2 {
			t.Fatalf("woke with %+v, want 2 instances", w)
		}
	case <-time.After(converge):
		t.Fatal("the query on web did not wake for a web instance")
	}
	select {
	case w := <-woke:
		t.Errorf("woke again: %+v", w)
	default:
	}
}

// A catalog larger than memberlist's 20 MiB push/pull state (30,000
// instances of about 800 bytes) reaches a new agent whole: the join
// exchanges digests, and the entries follow in chunks.
func TestJoinFetchesACatalogLargerThanPushPull(t *testing.T) {
	if testing.Short() {
		t.Skip("registers 30,000 instances")
	}
	c := testutil.NewEmptyCluster(t)
	big := c.Start("node-0", 0)
	pad := strings.Repeat("x", 240)
	const n = 30000
	var size int
	for i := range n {
		s := catalog.Service{ID: fmt.Sprintf("web-%05d", i), Name: "web", Port: 8080, Address: "10.1.2.3",
			Meta: map[string]string{"a": pad, "b": pad, "c": pad}}
		if i == 0 {
			size = len(gossip.EncodeEntry(catalog.Entry{Origin: "node-0", Version: catalog.Version{Epoch: 1, Counter: 1}, Service: s.Normalize()}))
		}
		if err := big.Agent.RegisterService(s, nil); err != nil {
			t.Fatal(err)
		}
	}
	if total := n * size; total <= 20<<20 {
		t.Fatalf("catalog of %d bytes is not above memberlist's 20 MiB", total)
	}
	newcomer := c.Start("node-1", 0)
	start := time.Now()
	if _, err := newcomer.Agent.Join(context.Background(), []string{big.Gossip}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 2*time.Minute, func() error {
		if got := len(newcomer.Instances("web")); got != n {
			return fmt.Errorf("the new agent holds %d of %d instances", got, n)
		}
		return nil
	})
	t.Logf("%d instances of %d bytes (%.1f MiB) fetched in %v", n, size, float64(n*size)/(1<<20), time.Since(start))
}

var _ = memberlist.MetaMaxSize
