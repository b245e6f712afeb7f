package localapi

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/shoal-sd/shoal/catalog"
)

// The convergence view lists this agent's versions and hash per origin
// and says whether every serving member answered with this agent's
// summary.
func TestConvergenceView(t *testing.T) {
	b, h := newTestServer(t)
	b.addRemote("node-b", "10.0.0.2", catalog.Service{ID: "web-1", Name: "web", Port: 80})
	get := func() convergence {
		t.Helper()
		r := do(t, h, "GET", "/v1/shoal/convergence", "")
		mustStatus(t, r, http.StatusOK)
		var c convergence
		if err := json.Unmarshal([]byte(r.body), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := get()
	if c.Node != localNode || len(c.Origins) != 1 || c.Origins[0].Origin != "node-b" || c.Origins[0].Entries != 1 ||
		c.Origins[0].Known != 1 || !c.Origins[0].Served || len(c.Digest) != 16 {
		t.Fatalf("view %+v", c)
	}
	if c.Converged || len(c.Members) != 1 || c.Members[0].Agrees || c.Members[0].Digest != "" {
		t.Fatalf("node-b did not answer, but %+v", c)
	}
	var sum uint64
	b.Read(func(cat *catalog.Catalog) { sum = cat.Summary() })
	answer := func(s uint64) {
		b.mu.Lock()
		b.summaries = map[string]uint64{"node-b": s}
		b.mu.Unlock()
	}
	answer(sum)
	if c := get(); !c.Converged || !c.Members[0].Agrees || c.Members[0].Digest != c.Digest {
		t.Fatalf("node-b answered the same summary, but %+v", c)
	}
	answer(sum + 1)
	if c := get(); c.Converged || c.Members[0].Agrees {
		t.Fatalf("node-b answered another summary, but %+v", c)
	}
	// A dead member does not count.
	b.setStatus("node-b", catalog.StatusDead)
	if c := get(); !c.Converged || len(c.Members) != 0 {
		t.Fatalf("with node-b dead: %+v", c)
	}
}
