package localapi

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// addService adds a service of a known remote node, as gossip does.
func (b *testBackend) addService(node string, svc catalog.Service) {
	b.update(func(c *catalog.Catalog) {
		c.Apply(catalog.Entry{Origin: node, Version: b.nextVersion(node), Service: svc.Normalize()}, b.now)
	})
}

func TestCatalogNode(t *testing.T) {
	b, c := filterServer(t)
	b.addService("node-b", catalog.Service{ID: "db-1", Name: "db", Port: 5432, Tags: []string{"primary"}})

	var got catalogNode
	r := c.get("/v1/catalog/node/node-b", &got)
	mustStatus(t, r, 200)
	checkReadHeaders(t, r)
	if got.Node == nil || got.Node.Node != "node-b" || got.Node.Address != "10.0.0.2" || got.Node.Datacenter != "dc1" ||
		got.Node.Meta["env"] != "prod" || got.Node.TaggedAddresses["lan"] != "10.0.0.2" {
		t.Fatalf("node: %+v", got.Node)
	}
	if ids := slices.Sorted(maps.Keys(got.Services)); !slices.Equal(ids, []string{"db-1", "web-1"}) {
		t.Fatalf("services %v", ids)
	}
	web := got.Services["web-1"]
	if web.Service != "web" || web.Port != 8080 || web.Meta["version"] != "2" || !slices.Equal(web.Tags, []string{"prod", "v2"}) ||
		web.CreateIndex == 0 || web.ModifyIndex == 0 {
		t.Fatalf("web-1: %+v", web)
	}

	// The same as a list, sorted by ID, and narrowed by a filter on the
	// services' fields.
	var list nodeServiceList
	mustStatus(t, c.get("/v1/catalog/node-services/node-b", &list), 200)
	if list.Node == nil || list.Node.Node != "node-b" || len(list.Services) != 2 || list.Services[0].ID != "db-1" || list.Services[1].ID != "web-1" {
		t.Fatalf("node-services: %+v", list)
	}
	mustStatus(t, c.get("/v1/catalog/node-services/node-b", &list, "filter", `"primary" in Tags`), 200)
	if len(list.Services) != 1 || list.Services[0].ID != "db-1" {
		t.Fatalf("node-services filtered: %+v", list.Services)
	}
	got = catalogNode{}
	mustStatus(t, c.get("/v1/catalog/node/node-b", &got, "filter", `Port == 8080`), 200)
	if len(got.Services) != 1 || got.Services["web-1"].ID != "web-1" {
		t.Fatalf("node filtered: %+v", got.Services)
	}

	// The local node, with its own services.
	got = catalogNode{}
	mustStatus(t, c.get("/v1/catalog/node/"+localNode, &got), 200)
	if got.Node == nil || got.Node.Address != "10.0.0.1" || got.Services["web-a"].Port != 80 {
		t.Fatalf("local node: %+v", got)
	}

	// A node that is not known or not served: null, and a list with a
	// null node and no services, as Consul answers.
	b.setStatus("node-c", catalog.StatusDead)
	for _, node := range []string{"node-c", "nope"} {
		r := c.get("/v1/catalog/node/"+node, nil)
		if r.code != 200 || r.body != "null" {
			t.Errorf("catalog/node/%s: %d %q", node, r.code, r.body)
		}
		r = c.get("/v1/catalog/node-services/"+node, nil)
		if r.code != 200 || r.body != `{"Node":null,"Services":[]}` {
			t.Errorf("catalog/node-services/%s: %d %q", node, r.code, r.body)
		}
	}

	// A bad filter names the parameter; node-meta is not Consul's here.
	for _, target := range []string{"/v1/catalog/node/node-b?filter=Nope==1", "/v1/catalog/node-services/node-b?filter=(("} {
		r := do(t, c.h, "GET", target, "")
		if r.code != 400 || r.body[:7] != "filter:" {
			t.Errorf("%s: %d %q", target, r.code, r.body)
		}
	}
}

