package agent_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// converged waits until every agent's convergence view says want.
func converged(t *testing.T, c *testutil.Cluster, want bool) {
	t.Helper()
	testutil.WaitFor(t, converge, func() error {
		for _, n := range c.Nodes() {
			v, _, err := (&api.Client{Addr: n.Agent.HTTPAddr()}).Convergence(context.Background(), nil)
			if err != nil {
				return err
			}
			if v.Converged != want {
				var all []string
				for _, m := range c.Nodes() {
					w, _, _ := (&api.Client{Addr: m.Agent.HTTPAddr()}).Convergence(context.Background(), nil)
					all = append(all, fmt.Sprintf("%s=%s%+v", m.Name, w.Digest, w.Origins))
				}
				return fmt.Errorf("%s: converged %v, want %v: %+v; views %v", n.Name, v.Converged, want, v.Members, all)
			}
		}
		return nil
	})
}

// Agents announce their catalog digests: a settled cluster reads as
// converged everywhere, the sides of a partition hold different digests,
// and healing makes the whole cluster converge again.
func TestConvergenceView(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	for i := 0; i < 3; i++ {
		c.Start(fmt.Sprintf("node-%d", i), 0)
	}
	c.JoinAll()
	if err := c.Node("node-0").Agent.RegisterService(web("web-1", 8080), nil); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-0/web-1")
	converged(t, c, true)

	c.Net.Cut(c.Addrs("node-0", "node-1"), c.Addrs("node-2"))
	if err := c.Node("node-2").Agent.RegisterService(web("web-2", 8080), nil); err != nil {
		t.Fatal(err)
	}
	// Apart, the two sides hold different catalogs (each side, seeing
	// only itself, agrees with itself).
	testutil.WaitFor(t, converge, func() error {
		v0, _, err := (&api.Client{Addr: c.Node("node-0").Agent.HTTPAddr()}).Convergence(context.Background(), nil)
		if err != nil {
			return err
		}
		v2, _, err := (&api.Client{Addr: c.Node("node-2").Agent.HTTPAddr()}).Convergence(context.Background(), nil)
		if err != nil {
			return err
		}
		if v0.Digest == v2.Digest {
			return fmt.Errorf("both sides at digest %s", v0.Digest)
		}
		return nil
	})
	c.Net.Heal()
	c.WaitMembers(converge, 3)
	seenBy(t, c, "node-0/web-1", "node-2/web-2")
	converged(t, c, true)
	for _, n := range c.Nodes() {
		v, _, err := (&api.Client{Addr: n.Agent.HTTPAddr()}).Convergence(context.Background(), nil)
		if err != nil || len(v.Members) != 2 {
			t.Fatalf("%s: %+v, %v; want two agreeing members", n.Name, v, err)
		}
	}
}
