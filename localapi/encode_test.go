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
// encoder is held to.
func referenceInstances(c *catalog.Catalog, name, dc, localAddr string) ([]api.ServiceEntry, []api.CatalogService) {
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
		health = append(health, api.ServiceEntry{
			Node: &api.Node{ID: string(id[:]), Node: in.Node.Name, Address: addr, Datacenter: dc,
				TaggedAddresses: taggedAddresses(addr), Meta: nonNilMap(in.Node.Meta),
				CreateIndex: in.Node.CreateIndex, ModifyIndex: in.Node.ModifyIndex},
			Service: &api.AgentService{ID: in.Service.ID, Service: in.Service.Name,
				Tags: nonNilSlice(in.Service.Tags), Meta: nonNilMap(in.Service.Meta), Port: in.Service.Port,
				Address: in.Service.Address, Weights: w, CreateIndex: in.CreateIndex, ModifyIndex: in.ModifyIndex},
			Checks: []*api.HealthCheck{{Node: in.Node.Name, CheckID: "serfHealth", Name: "Serf Health Status",
				Status: status, Output: output, ServiceTags: []string{},
				CreateIndex: in.Node.CreateIndex, ModifyIndex: in.Node.ModifyIndex}},
		})
		cat = append(cat, api.CatalogService{ID: string(id[:]), Node: in.Node.Name, Address: addr,
			Datacenter: dc, TaggedAddresses: taggedAddresses(addr), NodeMeta: nonNilMap(in.Node.Meta),
			ServiceID: in.Service.ID, ServiceName: in.Service.Name, ServiceAddress: in.Service.Address,
			ServiceTags: nonNilSlice(in.Service.Tags), ServiceMeta: nonNilMap(in.Service.Meta),
			ServicePort: in.Service.Port, ServiceWeights: w, CreateIndex: in.CreateIndex, ModifyIndex: in.ModifyIndex})
	}
	return health, cat
}

// TestEncoderMatchesEncodingJSON holds the hand-written encoder to
// encoding/json's output for api.ServiceEntry and api.CatalogService,
// over catalogs full of strings that need escaping. Entries go in through
// Apply, which (like gossip) does not validate, so anything may appear.
func TestEncoderMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	compared := 0
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
				for i := range r.IntN(4) {
					var tags []string
					for range r.IntN(4) {
						tags = append(tags, randString(r))
					}
					c.Apply(catalog.Entry{Origin: node, Version: catalog.Version{Epoch: 1, Counter: uint64(i + 1)},
						Service: catalog.Service{ID: fmt.Sprintf("web-%d-%d", n, i) + randString(r), Name: "web",
							Tags: tags, Address: randString(r), Port: r.IntN(70000) - 100, Meta: randMeta(r),
							Weights: catalog.Weights{Passing: r.IntN(100), Warning: r.IntN(100)}}}, b.now)
				}
			}
			if r.IntN(2) == 0 {
				c.Put(catalog.Service{ID: "local-web", Name: "web", Port: 80, Tags: []string{"x"}}, b.now)
			}
		})
		var health []api.ServiceEntry
		var cat []api.CatalogService
		b.Read(func(c *catalog.Catalog) { health, cat = referenceInstances(c, "web", b.dc, b.addr) })
		compared += len(health)
		for _, tc := range []struct {
			path string
			want any
		}{{"/v1/health/service/web", health}, {"/v1/catalog/service/web", cat}} {
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
	if compared < 300 {
		t.Errorf("only %d instances compared", compared)
	}
	t.Logf("%d instances compared", compared)
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
