package localapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/serf/coordinate"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// randHeard gives some of the nodes a last-heard age: 0, a few
// milliseconds, or hours; the others are unknown.
func randHeard(r *rand.Rand, nodes ...string) map[string]time.Duration {
	m := map[string]time.Duration{}
	for _, n := range nodes {
		switch r.IntN(4) {
		case 0:
		case 1:
			m[n] = 0
		case 2:
			m[n] = time.Duration(r.Int64N(int64(10 * time.Millisecond)))
		default:
			m[n] = time.Duration(r.Int64N(int64(100 * time.Hour)))
		}
	}
	return m
}

// setLastHeard puts the ages of heard into the reference answers, as the
// encoder must show them: whole milliseconds, none if unknown.
func setLastHeard(heard map[string]time.Duration, cat []api.CatalogService, health ...[]api.ServiceEntry) {
	ms := func(node string) *int64 {
		d, ok := heard[node]
		if !ok {
			return nil
		}
		v := d.Milliseconds()
		return &v
	}
	for i := range cat {
		cat[i].ShoalLastHeardMs = ms(cat[i].Node)
	}
	for _, es := range health {
		for i := range es {
			es[i].ShoalLastHeardMs = ms(es[i].Node.Node)
		}
	}
}

// line is where the test network's nodes sit, in milliseconds: the round
// trip between two is their distance plus a little noise.
var line = map[string]float64{localNode: 0, "node-b": 30, "node-c": 5, "node-d": 60, "node-e": 12}

// converge builds coordinates the way pings would: every node's Vivaldi
// client observes the round trips to the others, round after round.
func converge(t *testing.T, pos map[string]float64) map[string]*coordinate.Coordinate {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 8))
	names := slices.Sorted(maps.Keys(pos))
	clients := map[string]*coordinate.Client{}
	for _, n := range names {
		cl, err := coordinate.NewClient(coordinate.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		clients[n] = cl
	}
	for range 300 {
		for _, a := range names {
			for _, b := range names {
				if a == b {
					continue
				}
				ms := max(pos[a]-pos[b], pos[b]-pos[a]) + 0.2 + 0.3*r.Float64()
				rtt := time.Duration(ms * float64(time.Millisecond))
				if _, err := clients[a].Update(b, clients[b].GetCoordinate(), rtt); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	out := map[string]*coordinate.Coordinate{}
	for n, cl := range clients {
		out[n] = cl.GetCoordinate()
	}
	return out
}

// nearServer serves web on node-a (local) and node-b … node-f; node-f
// has no coordinate.
func nearServer(t *testing.T) (*testBackend, *consulapi.Client, func(path string) response) {
	b, h := newTestServer(t)
	if err := b.RegisterService(catalog.Service{ID: "web-a", Name: "web", Port: 80, Tags: []string{"v1"}}, nil); err != nil {
		t.Fatal(err)
	}
	for i, n := range []string{"node-b", "node-c", "node-d", "node-e", "node-f"} {
		b.addRemote(n, fmt.Sprintf("10.0.0.%d", i+2), catalog.Service{ID: "web-" + n[5:], Name: "web", Port: 80, Tags: []string{"v1"}})
	}
	b.mu.Lock()
	b.coords = converge(t, line)
	b.mu.Unlock()
	get := func(path string) response {
		t.Helper()
		resp := do(t, h, "GET", path, "")
		if resp.code != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.code, resp.body)
		}
		return resp
	}
	return b, consulClient(t, h), get
}

// With round trips injected through the coordinates, ?near orders the
// instances by them: the node itself, then nearest first, nodes without
// a coordinate last.
func TestNearOrdersByInjectedRTTs(t *testing.T) {
	b, cl, _ := nearServer(t)
	for _, n := range []string{"node-b", "node-c", "node-d", "node-e", "node-f"} {
		b.putRemoteCheck(n, catalog.Check{ID: "service:web-" + n[5:], Name: "web", ServiceID: "web-" + n[5:], Type: "ttl", Status: catalog.HealthPassing})
	}
	fromAgent := []string{localNode, "node-c", "node-e", "node-b", "node-d", "node-f"}
	fromD := []string{"node-d", "node-b", "node-e", "node-c", localNode, "node-f"}
	byName := []string{localNode, "node-b", "node-c", "node-d", "node-e", "node-f"}
	for _, tc := range []struct {
		near string
		want []string
	}{
		{"_agent", fromAgent}, {localNode, fromAgent}, {"node-d", fromD},
		{"", byName}, {"no-such-node", byName}, {"node-f", byName},
	} {
		q := &consulapi.QueryOptions{Near: tc.near}
		var health, passing, cat, nodes []string
		es, _, err := cl.Health().Service("web", "", false, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			health = append(health, e.Node.Node)
		}
		es, _, err = cl.Health().ServiceMultipleTags("web", []string{"v1"}, true, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			passing = append(passing, e.Node.Node)
		}
		cs, _, err := cl.Catalog().Service("web", "", q)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			cat = append(cat, c.Node)
		}
		ns, _, err := cl.Catalog().Nodes(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			nodes = append(nodes, n.Node)
		}
		// The checks lists, node by node (each node's checks together).
		var state, checks []string
		hs, _, err := cl.Health().State(consulapi.HealthAny, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range hs {
			if len(state) == 0 || state[len(state)-1] != c.Node {
				state = append(state, c.Node)
			}
		}
		hc, _, err := cl.Health().Checks("web", q)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range hc {
			checks = append(checks, c.Node)
		}
		if want := slices.DeleteFunc(slices.Clone(tc.want), func(n string) bool { return n == localNode }); !slices.Equal(checks, want) {
			t.Errorf("near=%q health/checks: %v, want %v", tc.near, checks, want)
		}
		for what, got := range map[string][]string{"health": health, "health passing tag": passing, "catalog": cat, "nodes": nodes, "health/state": state} {
			if !slices.Equal(got, tc.want) {
				t.Errorf("near=%q %s: %v, want %v", tc.near, what, got, tc.want)
			}
		}
	}
}

// Ties keep the catalog's order: the instances of one node stay
// together, in ID order.
func TestNearKeepsInstancesOfANodeInOrder(t *testing.T) {
	b, _, get := nearServer(t)
	b.addRemote("node-d", "10.0.0.4", catalog.Service{ID: "web-d2", Name: "web", Port: 81},
		catalog.Service{ID: "web-d0", Name: "web", Port: 82})
	var es []api.ServiceEntry
	if err := json.Unmarshal([]byte(get("/v1/health/service/web?near=node-d").body), &es); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Service.ID)
	}
	if want := []string{"web-d", "web-d0", "web-d2", "web-b", "web-e", "web-c", "web-a", "web-f"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

// GET /v1/coordinate/nodes in Consul's shape, read by Consul's client.
func TestCoordinateNodes(t *testing.T) {
	b, cl, get := nearServer(t)
	entries, meta, err := cl.Coordinate().Nodes(nil)
	if err != nil {
		t.Fatal(err)
	}
	if meta.LastIndex == 0 {
		t.Error("no X-Consul-Index")
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Node)
		want := b.coords[e.Node]
		if e.Segment != "" || e.Coord == nil || !slices.Equal(e.Coord.Vec, want.Vec) || e.Coord.Error != want.Error ||
			e.Coord.Adjustment != want.Adjustment || e.Coord.Height != want.Height {
			t.Errorf("entry %+v, want coordinate %+v", e, want)
		}
	}
	if want := []string{localNode, "node-b", "node-c", "node-d", "node-e"}; !slices.Equal(names, want) {
		t.Errorf("nodes %v, want %v", names, want)
	}
	// Consul's field names and nothing else.
	body := get("/v1/coordinate/nodes").body
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	for _, e := range raw {
		if keys := slices.Sorted(maps.Keys(e)); !slices.Equal(keys, []string{"Coord", "Node", "Segment"}) {
			t.Fatalf("keys %v in %s", keys, body)
		}
		var coord map[string]json.RawMessage
		json.Unmarshal(e["Coord"], &coord)
		if keys := slices.Sorted(maps.Keys(coord)); !slices.Equal(keys, []string{"Adjustment", "Error", "Height", "Vec"}) {
			t.Fatalf("coordinate keys %v in %s", keys, body)
		}
	}

	one, _, err := cl.Coordinate().Node("node-c", nil)
	if err != nil || len(one) != 1 || one[0].Node != "node-c" {
		t.Fatalf("coordinate of node-c: %v %+v", err, one)
	}
	if _, _, err := cl.Coordinate().Node("node-f", nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a node without a coordinate: %v, want a 404", err)
	}

	// No coordinates at all is [], not null.
	b.mu.Lock()
	b.coords = nil
	b.mu.Unlock()
	if body := get("/v1/coordinate/nodes").body; body != "[]" {
		t.Errorf("no coordinates: %s", body)
	}
}