// A blocking query on catalog/node wakes when the node's services change.
func TestCatalogNodeBlocks(t *testing.T) {
	b, h := newTestServer(t)
	b.addRemote("node-b", "10.0.0.2", catalog.Service{ID: "web-1", Name: "web", Port: 8080})
	r := do(t, h, "GET", "/v1/catalog/node/node-b", "")
	index := checkReadHeaders(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reads := b.reads.Load()
	done := blockingGet(ctx, h, "/v1/catalog/node/node-b?index="+strconv.FormatUint(index, 10)+"&wait=30s")
	waitFor(t, 5*time.Second, "the query to wait", func() bool { return b.reads.Load() > reads })
	b.addRemote("node-b", "10.0.0.2", catalog.Service{ID: "web-2", Name: "web", Port: 8081})
	rec := <-done
	var got catalogNode
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got.Services) != 2 {
		t.Fatalf("after the change: %v %s", err, rec.Body)
	}
}

func TestCatalogDatacenters(t *testing.T) {
	_, h := newTestServer(t)
	r := do(t, h, "GET", "/v1/catalog/datacenters", "")
	mustStatus(t, r, 200)
	checkReadHeaders(t, r)
	if r.body != `["dc1"]` {
		t.Fatalf("body %q", r.body)
	}
}

// catalog/services takes node-meta and filter, as Consul does (Prometheus'
// consul_sd sends both): the filter sees each instance as catalog/service
// shows it, and a name lists the tags of the instances that match.
func TestCatalogServicesNarrowed(t *testing.T) {
	b, c := filterServer(t)
	b.addService("node-c", catalog.Service{ID: "db-1", Name: "db", Port: 5432, Tags: []string{"primary"}})
	for _, tt := range []struct {
		kv   []string
		want map[string][]string
	}{
		{nil, map[string][]string{"web": {"local", "prod", "v1", "v2"}, "db": {"primary"}}},
		{[]string{"node-meta", "env:prod"}, map[string][]string{"web": {"prod", "v2"}}},
		{[]string{"node-meta", "rack:r1", "node-meta", "env:staging"}, map[string][]string{"web": {"v1"}, "db": {"primary"}}},
		{[]string{"filter", `ServiceMeta.version == "2"`}, map[string][]string{"web": {"prod", "v2"}}},
		{[]string{"filter", `NodeMeta.env == "prod" and "v2" not in ServiceTags`}, map[string][]string{"web": {"prod"}}},
		{[]string{"filter", `ServicePort == 5432`, "node-meta", "env:staging"}, map[string][]string{"db": {"primary"}}},
		{[]string{"filter", `ServiceName == "nope"`}, map[string][]string{}},
	} {
		var got map[string][]string
		r := c.get("/v1/catalog/services", &got, tt.kv...)
		mustStatus(t, r, 200)
		checkReadHeaders(t, r)
		if !maps.EqualFunc(got, tt.want, slices.Equal) {
			t.Errorf("%v: %v, want %v", tt.kv, got, tt.want)
		}
	}
	r := c.get("/v1/catalog/services", nil, "filter", "Service.Port == 1")
	if r.code != 400 || r.body[:7] != "filter:" {
		t.Errorf("bad selector: %d %q", r.code, r.body)
	}
	r = c.get("/v1/catalog/services", nil, "node-meta", ":x")
	if r.code != 400 || r.body[:10] != "node-meta:" {
		t.Errorf("bad node-meta: %d %q", r.code, r.body)
	}
}

