package agent_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// preserving reads health/service/web on n and reports the
// X-Shoal-Self-Preservation header and the passing instances' IDs.
func preserving(t *testing.T, n *testutil.Node) (bool, []string) {
	t.Helper()
	resp, err := http.Get("http://" + n.Agent.HTTPAddr() + "/v1/health/service/web?passing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var ids []string
	entries, _, err := consulClient(t, n).Health().Service("web", "", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		ids = append(ids, e.Node.Node+"/"+e.Service.ID)
	}
	return resp.Header.Get("X-Shoal-Self-Preservation") == "true", ids
}

// An agent cut off from every other member sees them all fail at once and
// enters self-preservation: it keeps serving their instances (?passing
// keeps those last known passing, not the one last known critical), says
// so in a header and a metric, while the others, which lost only it, hide
// its instance as usual. When the link is back it leaves
// self-preservation and serves what the cluster says.
func TestSelfPreservationOfACutOffAgent(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) { cfg.ReconnectInterval = time.Second }
	for i := range 4 {
		c.Start(fmt.Sprintf("node-%d", i), 0)
	}
	c.JoinAll()
	for i, n := range c.Nodes() {
		if err := n.Agent.RegisterService(web(fmt.Sprintf("web-%d", i), 8080), nil); err != nil {
			t.Fatal(err)
		}
	}
	sick := consul.AgentServiceRegistration{ID: "sick", Name: "web", Port: 81, Check: &consul.AgentServiceCheck{TTL: "10m"}}
	if err := consulClient(t, c.Node("node-3")).Agent().ServiceRegister(&sick); err != nil {
		t.Fatal(err)
	}
	all := []string{"node-0/web-0", "node-1/web-1", "node-2/web-2", "node-3/sick", "node-3/web-3"}
	seenBy(t, c, all...)
	healthy := []string{"node-0/web-0", "node-1/web-1", "node-2/web-2", "node-3/web-3"}
	n0 := c.Node("node-0")
	if on, got := preserving(t, n0); on || fmt.Sprint(got) != fmt.Sprint(healthy) {
		t.Fatalf("before the cut: header %v, passing %v", on, got)
	}

	c.Net.Cut(c.Addrs("node-0"), c.Addrs("node-1", "node-2", "node-3"))
	testutil.WaitFor(t, converge, func() error {
		if got := n0.Alive(); got != 1 {
			return fmt.Errorf("node-0 sees %d alive", got)
		}
		return nil
	})
	on, got := preserving(t, n0)
	if !on || fmt.Sprint(got) != fmt.Sprint(healthy) {
		t.Fatalf("cut off: header %v, passing %v; want the last known passing instances", on, got)
	}
	if len(n0.Instances("web")) != len(all) {
		t.Fatalf("cut off: serves %d instances, want %d", len(n0.Instances("web")), len(all))
	}
	if v := scrape(t, n0)["shoal_self_preservation"]; v != 1 {
		t.Fatalf("shoal_self_preservation = %v", v)
	}
	for _, name := range []string{"node-1", "node-2", "node-3"} {
		n := c.Node(name)
		testutil.WaitFor(t, converge, func() error {
			for _, in := range n.Instances("web") {
				if in.Node.Name == "node-0" {
					return fmt.Errorf("%s still serves node-0's instance", name)
				}
			}
			return nil
		})
		if on, _ := preserving(t, n); on {
			t.Fatalf("%s, which lost one member of four, is in self-preservation", name)
		}
	}

	c.Net.Heal()
	c.WaitMembers(converge, 4)
	testutil.WaitFor(t, converge, func() error {
		if on, _ := preserving(t, n0); on {
			return fmt.Errorf("node-0 still in self-preservation")
		}
		return nil
	})
	seenBy(t, c, all...)
	var kept int
	n0.Agent.Read(func(cat *catalog.Catalog) { kept = cat.Preservation().Nodes })
	if kept != 0 {
		t.Fatalf("%d members still kept after the heal", kept)
	}
}

// Self-preservation can be turned off: a cut-off agent then hides every
// member it lost, as before.
func TestSelfPreservationOff(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) { cfg.SelfPreservation.Enabled = false }
	for i := range 3 {
		c.Start(fmt.Sprintf("node-%d", i), 0)
	}
	c.JoinAll()
	if err := c.Node("node-1").Agent.RegisterService(web("web-1", 8080), nil); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-1/web-1")
	n0 := c.Node("node-0")
	c.Net.Cut(c.Addrs("node-0"), c.Addrs("node-1", "node-2"))
	testutil.WaitFor(t, converge, func() error {
		if got := len(n0.Instances("web")); got != 0 {
			return fmt.Errorf("node-0 serves %d instances", got)
		}
		return nil
	})
	if on, _ := preserving(t, n0); on {
		t.Fatal("header set with self-preservation off")
	}
}