// Every instance says how long ago its node was last heard from; Consul's
// client reads the answers all the same.
func TestLastHeardInAnswers(t *testing.T) {
	b, cl, get := nearServer(t)
	b.mu.Lock()
	b.heard = map[string]time.Duration{localNode: 0, "node-b": 1234567 * time.Microsecond, "node-c": 999 * time.Microsecond}
	b.mu.Unlock()
	want := map[string]string{localNode: "0", "node-b": "1234", "node-c": "0"}

	for _, path := range []string{"/v1/health/service/web", "/v1/catalog/service/web"} {
		var raw []map[string]json.RawMessage
		if err := json.Unmarshal([]byte(get(path).body), &raw); err != nil {
			t.Fatal(err)
		}
		if len(raw) != 6 {
			t.Fatalf("%s: %d entries", path, len(raw))
		}
		for _, e := range raw {
			var node string
			if n, ok := e["Node"]; ok && n[0] == '{' {
				var nd struct{ Node string }
				json.Unmarshal(n, &nd)
				node = nd.Node
			} else {
				json.Unmarshal(n, &node)
			}
			got, ok := e["ShoalLastHeardMs"]
			if w, known := want[node]; known != ok || ok && string(got) != w {
				t.Errorf("%s: %s last heard %s (present %v), want %q", path, node, got, ok, w)
			}
		}
	}

	es, _, err := cl.Health().Service("web", "", false, nil)
	if err != nil || len(es) != 6 {
		t.Fatalf("consul client: %v, %d entries", err, len(es))
	}
	cs, _, err := cl.Catalog().Service("web", "", nil)
	if err != nil || len(cs) != 6 {
		t.Fatalf("consul client: %v, %d entries", err, len(cs))
	}
}
