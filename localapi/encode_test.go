package localapi

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// randString draws from plain ASCII and everything encoding/json escapes
// or replaces.
func randString(r *rand.Rand) string {
	pieces := []string{"a", "Z", "9", "-", " ", "\"", "\\", "<", ">", "&", "\n", "\t", "\x00", "\x1f", "\x7f",
		"é", "\u2028", "\u2029", "\xff", "\xc3", "🐟", "/", "'"}
	var sb strings.Builder
	for range r.IntN(8) {
		if r.IntN(3) == 0 {
			sb.WriteString(pieces[r.IntN(len(pieces))])
		} else {
			sb.WriteByte(byte('a' + r.IntN(26)))
		}
	}
	return sb.String()
}

func randMeta(r *rand.Rand) map[string]string {
	if r.IntN(4) == 0 {
		return nil
	}
	m := map[string]string{}
	for range r.IntN(5) {
		m[randString(r)] = randString(r)
	}
	return m
}

// referenceInstances builds, from the catalog, what the two instance
// endpoints must show, as api values: the specification the hand-written
// encoder is held to. worst, if not 0, keeps only the health entries no
// worse than it, as ?passing (passing) and ?passing&warning (warning) do.
func referenceInstances(c *catalog.Catalog, name, dc, localAddr string, worst catalog.Health) ([]api.ServiceEntry, []api.CatalogService) {
	health := []api.ServiceEntry{}
	cat := []api.CatalogService{}
	for _, in := range c.Instances(name) {
		addr := in.Node.Address
		if addr == "" && in.Node.Name == c.LocalName() {
			addr = localAddr
		}
		id := catalog.NodeIDBytes(in.Node.Name)
		status, output := "passing", "Agent alive and reachable"
		if !in.Node.Serving() {
			status, output = "critical", "Agent not live or unreachable"
		}
		w := api.AgentWeights{Passing: in.Service.Weights.Passing, Warning: in.Service.Weights.Warning}
		cat = append(cat, api.CatalogService{ID: string(id[:]), Node: in.Node.Name, Address: addr,
			Datacenter: dc, TaggedAddresses: taggedAddresses(addr), NodeMeta: nonNilMap(in.Node.Meta),
			ServiceID: in.Service.ID, ServiceName: in.Service.Name, ServiceAddress: in.Service.Address,
			ServiceTags: nonNilSlice(in.Service.Tags), ServiceMeta: nonNilMap(in.Service.Meta),
			ServicePort: in.Service.Port, ServiceWeights: w, CreateIndex: in.CreateIndex, ModifyIndex: in.ModifyIndex})
		state := in.Status
		if !in.Node.Serving() {
			state = catalog.HealthCritical
		}
		if worst != 0 && state > worst {
			continue
		}
		checks := []*api.HealthCheck{{Node: in.Node.Name, CheckID: "serfHealth", Name: "Serf Health Status",
			Status: status, Output: output, ServiceTags: []string{},
			CreateIndex: in.Node.CreateIndex, ModifyIndex: in.Node.ModifyIndex}}
		for _, v := range in.Checks {
			checks = append(checks, &api.HealthCheck{Node: v.Node, CheckID: v.Check.ID, Name: v.Check.Name,
				Status: v.Check.Status.String(), Notes: v.Check.Notes, Output: v.Check.Output,
				ServiceID: v.Check.ServiceID, ServiceName: v.ServiceName, ServiceTags: nonNilSlice(v.ServiceTags),
				Type: v.Check.Type, CreateIndex: v.CreateIndex, ModifyIndex: v.ModifyIndex, Damped: v.Check.Damped})
		}
		health = append(health, api.ServiceEntry{
			Node: &api.Node{ID: string(id[:]), Node: in.Node.Name, Address: addr, Datacenter: dc,
				TaggedAddresses: taggedAddresses(addr), Meta: nonNilMap(in.Node.Meta),
				CreateIndex: in.Node.CreateIndex, ModifyIndex: in.Node.ModifyIndex},
			Service: &api.AgentService{ID: in.Service.ID, Service: in.Service.Name,
				Tags: nonNilSlice(in.Service.Tags), Meta: nonNilMap(in.Service.Meta), Port: in.Service.Port,
				Address: in.Service.Address, Weights: w, CreateIndex: in.CreateIndex, ModifyIndex: in.ModifyIndex},
			Checks: checks,
		})
	}
	return health, cat
}

// randCheck draws a check as a peer might gossip it: Apply does not
// validate, so any string, and any status byte, may arrive.
func randCheck(r *rand.Rand, id, serviceID string) catalog.Check {
	return catalog.Check{ID: id, Name: randString(r), ServiceID: serviceID,
		Type:   []string{"ttl", "http", "tcp", randString(r)}[r.IntN(4)],
		Status: catalog.Health(r.IntN(5)), Notes: randString(r), Output: randString(r), Damped: r.IntN(4) == 0}
}

