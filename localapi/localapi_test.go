package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// The JSON keys of Consul's own types (github.com/hashicorp/consul/api
// v1.33), in their order. Shoal shows a subset of each, in the same order.
var (
	consulAgentServiceKeys = []string{"Kind", "ID", "Service", "Tags", "Meta", "Port", "Ports", "Address",
		"SocketPath", "TaggedAddresses", "Weights", "EnableTagOverride", "CreateIndex", "ModifyIndex",
		"ContentHash", "Proxy", "Connect", "PeerName", "Namespace", "Partition", "Datacenter", "Locality"}
	consulNodeKeys = []string{"ID", "Node", "Address", "Datacenter", "TaggedAddresses", "Meta",
		"CreateIndex", "ModifyIndex", "Partition", "PeerName", "Locality"}
	consulCatalogServiceKeys = []string{"ID", "Node", "Address", "Datacenter", "TaggedAddresses", "NodeMeta",
		"ServiceID", "ServiceName", "ServiceAddress", "ServiceTaggedAddresses", "ServiceTags", "ServiceMeta",
		"ServicePort", "ServiceWeights", "ServiceEnableTagOverride", "ServiceProxy", "ServiceLocality",
		"CreateIndex", "Checks", "ModifyIndex", "Namespace", "Partition"}
	consulHealthCheckKeys = []string{"Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID",
		"ServiceName", "ServiceTags", "Type", "Namespace", "Partition", "ExposedPort", "PeerName",
		"Definition", "CreateIndex", "ModifyIndex"}
	consulServiceEntryKeys = []string{"Node", "Service", "Checks"}
	consulWeightsKeys      = []string{"Passing", "Warning"}
	consulMemberKeys       = []string{"Name", "Addr", "Port", "Tags", "Status", "ProtocolMin", "ProtocolMax",
		"ProtocolCur", "DelegateMin", "DelegateMax", "DelegateCur"}
)

// objectKeys returns the keys of a JSON object in the order they appear.
func objectKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// checkKeys checks that an object has exactly the keys want, in that
// order, and that Consul's type has them all, in the same order.
func checkKeys(t *testing.T, what string, raw []byte, want, consul []string) {
	t.Helper()
	got := objectKeys(t, raw)
	if !slices.Equal(got, want) {
		t.Errorf("%s keys = %v, want %v", what, got, want)
	}
	last := -1
	for _, k := range got {
		i := slices.Index(consul, k)
		if i < 0 {
			t.Errorf("%s: Consul's type has no field %q", what, k)
		} else if i < last {
			t.Errorf("%s: field %q out of Consul's order", what, k)
		}
		last = i
	}
}

func mustStatus(t *testing.T, r response, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d; body %q", r.code, code, r.body)
	}
}

func checkReadHeaders(t *testing.T, r response) uint64 {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if v := r.header.Get("X-Consul-KnownLeader"); v != "true" {
		t.Errorf("X-Consul-KnownLeader = %q", v)
	}
	if v := r.header.Get("X-Consul-LastContact"); v != "0" {
		t.Errorf("X-Consul-LastContact = %q", v)
	}
	ix, err := strconv.ParseUint(r.header.Get("X-Consul-Index"), 10, 64)
	if err != nil || ix < 1 {
		t.Errorf("X-Consul-Index = %q", r.header.Get("X-Consul-Index"))
	}
	return ix
}

