package localapi

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/shoal-sd/shoal/catalog"
)

// The convergence view lists this agent's digest per origin and says
// whether every serving member announced the same catalog digest.
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
	if c.Node != localNode || len(c.Origins) != 1 || c.Origins[0].Origin != "node-b" || c.Origins[0].Entries != 1 || len(c.Digest) != 16 {
		t.Fatalf("view %+v", c)
	}
	if c.Converged || len(c.Members) != 1 || c.Members[0].Agrees {
		t.Fatalf("node-b announced nothing yet, but %+v", c)
	}
	announce := func(digest string) {
		b.update(func(cat *catalog.Catalog) {
			n, _ := cat.Node("node-b")
			n.Meta = map[string]string{catalog.DigestMetaKey: digest}
			cat.SetNode(n, b.now)
		})
	}
	announce(c.Digest)
	if c := get(); !c.Converged || !c.Members[0].Agrees {
		t.Fatalf("node-b announced the same digest, but %+v", c)
	}
	announce("0000000000000001")
	if c := get(); c.Converged {
		t.Fatalf("node-b announced another digest, but %+v", c)
	}
	// A dead member does not count.
	b.setStatus("node-b", catalog.StatusDead)
	if c := get(); !c.Converged || len(c.Members) != 0 {
		t.Fatalf("with node-b dead: %+v", c)
	}
}