// With ACLs, catalog/node shows what the token may read and says so.
func TestCatalogNodeACL(t *testing.T) {
	b := newTestBackend()
	b.addRemote("node-b", "10.0.0.2", catalog.Service{ID: "web-1", Name: "web", Port: 8080},
		catalog.Service{ID: "secret-1", Name: "secret", Port: 1})
	res, err := acl.NewResolver(acl.Config{
		Enabled: true, DefaultPolicy: "deny",
		Policies: []acl.PolicyConfig{
			{Name: "web", Rules: json.RawMessage(`{"service": {"web": {"policy": "read"}}, "node": {"node-b": {"policy": "read"}}}`)},
			{Name: "services", Rules: json.RawMessage(`{"service_prefix": {"": {"policy": "read"}}}`)},
		},
		Tokens: []acl.TokenConfig{{SecretID: "web", Policies: []string{"web"}}, {SecretID: "svc", Policies: []string{"services"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Backend: b, ACL: func() *acl.Resolver { return res }})
	r := do(t, h, "GET", "/v1/catalog/node/node-b", "", "X-Consul-Token: web")
	var got catalogNode
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || r.code != 200 || len(got.Services) != 1 || got.Services["web-1"].ID == "" {
		t.Fatalf("web token: %d %s", r.code, r.body)
	}
	if r.header[headerFiltered] == nil {
		t.Error("filtered header missing")
	}
	// No read on the node: nothing of it.
	r = do(t, h, "GET", "/v1/catalog/node/node-b", "", "X-Consul-Token: svc")
	if r.code != 200 || r.body != "null" || r.header[headerFiltered] == nil {
		t.Fatalf("without node read: %d %q %v", r.code, r.body, r.header)
	}
	// catalog/services narrowed leaves out instances on nodes it may not read.
	r = do(t, h, "GET", "/v1/catalog/services?node-meta=rack:r1", "", "X-Consul-Token: svc")
	if r.code != 200 || r.body != "{}" || r.header[headerFiltered] == nil {
		t.Fatalf("services without node read: %d %q", r.code, r.body)
	}
}

// The Connect routes answer [] (Shoal has no Connect), check their
// parameters, and block like any read.
func TestConnectRoutesAnswerEmpty(t *testing.T) {
	_, c := filterServer(t)
	for _, p := range []string{"/v1/catalog/connect/web", "/v1/health/connect/web", "/v1/health/ingress/web"} {
		var got []api.ServiceEntry
		r := c.get(p, &got, "passing", "", "filter", `Service.Port == 8080`)
		if p == "/v1/catalog/connect/web" {
			r = c.get(p, &got, "node-meta", "env:prod")
		}
		mustStatus(t, r, 200)
		checkReadHeaders(t, r)
		if r.body != "[]" {
			t.Errorf("%s: %q", p, r.body)
		}
		if r := c.get(p, nil, "filter", "Nope == 1"); r.code != http.StatusBadRequest {
			t.Errorf("%s with a bad filter: %d", p, r.code)
		}
	}
}

// agent/members takes ?filter, as `consul members -filter` sends it.
func TestAgentMembersFilter(t *testing.T) {
	b, h := newTestServer(t)
	b.addRemote("node-b", "10.0.0.2")
	b.addRemote("node-c", "10.0.0.3")
	b.setStatus("node-c", catalog.StatusDead)
	for _, tt := range []struct {
		filter string
		want   []string
	}{
		{`Status == 1`, []string{localNode, "node-b"}},
		{`Addr == "10.0.0.3"`, []string{"node-c"}},
		{`Name matches "^node-[bc]$" and Status != 4`, []string{"node-b"}},
	} {
		r := do(t, h, "GET", "/v1/agent/members?filter="+url.QueryEscape(tt.filter), "")
		mustStatus(t, r, 200)
		var ms []api.AgentMember
		if err := json.Unmarshal([]byte(r.body), &ms); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range ms {
			got = append(got, m.Name)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.filter, got, tt.want)
		}
	}
	if r := do(t, h, "GET", "/v1/agent/members?filter=Nope==1", ""); r.code != 400 || r.body[:7] != "filter:" {
		t.Errorf("bad filter: %d %q", r.code, r.body)
	}
}