// register registers a service through the API.
func register(t *testing.T, h http.Handler, body string) {
	t.Helper()
	mustStatus(t, do(t, h, "PUT", "/v1/agent/service/register", body), http.StatusOK)
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRegisterAndReadShapes(t *testing.T) {
	_, h := newTestServer(t)
	// As Consul's Go client sends it: Check and Checks null.
	r := do(t, h, "PUT", "/v1/agent/service/register",
		`{"ID":"web-1","Name":"web","Tags":["v1","prod"],"Port":8080,"Address":"10.0.0.5",`+
			`"Meta":{"version":"1"},"Weights":{"Passing":3,"Warning":1},"Check":null,"Checks":null}`)
	mustStatus(t, r, http.StatusOK)
	if r.body != "" {
		t.Errorf("register body = %q, want empty", r.body)
	}
	// Keys match case-insensitively; the ID defaults to the name.
	register(t, h, `{"name":"db","port":5432,"check":{"TTL":"10s"},"checks":[{"HTTP":"http://x/"}]}`)

	t.Run("agent/services", func(t *testing.T) {
		r := do(t, h, "GET", "/v1/agent/services", "")
		mustStatus(t, r, http.StatusOK)
		checkReadHeaders(t, r)
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(r.body), &raw); err != nil {
			t.Fatal(err)
		}
		if len(raw) != 2 || raw["web-1"] == nil || raw["db"] == nil {
			t.Fatalf("services = %s", r.body)
		}
		checkKeys(t, "AgentService", raw["web-1"], []string{"ID", "Service", "Tags", "Meta", "Port",
			"Address", "Weights", "EnableTagOverride", "Datacenter"}, consulAgentServiceKeys)
		var got map[string]api.AgentService
		json.Unmarshal([]byte(r.body), &got)
		want := api.AgentService{ID: "web-1", Service: "web", Tags: []string{"v1", "prod"},
			Meta: map[string]string{"version": "1"}, Port: 8080, Address: "10.0.0.5",
			Weights: api.AgentWeights{Passing: 3, Warning: 1}, Datacenter: "dc1"}
		if fmt.Sprint(got["web-1"]) != fmt.Sprint(want) {
			t.Errorf("web-1 = %+v, want %+v", got["web-1"], want)
		}
		// Defaults: weights 1/1, empty tags and meta as [] and {}.
		if !strings.Contains(string(raw["db"]), `"Tags":[],"Meta":{},"Port":5432,"Address":"","Weights":{"Passing":1,"Warning":1}`) {
			t.Errorf("db = %s", raw["db"])
		}
	})

	t.Run("agent/service/:id", func(t *testing.T) {
		r := do(t, h, "GET", "/v1/agent/service/web-1", "")
		mustStatus(t, r, http.StatusOK)
		checkReadHeaders(t, r)
		checkKeys(t, "AgentService", []byte(r.body), []string{"ID", "Service", "Tags", "Meta", "Port",
			"Address", "Weights", "EnableTagOverride", "ContentHash", "Datacenter"}, consulAgentServiceKeys)
		var got api.AgentService
		json.Unmarshal([]byte(r.body), &got)
		if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(got.ContentHash) || r.header.Get("X-Consul-ContentHash") != got.ContentHash {
			t.Errorf("ContentHash %q, header %q", got.ContentHash, r.header.Get("X-Consul-ContentHash"))
		}
		if r2 := do(t, h, "GET", "/v1/agent/service/db", ""); r2.header.Get("X-Consul-ContentHash") == got.ContentHash {
			t.Error("two services share a ContentHash")
		}
	})

	t.Run("catalog/services", func(t *testing.T) {
		r := do(t, h, "GET", "/v1/catalog/services", "")
		mustStatus(t, r, http.StatusOK)
		checkReadHeaders(t, r)
		if want := `{"db":[],"web":["prod","v1"]}`; r.body != want {
			t.Errorf("body = %s, want %s", r.body, want)
		}
	})

	t.Run("catalog/service/:name", func(t *testing.T) {
		r := do(t, h, "GET", "/v1/catalog/service/web", "")
		mustStatus(t, r, http.StatusOK)
		checkReadHeaders(t, r)
		var list []json.RawMessage
		json.Unmarshal([]byte(r.body), &list)
		if len(list) != 1 {
			t.Fatalf("body = %s", r.body)
		}
		checkKeys(t, "CatalogService", list[0], []string{"ID", "Node", "Address", "Datacenter",
			"TaggedAddresses", "NodeMeta", "ServiceID", "ServiceName", "ServiceAddress", "ServiceTags",
			"ServiceMeta", "ServicePort", "ServiceWeights", "ServiceEnableTagOverride", "CreateIndex",
			"ModifyIndex"}, consulCatalogServiceKeys)
		var got []api.CatalogService
		json.Unmarshal([]byte(r.body), &got)
		cs := got[0]
		if !uuidRE.MatchString(cs.ID) || cs.Node != localNode || cs.Address != "10.0.0.1" || cs.Datacenter != "dc1" ||
			cs.ServiceID != "web-1" || cs.ServiceName != "web" || cs.ServiceAddress != "10.0.0.5" ||
			cs.ServicePort != 8080 || !slices.Equal(cs.ServiceTags, []string{"v1", "prod"}) ||
			cs.ServiceMeta["version"] != "1" || cs.ServiceWeights != (api.AgentWeights{Passing: 3, Warning: 1}) ||
			cs.NodeMeta["shoal-epoch"] != "100" || cs.CreateIndex == 0 || cs.ModifyIndex < cs.CreateIndex {
			t.Errorf("catalog service = %+v", cs)
		}
		wantTA := map[string]string{"lan": "10.0.0.1", "lan_ipv4": "10.0.0.1", "wan": "10.0.0.1", "wan_ipv4": "10.0.0.1"}
		if fmt.Sprint(cs.TaggedAddresses) != fmt.Sprint(wantTA) {
			t.Errorf("TaggedAddresses = %v", cs.TaggedAddresses)
		}
	})

	t.Run("health/service/:name", func(t *testing.T) {
		r := do(t, h, "GET", "/v1/health/service/web", "")
		mustStatus(t, r, http.StatusOK)
		checkReadHeaders(t, r)
		var list []map[string]json.RawMessage
		json.Unmarshal([]byte(r.body), &list)
		if len(list) != 1 {
			t.Fatalf("body = %s", r.body)
		}
		var entry json.RawMessage
		json.Unmarshal([]byte(r.body), &[]*json.RawMessage{&entry})
		checkKeys(t, "ServiceEntry", entry, consulServiceEntryKeys, consulServiceEntryKeys)
		checkKeys(t, "Node", list[0]["Node"], []string{"ID", "Node", "Address", "Datacenter",
			"TaggedAddresses", "Meta", "CreateIndex", "ModifyIndex"}, consulNodeKeys)
		checkKeys(t, "Service", list[0]["Service"], []string{"ID", "Service", "Tags", "Meta", "Port",
			"Address", "Weights", "EnableTagOverride", "CreateIndex", "ModifyIndex"}, consulAgentServiceKeys)
		var svc map[string]json.RawMessage
		json.Unmarshal(list[0]["Service"], &svc)
		checkKeys(t, "Weights", svc["Weights"], consulWeightsKeys, consulWeightsKeys)
		var checks []json.RawMessage
		json.Unmarshal(list[0]["Checks"], &checks)
		if len(checks) != 1 {
			t.Fatalf("checks = %s", list[0]["Checks"])
		}
		checkKeys(t, "HealthCheck", checks[0], []string{"Node", "CheckID", "Name", "Status", "Notes",
			"Output", "ServiceID", "ServiceName", "ServiceTags", "Type", "CreateIndex", "ModifyIndex"}, consulHealthCheckKeys)
		if !strings.Contains(string(checks[0]), `"ServiceTags":[]`) {
			t.Errorf("ServiceTags must be [], got %s", checks[0])
		}
		var got []api.ServiceEntry
		json.Unmarshal([]byte(r.body), &got)
		e := got[0]
		if !uuidRE.MatchString(e.Node.ID) || e.Node.Node != localNode || e.Node.Address != "10.0.0.1" ||
			e.Node.Datacenter != "dc1" || e.Node.Meta["shoal-epoch"] != "100" {
			t.Errorf("node = %+v", e.Node)
		}
		if e.Service.ID != "web-1" || e.Service.Service != "web" || e.Service.Port != 8080 ||
			e.Service.Address != "10.0.0.5" || !slices.Equal(e.Service.Tags, []string{"v1", "prod"}) {
			t.Errorf("service = %+v", e.Service)
		}
		c := e.Checks[0]
		if c.Node != localNode || c.CheckID != "serfHealth" || c.Name != "Serf Health Status" ||
			c.Status != "passing" || c.Output != "Agent alive and reachable" || c.ServiceID != "" ||
			c.ServiceName != "" || c.ServiceTags == nil || len(c.ServiceTags) != 0 {
			t.Errorf("check = %+v", c)
		}
	})

	t.Run("catalog/nodes", func(t *testing.T) {
		r := do(t, h, "GET", "/v1/catalog/nodes", "")
		mustStatus(t, r, http.StatusOK)
		checkReadHeaders(t, r)
		var list []json.RawMessage
		json.Unmarshal([]byte(r.body), &list)
		if len(list) != 1 {
			t.Fatalf("body = %s", r.body)
		}
		checkKeys(t, "Node", list[0], []string{"ID", "Node", "Address", "Datacenter", "TaggedAddresses",
			"Meta", "CreateIndex", "ModifyIndex"}, consulNodeKeys)
		var nodes []api.Node
		json.Unmarshal([]byte(r.body), &nodes)
		id := catalog.NodeIDBytes(localNode)
		if nodes[0].ID != string(id[:]) || !uuidRE.MatchString(nodes[0].ID) || nodes[0].Node != localNode ||
			nodes[0].TaggedAddresses["lan_ipv4"] != "10.0.0.1" {
			t.Errorf("node = %+v", nodes[0])
		}
	})
}

