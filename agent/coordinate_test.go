package agent_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// shoalClient is Shoal's own client on a node's HTTP API.
func shoalClient(n *testutil.Node) *api.Client { return &api.Client{Addr: n.Agent.HTTPAddr()} }

// nodeOrder lists the nodes of a service's instances as an agent answers.
func nodeOrder(n *testutil.Node, service string, q *api.QueryOptions) ([]string, error) {
	es, _, err := shoalClient(n).HealthService(context.Background(), service, q)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Node.Node)
	}
	return out, nil
}

// A real cluster whose pings report the round trips of a network laid out
// on a line (node-0 at 0 ms, node-1 at 10, node-2 at 40, node-3 at 100):
// the coordinates the agents compute from them order ?near answers
// accordingly, and estimate the round trips themselves.
func TestNearFollowsPingRoundTrips(t *testing.T) {
	pos := map[string]time.Duration{"node-0": 0, "node-1": 10 * time.Millisecond, "node-2": 40 * time.Millisecond, "node-3": 100 * time.Millisecond}
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) {
		self := cfg.NodeName
		cfg.PingRTT = func(peer string, _ time.Duration) time.Duration {
			return max(pos[self]-pos[peer], pos[peer]-pos[self])
		}
	}
	for i := range 4 {
		c.Start(fmt.Sprintf("node-%d", i), 0)
	}
	c.JoinAll()
	for i, n := range c.Nodes() {
		if err := n.Agent.RegisterService(web(fmt.Sprintf("web-%d", i), 8080+i), nil); err != nil {
			t.Fatal(err)
		}
	}
	n0 := c.Node("node-0")
	cl := consulClient(t, n0)
	testutil.WaitFor(t, 60*time.Second, func() error {
		got, err := nodeOrder(n0, "web", &api.QueryOptions{Near: "_agent"})
		if err != nil {
			return err
		}
		if want := []string{"node-0", "node-1", "node-2", "node-3"}; !slices.Equal(got, want) {
			return fmt.Errorf("near _agent: %v, want %v", got, want)
		}
		got, err = nodeOrder(n0, "web", &api.QueryOptions{Near: "node-3"})
		if err != nil {
			return err
		}
		if len(got) != 4 || got[0] != "node-3" || got[1] != "node-2" {
			return fmt.Errorf("near node-3: %v, want node-3, node-2 first", got)
		}
		// Consul's client reads the coordinates: every node, in serf's 8
		// dimensions, close enough to estimate node-0 to node-3.
		entries, _, err := cl.Coordinate().Nodes(nil)
		if err != nil {
			return err
		}
		if len(entries) != 4 {
			return fmt.Errorf("%d coordinates", len(entries))
		}
		for _, e := range entries {
			if len(e.Coord.Vec) != 8 {
				return fmt.Errorf("coordinate of %s: %+v", e.Node, e.Coord)
			}
		}
		if d := entries[0].Coord.DistanceTo(entries[3].Coord); d < 70*time.Millisecond || d > 130*time.Millisecond {
			return fmt.Errorf("estimated node-0 to node-3: %v, want about 100ms", d)
		}
		return nil
	})
	// The catalog sorts the same way.
	cs, _, err := shoalClient(n0).CatalogService(context.Background(), "web", &api.QueryOptions{Near: "_agent"})
	if err != nil || len(cs) != 4 || cs[0].Node != "node-0" || cs[3].Node != "node-3" {
		t.Fatalf("catalog near _agent: %v %+v", err, cs)
	}
}

// lastHeard is how long ago n last heard from node, by its answer for
// the service's instance there; -1 if the answer has no age.
func lastHeard(n *testutil.Node, service, node string) (time.Duration, error) {
	es, _, err := shoalClient(n).HealthService(context.Background(), service, nil)
	if err != nil {
		return 0, err
	}
	for _, e := range es {
		if e.Node.Node == node {
			if e.ShoalLastHeardMs == nil {
				return -1, nil
			}
			return time.Duration(*e.ShoalLastHeardMs) * time.Millisecond, nil
		}
	}
	return 0, fmt.Errorf("%s serves no %s on %s", n.Name, service, node)
}

// Staleness: cut node-0 off from node-2 (node-1 still reaches both, so
// node-2 stays alive through indirect pings and keeps being served) and
// the age node-0 shows for node-2's instance grows; heal, and it drops.
func TestStalenessGrowsWhileCutAndResetsWhenHealed(t *testing.T) {
	c := testutil.NewCluster(t, 3)
	for _, name := range []string{"node-0", "node-1", "node-2"} {
		if err := c.Node(name).Agent.RegisterService(web("web-"+name, 8080), nil); err != nil {
			t.Fatal(err)
		}
	}
	n0 := c.Node("node-0")
	testutil.WaitFor(t, converge, func() error {
		for _, node := range []string{"node-0", "node-1", "node-2"} {
			d, err := lastHeard(n0, "web", node)
			if err != nil {
				return err
			}
			if d < 0 || d > time.Second {
				return fmt.Errorf("node-0 last heard from %s %v ago", node, d)
			}
		}
		return nil
	})
	if d, _ := lastHeard(n0, "web", "node-0"); d != 0 {
		t.Fatalf("the agent's own instance is %v stale", d)
	}

	c.Net.Cut(c.Addrs("node-0"), c.Addrs("node-2"))
	testutil.WaitFor(t, converge, func() error {
		d2, err := lastHeard(n0, "web", "node-2")
		if err != nil {
			return err // node-2 must stay served
		}
		if d2 < 2*time.Second {
			return fmt.Errorf("node-0 last heard from node-2 only %v ago", d2)
		}
		if d1, err := lastHeard(n0, "web", "node-1"); err != nil || d1 >= d2 {
			return fmt.Errorf("node-1, not cut off, %v stale (%v) beside node-2's %v", d1, err, d2)
		}
		return nil
	})
	// /v1/agent/members shows it too.
	members, err := shoalClient(n0).Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if m.ShoalLastHeardMs == nil || m.Name == "node-0" && *m.ShoalLastHeardMs != 0 ||
			m.Name == "node-2" && *m.ShoalLastHeardMs < 2000 {
			t.Errorf("member %s last heard %v ms ago", m.Name, m.ShoalLastHeardMs)
		}
	}

	c.Net.Heal()
	testutil.WaitFor(t, converge, func() error {
		d2, err := lastHeard(n0, "web", "node-2")
		if err != nil {
			return err
		}
		if d2 < 0 || d2 > time.Second {
			return fmt.Errorf("after the heal node-0 last heard from node-2 %v ago", d2)
		}
		return nil
	})
}