// TestEncoderMatchesEncodingJSON holds the hand-written encoder to
// encoding/json's output for api.ServiceEntry and api.CatalogService,
// over catalogs full of strings that need escaping, with checks in every
// state, and filtered by ?passing and ?passing&warning. Entries go in
// through Apply, which (like gossip) does not validate, so anything may
// appear.
func TestEncoderMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	compared, checks, kept := 0, 0, 0
	for iter := range 200 {
		b := newTestBackend()
		if iter%5 == 0 {
			b.cat = catalog.New(localNode, 100) // local node unknown: address from Self
		}
		h := New(Config{Backend: b})
		b.update(func(c *catalog.Catalog) {
			for n := range r.IntN(4) {
				node := fmt.Sprintf("node-%d", n)
				st := []catalog.NodeStatus{catalog.StatusAlive, catalog.StatusSuspect, catalog.StatusDead}[r.IntN(3)]
				addr := []string{"10.0.0.9", "fd00::9", "", randString(r)}[r.IntN(4)]
				c.SetNode(catalog.Node{Name: node, Address: addr, Status: st, Epoch: 1, Meta: randMeta(r)}, b.now)
				counter := uint64(0)
				apply := func(e catalog.Entry) {
					counter++
					e.Origin, e.Version = node, catalog.Version{Epoch: 1, Counter: counter}
					c.Apply(e, b.now)
				}
				for i := range r.IntN(4) {
					var tags []string
					for range r.IntN(4) {
						tags = append(tags, randString(r))
					}
					id := fmt.Sprintf("web-%d-%d", n, i) + randString(r)
					apply(catalog.Entry{Service: catalog.Service{ID: id, Name: "web",
						Tags: tags, Address: randString(r), Port: r.IntN(70000) - 100, Meta: randMeta(r),
						Weights: catalog.Weights{Passing: r.IntN(100), Warning: r.IntN(100)}}})
					for j := range r.IntN(3) {
						apply(catalog.Entry{Kind: catalog.KindCheck, Check: randCheck(r, fmt.Sprintf("svc-%d-%d", i, j), id)})
					}
				}
				for j := range r.IntN(3) {
					// Node checks, and checks of a service the node lacks.
					serviceID := []string{"", "", "no-such-service"}[r.IntN(3)]
					apply(catalog.Entry{Kind: catalog.KindCheck, Check: randCheck(r, fmt.Sprintf("node-%d", j), serviceID)})
				}
			}
			if r.IntN(2) == 0 {
				c.Put(catalog.Service{ID: "local-web", Name: "web", Port: 80, Tags: []string{"x"}}, b.now)
				if r.IntN(2) == 0 {
					c.PutCheck(catalog.Check{ID: "local-ttl", Name: "TTL", ServiceID: "local-web", Type: "ttl",
						Status: catalog.Health(r.IntN(3) + 1), Output: "it's <fine> & \"ok\"\n"}, b.now)
				}
			}
		})
		b.heard = randHeard(r, localNode, "node-0", "node-1", "node-2")
		var health, passing, warning []api.ServiceEntry
		var cat []api.CatalogService
		b.Read(func(c *catalog.Catalog) {
			health, cat = referenceInstances(c, "web", b.dc, b.addr, 0)
			passing, _ = referenceInstances(c, "web", b.dc, b.addr, catalog.HealthPassing)
			warning, _ = referenceInstances(c, "web", b.dc, b.addr, catalog.HealthWarning)
		})
		setLastHeard(b.heard, cat, health, passing, warning)
		compared += len(health)
		kept += len(passing) + len(warning)
		for _, e := range health {
			checks += len(e.Checks) - 1
		}
		for _, tc := range []struct {
			path string
			want any
		}{
			{"/v1/health/service/web", health}, {"/v1/catalog/service/web", cat},
			{"/v1/health/service/web?passing", passing}, {"/v1/health/service/web?passing&warning", warning},
		} {
			want, err := json.Marshal(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			got := do(t, h, "GET", tc.path, "")
			if got.body != string(want) {
				t.Fatalf("iteration %d %s:\n got %s\nwant %s", iter, tc.path, got.body, want)
			}
		}
	}
	if compared < 300 || checks < 300 || kept < 100 || kept > 2*compared-100 {
		t.Errorf("only %d instances (%d kept by the filters) and %d checks compared", compared, kept, checks)
	}
	t.Logf("%d instances (%d kept by the filters) and %d checks compared", compared, kept, checks)
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "a\"b", "<&>", "\u2028", "\xff\xfe", "tab\there", "é", "\x7f"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestSortPairs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		m := randMeta(r)
		kv := sortedPairs(m)
		if len(kv) != 2*len(m) {
			t.Fatalf("pairs %v of %v", kv, m)
		}
		for i := 0; i < len(kv); i += 2 {
			if m[kv[i]] != kv[i+1] || i > 0 && kv[i-2] >= kv[i] {
				t.Fatalf("pairs %v of %v", kv, m)
			}
		}
	}
}