func TestNodeID(t *testing.T) {
	a, b := catalog.NodeIDBytes("node-a"), catalog.NodeIDBytes("node-a")
	if a != b {
		t.Error("node ID not stable")
	}
	if c := catalog.NodeIDBytes("node-b"); c == a {
		t.Error("two names share an ID")
	}
	if !uuidRE.Match(a[:]) {
		t.Errorf("%s is not a version 5 UUID", a)
	}
}

func TestTaggedAddressesIPv6(t *testing.T) {
	m := taggedAddresses("fd00::1")
	if m["lan_ipv6"] != "fd00::1" || m["wan_ipv6"] != "fd00::1" || m["lan"] != "fd00::1" || len(m) != 4 {
		t.Errorf("tagged addresses = %v", m)
	}
}

func TestBadRequests(t *testing.T) {
	b, h := newTestServer(t)
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080,"Tags":["v1"]}`)
	tags := make([]string, catalog.MaxTags+1)
	for i := range tags {
		tags[i] = fmt.Sprintf("%q", "t"+strconv.Itoa(i))
	}
	reg := "/v1/agent/service/register"
	cases := []struct {
		name, method, path, body string
		headers                  []string
		code                     int
		want                     string // in the body
	}{
		{"bad name", "PUT", reg, `{"ID":"web-1","Name":"web_1","Port":80}`, nil, 400, "Name: "},
		{"empty name", "PUT", reg, `{"ID":"web-1","Port":80}`, nil, 400, "Name: "},
		{"port 0", "PUT", reg, `{"ID":"web-1","Name":"web","Port":0}`, nil, 400, "Port: 0"},
		{"port missing", "PUT", reg, `{"ID":"web-1","Name":"web"}`, nil, 400, "Port: 0"},
		{"port 70000", "PUT", reg, `{"ID":"web-1","Name":"web","Port":70000}`, nil, 400, "Port: 70000"},
		{"port negative", "PUT", reg, `{"ID":"web-1","Name":"web","Port":-1}`, nil, 400, "Port: -1"},
		{"port not a number", "PUT", reg, `{"ID":"web-1","Name":"web","Port":"80"}`, nil, 400, "Port: expected a number"},
		{"port fraction", "PUT", reg, `{"ID":"web-1","Name":"web","Port":80.5}`, nil, 400, "Port: "},
		{"ID with slash", "PUT", reg, `{"ID":"web/1","Name":"web","Port":80}`, nil, 400, "ID: "},
		{"too many tags", "PUT", reg, `{"ID":"web-1","Name":"web","Port":80,"Tags":[` + strings.Join(tags, ",") + `]}`, nil, 400, "Tags: "},
		{"empty tag", "PUT", reg, `{"ID":"web-1","Name":"web","Port":80,"Tags":["a",""]}`, nil, 400, "Tags[1]: "},
		{"oversize meta value", "PUT", reg, `{"ID":"web-1","Name":"web","Port":80,"Meta":{"k":"` + strings.Repeat("v", catalog.MaxMetaValueLen+1) + `"}}`, nil, 400, "Meta[k]: "},
		{"bad meta key", "PUT", reg, `{"ID":"web-1","Name":"web","Port":80,"Meta":{"bad key":"v"}}`, nil, 400, `Meta: key "bad key"`},
		{"bad weights", "PUT", reg, `{"ID":"web-1","Name":"web","Port":80,"Weights":{"Passing":0,"Warning":5}}`, nil, 400, "Weights.Passing: "},
		{"bad address", "PUT", reg, `{"ID":"web-1","Name":"web","Port":80,"Address":"not an address"}`, nil, 400, "Address: "},
		{"unknown field", "PUT", reg, `{"ID":"web-1","Name":"web","Port":80,"Bogus":1}`, nil, 400, "Bogus: unknown field"},
		{"unknown check field", "PUT", reg, `{"ID":"web-1","Name":"web","Port":80,"Check":{"Bogus":1}}`, nil, 400, "Check.Bogus: unknown field"},
		{"unknown checks field", "PUT", reg, `{"ID":"web-1","Name":"web","Port":80,"Checks":[{"TTL":"5s"},{"Bogus":1}]}`, nil, 400, "Checks[1].Bogus: unknown field"},
		{"unknown weights field", "PUT", reg, `{"ID":"web-1","Name":"web","Port":80,"Weights":{"Bogus":1}}`, nil, 400, "Weights.Bogus: unknown field"},
		{"kind", "PUT", reg, `{"Kind":"connect-proxy","ID":"web-1","Name":"web","Port":80}`, nil, 400, `Kind: "connect-proxy" not supported`},
		{"bad JSON", "PUT", reg, `{"ID":"web-1","Name":`, nil, 400, "body: "},
		{"bad JSON syntax", "PUT", reg, `{"ID":"web-1",,}`, nil, 400, "body: invalid JSON"},
		{"not an object", "PUT", reg, `["web"]`, nil, 400, "body: expected a JSON object"},
		{"trailing data", "PUT", reg, `{"ID":"web-1","Name":"web","Port":80} {}`, nil, 400, "body: unexpected data"},
		{"empty body", "PUT", reg, ``, nil, 400, "body: empty"},
		{"body too big", "PUT", reg, `{"ID":"web-1","Name":"web","Port":80,"Meta":{"k":"` + strings.Repeat("v", 70<<10) + `"}}`, nil, 413, "body: "},
		{"bad dc on a write", "PUT", reg + "?dc=dc2", `{"ID":"web-1","Name":"web","Port":81}`, nil, 400, "dc: "},
		{"wrong method register", "GET", reg, ``, nil, 405, "method GET"},
		{"wrong method read", "POST", "/v1/catalog/services", ``, nil, 405, "method POST"},
		{"wrong method deregister", "GET", "/v1/agent/service/deregister/web-1", ``, nil, 405, "method GET"},
		{"bad dc", "GET", "/v1/catalog/services?dc=dc2", ``, nil, 400, `dc: unknown datacenter "dc2"`},
		{"bad index", "GET", "/v1/health/service/web?index=abc", ``, nil, 400, "index: "},
		{"negative index", "GET", "/v1/catalog/services?index=-1", ``, nil, 400, "index: "},
		{"bad wait", "GET", "/v1/health/service/web?index=1&wait=forever", ``, nil, 400, "wait: "},
		{"negative wait", "GET", "/v1/health/service/web?index=1&wait=-5s", ``, nil, 400, "wait: "},
		{"bad passing", "GET", "/v1/health/service/web?passing=maybe", ``, nil, 400, "passing: "},
		{"bad query escape", "GET", "/v1/catalog/services?index=%zz", ``, nil, 400, "query: "},
		{"unknown path", "GET", "/v1/nope", ``, nil, 404, "/v1/nope"},
		{"unknown version", "GET", "/v2/catalog/services", ``, nil, 404, "/v2/catalog/services"},
		{"missing service name", "GET", "/v1/health/service/", ``, nil, 400, "service name: "},
		{"missing deregister ID", "PUT", "/v1/agent/service/deregister/", ``, nil, 400, "service ID: "},
		{"deregister unknown", "PUT", "/v1/agent/service/deregister/nope", ``, nil, 404, `Unknown service ID "nope"`},
		{"unknown local service", "GET", "/v1/agent/service/nope", ``, nil, 404, `Unknown service ID "nope"`},
		{"join wan", "PUT", "/v1/agent/join/10.0.0.9?wan=1", ``, nil, 400, "wan: "},
		{"cross-origin register", "PUT", reg, `{"ID":"web-1","Name":"web","Port":82}`, []string{"Origin: http://evil.example"}, 403, "Origin: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := b.state()
			r := do(t, h, tc.method, tc.path, tc.body, tc.headers...)
			if r.code != tc.code {
				t.Errorf("status %d, want %d; body %q", r.code, tc.code, r.body)
			}
			if !strings.Contains(r.body, tc.want) {
				t.Errorf("body %q does not contain %q", r.body, tc.want)
			}
			if strings.Count(r.body, "\n") != 1 || !strings.HasSuffix(r.body, "\n") {
				t.Errorf("body is not one line: %q", r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q", ct)
			}
			if after := b.state(); after != before {
				t.Errorf("state changed:\nbefore %s\nafter  %s", before, after)
			}
			if tc.code == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	if got := do(t, h, "GET", reg, "").header.Get("Allow"); got != "PUT" {
		t.Errorf("Allow = %q, want PUT", got)
	}
	if got := do(t, h, "PUT", "/v1/health/service/web", "").header.Get("Allow"); got != "GET" {
		t.Errorf("Allow = %q, want GET", got)
	}
}

func TestReregisterReplaces(t *testing.T) {
	b, h := newTestServer(t)
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080,"Tags":["v1"]}`)
	ix := b.index()
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080,"Tags":["v1"]}`)
	if b.index() != ix {
		t.Error("an identical re-registration changed the catalog")
	}
	register(t, h, `{"ID":"web-1","Name":"web","Port":9090}`)
	var got api.AgentService
	json.Unmarshal([]byte(do(t, h, "GET", "/v1/agent/service/web-1", "").body), &got)
	if got.Port != 9090 || len(got.Tags) != 0 {
		t.Errorf("after re-registration: %+v", got)
	}
}

func TestDeregister(t *testing.T) {
	_, h := newTestServer(t)
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080}`)
	register(t, h, `{"ID":"web-2","Name":"web","Port":8081}`)
	mustStatus(t, do(t, h, "PUT", "/v1/agent/service/deregister/web-1", ""), http.StatusOK)
	mustStatus(t, do(t, h, "GET", "/v1/agent/service/web-1", ""), http.StatusNotFound)
	r := do(t, h, "PUT", "/v1/agent/service/deregister/web-1", "")
	mustStatus(t, r, http.StatusNotFound)
	if !strings.Contains(r.body, `Unknown service ID "web-1"`) {
		t.Errorf("body = %q", r.body)
	}
	var entries []api.ServiceEntry
	json.Unmarshal([]byte(do(t, h, "GET", "/v1/health/service/web", "").body), &entries)
	if len(entries) != 1 || entries[0].Service.ID != "web-2" {
		t.Errorf("entries = %+v", entries)
	}
	mustStatus(t, do(t, h, "PUT", "/v1/agent/service/deregister/web-2", ""), http.StatusOK)
	for _, p := range []string{"/v1/health/service/web", "/v1/catalog/service/web"} {
		if r := do(t, h, "GET", p, ""); r.body != "[]" {
			t.Errorf("%s = %q, want []", p, r.body)
		}
	}
	for _, p := range []string{"/v1/catalog/services", "/v1/agent/services"} {
		if r := do(t, h, "GET", p, ""); r.body != "{}" {
			t.Errorf("%s = %q, want {}", p, r.body)
		}
	}
}

// healthIDs returns the service IDs a health query answers, in order.
func healthIDs(t *testing.T, h http.Handler, target string) []string {
	t.Helper()
	r := do(t, h, "GET", target, "")
	mustStatus(t, r, http.StatusOK)
	var entries []api.ServiceEntry
	if err := json.Unmarshal([]byte(r.body), &entries); err != nil {
		t.Fatalf("%s: %v", r.body, err)
	}
	ids := []string{}
	for _, e := range entries {
		ids = append(ids, e.Service.ID)
	}
	return ids
}

func catalogIDs(t *testing.T, h http.Handler, target string) []string {
	t.Helper()
	var list []api.CatalogService
	json.Unmarshal([]byte(do(t, h, "GET", target, "").body), &list)
	ids := []string{}
	for _, c := range list {
		ids = append(ids, c.ServiceID)
	}
	return ids
}

func nodeNames(t *testing.T, h http.Handler) []string {
	t.Helper()
	var nodes []api.Node
	json.Unmarshal([]byte(do(t, h, "GET", "/v1/catalog/nodes", "").body), &nodes)
	names := []string{}
	for _, n := range nodes {
		names = append(names, n.Node)
	}
	return names
}

func TestHealthServiceFilters(t *testing.T) {
	b, h := newTestServer(t)
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080,"Tags":["v1","prod"]}`)
	b.addRemote("node-b", "10.0.0.2", catalog.Service{ID: "web-2", Name: "web", Port: 8080, Tags: []string{"v2", "prod"}})
	b.addRemote("node-c", "10.0.0.3", catalog.Service{ID: "web-3", Name: "web", Port: 8080, Tags: []string{"v1", "canary"}},
		catalog.Service{ID: "db-1", Name: "db", Port: 5432})

	eq := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	eq("all", healthIDs(t, h, "/v1/health/service/web"), []string{"web-1", "web-2", "web-3"})
	eq("tag=prod", healthIDs(t, h, "/v1/health/service/web?tag=prod"), []string{"web-1", "web-2"})
	eq("tag=prod&tag=v1", healthIDs(t, h, "/v1/health/service/web?tag=prod&tag=v1"), []string{"web-1"})
	eq("tag=PROD", healthIDs(t, h, "/v1/health/service/web?tag=PROD"), []string{"web-1", "web-2"})
	eq("tag=none", healthIDs(t, h, "/v1/health/service/web?tag=none"), []string{})
	eq("passing", healthIDs(t, h, "/v1/health/service/web?passing"), []string{"web-1", "web-2", "web-3"})
	eq("passing=1&tag=v1", healthIDs(t, h, "/v1/health/service/web?passing=1&tag=v1"), []string{"web-1", "web-3"})
	eq("passing=false", healthIDs(t, h, "/v1/health/service/web?passing=false"), []string{"web-1", "web-2", "web-3"})
	eq("catalog tag=v1", catalogIDs(t, h, "/v1/catalog/service/web?tag=v1"), []string{"web-1", "web-3"})
	eq("unknown service", healthIDs(t, h, "/v1/health/service/nope"), []string{})
	eq("nodes", nodeNames(t, h), []string{"node-a", "node-b", "node-c"})

	// A suspect node is still served.
	b.setStatus("node-c", catalog.StatusSuspect)
	eq("suspect", healthIDs(t, h, "/v1/health/service/web?passing"), []string{"web-1", "web-2", "web-3"})

	// A dead node's instances are hidden at once, everywhere.
	before := checkReadHeaders(t, do(t, h, "GET", "/v1/health/service/web", ""))
	b.setStatus("node-c", catalog.StatusDead)
	r := do(t, h, "GET", "/v1/health/service/web", "")
	if after := checkReadHeaders(t, r); after <= before {
		t.Errorf("service index %d did not move past %d", after, before)
	}
	eq("dead: health", healthIDs(t, h, "/v1/health/service/web"), []string{"web-1", "web-2"})
	eq("dead: catalog", catalogIDs(t, h, "/v1/catalog/service/web"), []string{"web-1", "web-2"})
	eq("dead: nodes", nodeNames(t, h), []string{"node-a", "node-b"})
	if r := do(t, h, "GET", "/v1/catalog/services", ""); r.body != `{"web":["prod","v1","v2"]}` {
		t.Errorf("dead: services = %s", r.body)
	}

	// It comes back with what it announced.
	b.setStatus("node-c", catalog.StatusAlive)
	eq("back", healthIDs(t, h, "/v1/health/service/web"), []string{"web-1", "web-2", "web-3"})

	// The local node after leaving: its services are still shown, as
	// critical, and are not passing.
	b.setStatus(localNode, catalog.StatusLeft)
	eq("left: passing", healthIDs(t, h, "/v1/health/service/web?passing"), []string{"web-2", "web-3"})
	var entries []api.ServiceEntry
	json.Unmarshal([]byte(do(t, h, "GET", "/v1/health/service/web", "").body), &entries)
	if c := entries[0].Checks[0]; entries[0].Node.Node != localNode || c.Status != "critical" || c.Output != "Agent not live or unreachable" {
		t.Errorf("left: %+v", c)
	}
}

func TestLocalNodeUnknownToCatalog(t *testing.T) {
	b := newTestBackend()
	b.cat = catalog.New(localNode, 100) // the agent has not told the catalog of itself yet
	h := New(Config{Backend: b, Logger: testLogger(t)})
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080}`)
	var entries []api.ServiceEntry
	json.Unmarshal([]byte(do(t, h, "GET", "/v1/health/service/web?passing", "").body), &entries)
	if len(entries) != 1 || entries[0].Node.Address != b.addr || entries[0].Node.Meta == nil {
		t.Fatalf("entries = %+v", entries)
	}
	var nodes []api.Node
	json.Unmarshal([]byte(do(t, h, "GET", "/v1/catalog/nodes", "").body), &nodes)
	if len(nodes) != 1 || nodes[0].Node != localNode || nodes[0].Address != b.addr {
		t.Errorf("nodes = %+v", nodes)
	}
}

// blockingGet runs a GET in the background; the result arrives on the
// channel.
func blockingGet(ctx context.Context, h http.Handler, target string) <-chan *httptest.ResponseRecorder {
	out := make(chan *httptest.ResponseRecorder, 1)
	req := localRequest("GET", target, nil).WithContext(ctx)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		out <- rec
	}()
	return out
}

func TestBlockingQueryWokenByChange(t *testing.T) {
	b, h := newTestServer(t)
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080}`)
	register(t, h, `{"ID":"db-1","Name":"db","Port":5432}`)
	webIx := checkReadHeaders(t, do(t, h, "GET", "/v1/health/service/web", ""))
	dbIx := checkReadHeaders(t, do(t, h, "GET", "/v1/health/service/db", ""))

	reads := b.reads.Load()
	web := blockingGet(t.Context(), h, fmt.Sprintf("/v1/health/service/web?index=%d&wait=30s", webIx))
	waitFor(t, 5*time.Second, "the web query to read", func() bool { return b.reads.Load() > reads })
	reads = b.reads.Load()
	dbCtx, cancelDB := context.WithCancel(t.Context())
	defer cancelDB()
	db := blockingGet(dbCtx, h, fmt.Sprintf("/v1/health/service/db?index=%d&wait=30s", dbIx))
	waitFor(t, 5*time.Second, "the db query to read", func() bool { return b.reads.Load() > reads })
	select {
	case rec := <-web:
		t.Fatalf("web answered before any change: %d %s", rec.Code, rec.Body)
	case rec := <-db:
		t.Fatalf("db answered before any change: %d %s", rec.Code, rec.Body)
	default:
	}

	// A change to web wakes both; web answers, db reads again and waits on.
	reads = b.reads.Load()
	register(t, h, `{"ID":"web-2","Name":"web","Port":8081}`)
	select {
	case rec := <-web:
		if rec.Code != 200 {
			t.Fatalf("web: %d %s", rec.Code, rec.Body)
		}
		ix, _ := strconv.ParseUint(rec.Header().Get("X-Consul-Index"), 10, 64)
		if ix <= webIx {
			t.Errorf("web index %d, want > %d", ix, webIx)
		}
		var entries []api.ServiceEntry
		json.Unmarshal(rec.Body.Bytes(), &entries)
		if len(entries) != 2 {
			t.Errorf("web entries = %s", rec.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("web query not woken by the change")
	}
	waitFor(t, 5*time.Second, "the db query to read again", func() bool { return b.reads.Load() >= reads+2 })
	select {
	case rec := <-db:
		t.Fatalf("db answered on a change to web: %d %s", rec.Code, rec.Body)
	default:
	}

	// A client that goes away ends the query without an answer.
	cancelDB()
	select {
	case rec := <-db:
		if rec.Body.Len() != 0 || rec.Header().Get("X-Consul-Index") != "" {
			t.Errorf("abandoned query answered: %d %q", rec.Code, rec.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("db query did not end with its context")
	}
}

func TestBlockingQueryTimesOut(t *testing.T) {
	_, h := newTestServer(t)
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080}`)
	for _, p := range []string{"/v1/health/service/web", "/v1/catalog/service/web", "/v1/catalog/services",
		"/v1/catalog/nodes", "/v1/agent/services", "/v1/agent/members", "/v1/agent/self", "/v1/status/leader"} {
		r := do(t, h, "GET", p, "")
		ix := checkReadHeaders(t, r)
		const wait = 50 * time.Millisecond
		start := time.Now()
		r2 := do(t, h, "GET", fmt.Sprintf("%s?index=%d&wait=%s", p, ix, wait), "")
		elapsed := time.Since(start)
		mustStatus(t, r2, http.StatusOK)
		if ix2 := checkReadHeaders(t, r2); ix2 != ix {
			t.Errorf("%s: index %d after the wait, want %d", p, ix2, ix)
		}
		if elapsed < wait {
			t.Errorf("%s: answered after %v, before the wait of %v", p, elapsed, wait)
		}
		if r2.body != r.body {
			t.Errorf("%s: body changed without a change: %s vs %s", p, r.body, r2.body)
		}
	}
}

func TestBlockingQueryIndexAhead(t *testing.T) {
	_, h := newTestServer(t)
	// An index the agent never reached (it restarted): answer at once.
	done := blockingGet(t.Context(), h, "/v1/catalog/services?index=999999&wait=5m")
	select {
	case rec := <-done:
		if rec.Code != 200 {
			t.Errorf("status %d", rec.Code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("query with an index ahead of the agent blocked")
	}
}

func TestBlockFor(t *testing.T) {
	for _, tc := range []struct{ wait, lo, hi time.Duration }{
		{0, defaultWait, defaultWait + defaultWait/16},
		{10 * time.Second, 10 * time.Second, 10*time.Second + 10*time.Second/16},
		{time.Hour, maxWait, maxWait + maxWait/16},
	} {
		for range 100 {
			q := query{wait: tc.wait}
			if d := q.blockFor(); d < tc.lo || d > tc.hi {
				t.Fatalf("wait %v: blocked for %v, want %v-%v", tc.wait, d, tc.lo, tc.hi)
			}
		}
	}
}

func TestAgentServiceHashBlocking(t *testing.T) {
	b, h := newTestServer(t)
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080}`)
	hash := do(t, h, "GET", "/v1/agent/service/web-1", "").header.Get("X-Consul-ContentHash")
	reads := b.reads.Load()
	got := blockingGet(t.Context(), h, "/v1/agent/service/web-1?hash="+hash+"&wait=30s")
	waitFor(t, 5*time.Second, "the query to read", func() bool { return b.reads.Load() > reads })
	// A change elsewhere does not end a hash-based wait.
	reads = b.reads.Load()
	register(t, h, `{"ID":"db-1","Name":"db","Port":5432}`)
	waitFor(t, 5*time.Second, "the query to read again", func() bool { return b.reads.Load() > reads })
	select {
	case rec := <-got:
		t.Fatalf("answered without a change to the service: %s", rec.Body)
	default:
	}
	register(t, h, `{"ID":"web-1","Name":"web","Port":9090}`)
	select {
	case rec := <-got:
		var svc api.AgentService
		json.Unmarshal(rec.Body.Bytes(), &svc)
		if svc.Port != 9090 || svc.ContentHash == hash || rec.Header().Get("X-Consul-ContentHash") != svc.ContentHash {
			t.Errorf("after change: %s", rec.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hash-based query not woken by the change")
	}
}

func TestStatus(t *testing.T) {
	b, h := newTestServer(t)
	r := do(t, h, "GET", "/v1/status/leader", "")
	mustStatus(t, r, 200)
	checkReadHeaders(t, r)
	if r.body != `"10.0.0.1:7946"` {
		t.Errorf("leader = %s", r.body)
	}
	if r := do(t, h, "GET", "/v1/status/peers", ""); r.body != `["10.0.0.1:7946"]` {
		t.Errorf("peers = %s", r.body)
	}
	b.addr = "fd00::1"
	if r := do(t, h, "GET", "/v1/status/leader", ""); r.body != `"[fd00::1]:7946"` {
		t.Errorf("IPv6 leader = %s", r.body)
	}
}

func TestAgentMembersSelfJoinLeave(t *testing.T) {
	b, h := newTestServer(t)
	b.addRemote("node-b", "10.0.0.2")
	r := do(t, h, "GET", "/v1/agent/members", "")
	mustStatus(t, r, 200)
	checkReadHeaders(t, r)
	var raw []json.RawMessage
	json.Unmarshal([]byte(r.body), &raw)
	if len(raw) != 2 {
		t.Fatalf("members = %s", r.body)
	}
	checkKeys(t, "AgentMember", raw[0], consulMemberKeys, consulMemberKeys)
	if !strings.Contains(string(raw[0]), `"Tags":{}`) {
		t.Errorf("member tags not {}: %s", raw[0])
	}

	r = do(t, h, "GET", "/v1/agent/self", "")
	mustStatus(t, r, 200)
	var self api.Self
	json.Unmarshal([]byte(r.body), &self)
	if self.Config.Datacenter != "dc1" || self.Config.NodeName != localNode || self.Member.Addr != b.addr || self.Meta == nil {
		t.Errorf("self = %+v", self)
	}

	mustStatus(t, do(t, h, "PUT", "/v1/agent/join/10.0.0.9:7946", ""), 200)
	mustStatus(t, do(t, h, "PUT", "/v1/agent/join/10.0.0.8?wan=false", ""), 200)
	if !slices.Equal(b.joined, []string{"10.0.0.9:7946", "10.0.0.8"}) {
		t.Errorf("joined %v", b.joined)
	}
	b.joinErr = errors.New("connection refused")
	r = do(t, h, "PUT", "/v1/agent/join/10.0.0.7", "")
	mustStatus(t, r, 500)
	if !strings.Contains(r.body, "10.0.0.7") || !strings.Contains(r.body, "connection refused") {
		t.Errorf("join error body %q", r.body)
	}

	mustStatus(t, do(t, h, "PUT", "/v1/agent/leave", ""), 200)
	if !b.left {
		t.Error("Leave not called")
	}
}

func TestQueryParameters(t *testing.T) {
	_, h := newTestServer(t)
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080}`)
	plain := do(t, h, "GET", "/v1/health/service/web", "").body
	// What Consul's clients send is accepted.
	for _, q := range []string{"dc=dc1", "stale", "consistent", "cached", "ns=default", "partition=default",
		"near=_agent", "index=0", "index=", "wait=", "wait=10s", "wait=10000ms"} {
		r := do(t, h, "GET", "/v1/health/service/web?"+q, "")
		mustStatus(t, r, 200)
		if r.body != plain {
			t.Errorf("?%s changed the answer", q)
		}
	}
	r := do(t, h, "GET", "/v1/health/service/web?pretty", "")
	if !strings.Contains(r.body, "\n    {\n        \"Node\": {") {
		t.Errorf("pretty = %s", r.body)
	}
	var a, b2 any
	json.Unmarshal([]byte(plain), &a)
	json.Unmarshal([]byte(r.body), &b2)
	if fmt.Sprint(a) != fmt.Sprint(b2) {
		t.Error("pretty body differs from the plain one")
	}
	r = do(t, h, "GET", "/v1/agent/self?pretty", "")
	if !strings.Contains(r.body, "{\n    \"Config\": {") {
		t.Errorf("pretty self = %s", r.body)
	}
}

func TestCrossOrigin(t *testing.T) {
	h := New(Config{Backend: newTestBackend(), Logger: testLogger(t), AllowedHost: func(h string) bool { return h == "shoal.internal" }})
	for _, tc := range []struct {
		name    string
		headers []string
		code    int
	}{
		{"no browser headers", nil, 200},
		{"no browser headers, another host", []string{"Host: agent.example:8500"}, 403},
		{"localhost", []string{"Host: localhost:8500"}, 200},
		{"a name below .localhost", []string{"Host: shoal.localhost"}, 200},
		{"IPv6 loopback", []string{"Host: [::1]:8500"}, 200},
		{"an address of another machine", []string{"Host: 192.0.2.7:8500"}, 403},
		{"allowed by the agent", []string{"Host: shoal.internal:8500"}, 200},
		{"other origin", []string{"Host: 127.0.0.1:8500", "Origin: http://evil.example"}, 403},
		{"other port", []string{"Host: 127.0.0.1:8500", "Origin: http://127.0.0.1:8080"}, 403},
		{"null origin", []string{"Host: 127.0.0.1:8500", "Origin: null"}, 403},
		{"cross-site", []string{"Host: 127.0.0.1:8500", "Sec-Fetch-Site: cross-site"}, 403},
		{"same origin", []string{"Host: 127.0.0.1:8500", "Origin: http://127.0.0.1:8500", "Sec-Fetch-Site: same-origin"}, 200},
		{"same origin localhost", []string{"Host: localhost:8500", "Origin: http://localhost:8500"}, 200},
		{"typed into the address bar", []string{"Host: shoal.internal:8500", "Sec-Fetch-Site: none"}, 200},
		{"typed into the address bar, unknown name", []string{"Host: agent.example:8500", "Sec-Fetch-Site: none"}, 403},
		{"DNS rebinding", []string{"Host: evil.example:8500", "Origin: http://evil.example:8500"}, 403},
		{"DNS rebinding, no Origin", []string{"Host: evil.example:8500", "Sec-Fetch-Site: same-origin"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, h, "GET", "/v1/catalog/services", "", tc.headers...)
			if r.code != tc.code {
				t.Errorf("status %d, want %d: %s", r.code, tc.code, r.body)
			}
		})
	}
}

func TestNilLoggerAndBackend(t *testing.T) {
	h := New(Config{Backend: newTestBackend()})
	mustStatus(t, do(t, h, "GET", "/v1/nope", ""), 404)
	defer func() {
		if recover() == nil {
			t.Error("New without a Backend did not panic")
		}
	}()
	New(Config{})
}

func TestBodyTooBigStreamed(t *testing.T) {
	b, h := newTestServer(t)
	before := b.state()
	// No Content-Length: the limit is found while reading.
	body := io.MultiReader(strings.NewReader(`{"Name":"web","Port":80,"Meta":{"k":"`), strings.NewReader(strings.Repeat("v", maxBodySize)), strings.NewReader(`"}}`))
	req := localRequest("PUT", "/v1/agent/service/register", body)
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.HasPrefix(rec.Body.String(), "body: ") {
		t.Errorf("status %d: %q", rec.Code, rec.Body)
	}
	if b.state() != before {
		t.Error("state changed")
	}
}

// A filter a route does not apply is refused, never ignored: an
// unfiltered answer would pass for a filtered one.
func TestUnsupportedFiltersAreRefused(t *testing.T) {
	tb := newTestBackend()
	h := New(Config{Backend: tb})
	for _, target := range []string{
		"/v1/catalog/node-services/node-a?node-meta=rack:a",
		"/v1/catalog/datacenters?filter=x==y",
		"/v1/coordinate/nodes?filter=Node==x",
		"/v1/agent/service/web?filter=ID==x",
		"/v1/health/node/node-a?node-meta=rack:a",
		"/v1/agent/services?node-meta=&node-meta=rack:a",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, localRequest("GET", target, nil))
		if rec.Code != 400 {
			t.Errorf("%s: status %d, want 400", target, rec.Code)
		}
	}
}

func TestTooManyTagFiltersAreRefused(t *testing.T) {
	_, h := newTestServer(t)
	target := "/v1/health/service/web?" + strings.Repeat("tag=x&", catalog.MaxTags+1)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, localRequest("GET", target, nil))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "tag") {
		t.Fatalf("status %d, body %q; want 400 naming tag", rec.Code, rec.Body.String())
	}
}
