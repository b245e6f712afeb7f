package localapi

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-bexpr/grammar"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// setNodeMeta replaces a node's metadata, as gossip does when the node
// announces new metadata.
func (b *testBackend) setNodeMeta(node string, meta map[string]string) {
	b.update(func(c *catalog.Catalog) {
		n, ok := c.Node(node)
		if !ok {
			panic("no node " + node)
		}
		n.Meta = meta
		c.SetNode(n, b.now)
	})
}

// filterServer has web on three remote nodes and one local instance:
//
//	node-b env=prod rack=r1    web-1 [prod v2] version=2 :8080  all passing
//	node-c env=staging rack=r1 web-2 [v1]      version=1 :8081  critical check
//	node-d env=prod rack=r2    web-3 [prod]    version=2 :9000  warning check
//	node-a (local)             web-a [local]               :80   no checks
func filterServer(t *testing.T) (*testBackend, *testFilterClient) {
	b, h := newTestServer(t)
	b.addRemote("node-b", "10.0.0.2", catalog.Service{ID: "web-1", Name: "web", Port: 8080,
		Tags: []string{"prod", "v2"}, Meta: map[string]string{"version": "2"}})
	b.addRemote("node-c", "10.0.0.3", catalog.Service{ID: "web-2", Name: "web", Port: 8081,
		Tags: []string{"v1"}, Meta: map[string]string{"version": "1"}})
	b.addRemote("node-d", "10.0.0.4", catalog.Service{ID: "web-3", Name: "web", Port: 9000,
		Tags: []string{"prod"}, Meta: map[string]string{"version": "2"}})
	b.setNodeMeta("node-b", map[string]string{"env": "prod", "rack": "r1", "shoal-version": "0.1.0"})
	b.setNodeMeta("node-c", map[string]string{"env": "staging", "rack": "r1"})
	b.setNodeMeta("node-d", map[string]string{"env": "prod", "rack": "r2"})
	b.putRemoteCheck("node-b", catalog.Check{ID: "service:web-1", Name: "web", ServiceID: "web-1", Type: "http", Status: catalog.HealthPassing})
	b.putRemoteCheck("node-c", catalog.Check{ID: "service:web-2", Name: "web", ServiceID: "web-2", Type: "http", Status: catalog.HealthCritical, Output: "503"})
	b.putRemoteCheck("node-d", catalog.Check{ID: "disk", Name: "disk", Type: "tcp", Status: catalog.HealthWarning})
	mustStatus(t, do(t, h, "PUT", "/v1/agent/service/register", `{"ID":"web-a","Name":"web","Port":80,"Tags":["local"],"Meta":{"owner":"me"}}`), 200)
	return b, &testFilterClient{t: t, h: h}
}

type testFilterClient struct {
	t *testing.T
	h http.Handler
}

// get reads path with the query parameters kv (name, value, ...), checks
// the status and decodes the body into out.
func (c *testFilterClient) get(path string, out any, kv ...string) response {
	c.t.Helper()
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	target := path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	r := do(c.t, c.h, "GET", target, "")
	if r.code == 200 && out != nil {
		if err := json.Unmarshal([]byte(r.body), out); err != nil {
			c.t.Fatalf("%s: %v: %s", target, err, r.body)
		}
	}
	return r
}

func entryIDs(es []api.ServiceEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Service.ID)
	}
	return out
}

func catalogServiceIDs(cs []api.CatalogService) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ServiceID)
	}
	return out
}

func TestFilterInstances(t *testing.T) {
	_, c := filterServer(t)
	for _, tc := range []struct {
		params  []string
		health  []string // health/service/web
		catalog []string // catalog/service/web with the same params, when they apply
	}{
		{nil, []string{"web-a", "web-1", "web-2", "web-3"}, []string{"web-a", "web-1", "web-2", "web-3"}},
		{[]string{"tag", "prod", "tag", "v2"}, []string{"web-1"}, []string{"web-1"}},
		{[]string{"tag", "PROD"}, []string{"web-1", "web-3"}, []string{"web-1", "web-3"}},
		{[]string{"node-meta", "env:prod"}, []string{"web-1", "web-3"}, []string{"web-1", "web-3"}},
		{[]string{"node-meta", "env:prod", "node-meta", "rack:r2"}, []string{"web-3"}, []string{"web-3"}},
		{[]string{"node-meta", "env:prod", "node-meta", "env:staging"}, nil, nil},
		{[]string{"node-meta", "env"}, nil, nil}, // env:"" as in Consul
		{[]string{"node-meta", "", "filter", ""}, []string{"web-a", "web-1", "web-2", "web-3"}, []string{"web-a", "web-1", "web-2", "web-3"}},
		{[]string{"node-meta", "rack:r1", "tag", "v1"}, []string{"web-2"}, []string{"web-2"}},
		{[]string{"filter", `Service.Meta.version == "2"`}, []string{"web-1", "web-3"}, nil},
		{[]string{"filter", `ServiceMeta.version == "2"`}, nil, []string{"web-1", "web-3"}},
		{[]string{"filter", `"prod" in Service.Tags`}, []string{"web-1", "web-3"}, nil},
		{[]string{"filter", `"prod" in ServiceTags and NodeMeta.env == prod and ServicePort == 9000`}, nil, []string{"web-3"}},
		{[]string{"filter", `Node.Meta.env == staging or Service.Port == 80`}, []string{"web-a", "web-2"}, nil},
		{[]string{"filter", `Node == "node-b" or ServiceID matches "^web-[a3]$"`}, nil, []string{"web-a", "web-1", "web-3"}},
		{[]string{"filter", `Node.Address == "10.0.0.3"`}, []string{"web-2"}, nil},
		{[]string{"filter", `Address == "10.0.0.3" and Datacenter == dc1`}, nil, []string{"web-2"}},
		// Selectors through the list of checks are true if any check
		// matches, as in Consul: every instance has a passing serfHealth.
		{[]string{"filter", `Checks.Status == passing`}, []string{"web-a", "web-1", "web-2", "web-3"}, nil},
		{[]string{"filter", `Checks.Status == critical`}, []string{"web-2"}, nil},
		{[]string{"filter", `Checks.Status != passing`}, []string{"web-2", "web-3"}, nil},
		{[]string{"filter", `not (Checks.Status != passing)`}, []string{"web-a", "web-1"}, nil},
		{[]string{"filter", `Checks.CheckID == disk and Checks.Status == warning`}, []string{"web-3"}, nil},
		{[]string{"filter", `"prod" in Checks.ServiceTags`}, []string{"web-1"}, nil},
		{[]string{"filter", `Checks.Output contains "503"`}, []string{"web-2"}, nil},
		// go-bexpr's own forms work too.
		{[]string{"filter", `all Checks as c { c.Status == passing }`}, []string{"web-a", "web-1"}, nil},
		{[]string{"filter", `any Checks as _, c { c.Type == tcp }`}, []string{"web-3"}, nil},
		{[]string{"filter", `Service.Meta is empty`}, nil, nil},
		{[]string{"filter", `Service.Meta.owner is not empty`}, []string{"web-a"}, nil},
		{[]string{"filter", `"/Service/Meta/owner" == me`}, []string{"web-a"}, nil},
		// Filters combine with the other parameters.
		{[]string{"passing", "", "filter", `"prod" in Service.Tags`}, []string{"web-1"}, nil},
		{[]string{"passing", "", "warning", "", "node-meta", "env:prod", "filter", `Service.Port != 1`}, []string{"web-1", "web-3"}, nil},
	} {
		name := strings.Join(tc.params, " ")
		var entries []api.ServiceEntry
		if r := c.get("/v1/health/service/web", &entries, tc.params...); r.code != 200 {
			if tc.health != nil || !strings.Contains(name, "filter") {
				t.Errorf("health %s: %d %s", name, r.code, r.body)
			}
		} else if got := entryIDs(entries); !slices.Equal(got, tc.health) {
			t.Errorf("health %s: %v, want %v", name, got, tc.health)
		}
		if tc.catalog == nil && strings.Contains(name, "filter") {
			continue // a health selector; catalog/service has other names
		}
		var cs []api.CatalogService
		if r := c.get("/v1/catalog/service/web", &cs, tc.params...); r.code != 200 {
			t.Errorf("catalog %s: %d %s", name, r.code, r.body)
		} else if got := catalogServiceIDs(cs); !slices.Equal(got, tc.catalog) {
			t.Errorf("catalog %s: %v, want %v", name, got, tc.catalog)
		}
	}
}

// The answer shows the node's metadata as Consul does: Node.Meta in
// health/service, NodeMeta in catalog/service, Meta in catalog/nodes.
func TestNodeMetaShown(t *testing.T) {
	_, c := filterServer(t)
	var entries []api.ServiceEntry
	c.get("/v1/health/service/web", &entries, "node-meta", "rack:r2")
	if len(entries) != 1 || !reflect.DeepEqual(entries[0].Node.Meta, map[string]string{"env": "prod", "rack": "r2"}) {
		t.Errorf("health/service Node.Meta: %+v", entries)
	}
	var cs []api.CatalogService
	c.get("/v1/catalog/service/web", &cs, "node-meta", "rack:r2")
	if len(cs) != 1 || cs[0].NodeMeta["env"] != "prod" {
		t.Errorf("catalog/service NodeMeta: %+v", cs)
	}
}

func TestFilterCatalogNodes(t *testing.T) {
	_, c := filterServer(t)
	names := func(params ...string) []string {
		t.Helper()
		var nodes []api.Node
		if r := c.get("/v1/catalog/nodes", &nodes, params...); r.code != 200 {
			t.Fatalf("%v: %d %s", params, r.code, r.body)
		}
		var out []string
		for _, n := range nodes {
			out = append(out, n.Node)
		}
		return out
	}
	for _, tc := range []struct {
		params []string
		want   []string
	}{
		{nil, []string{"node-a", "node-b", "node-c", "node-d"}},
		{[]string{"node-meta", "env:prod"}, []string{"node-b", "node-d"}},
		{[]string{"node-meta", "env:prod", "node-meta", "rack:r1"}, []string{"node-b"}},
		{[]string{"node-meta", "env:none"}, nil},
		{[]string{"filter", `Meta.env == staging`}, []string{"node-c"}},
		{[]string{"filter", `Meta.env != prod`}, []string{"node-a", "node-c"}},
		{[]string{"filter", `Meta is empty or Meta.rack == r2`}, []string{"node-d"}},
		{[]string{"filter", `Node matches "node-[bc]" and Address != "10.0.0.2"`}, []string{"node-c"}},
		{[]string{"filter", `"lan" in TaggedAddresses and TaggedAddresses.wan == "10.0.0.4"`}, []string{"node-d"}},
		{[]string{"node-meta", "env:prod", "filter", `Meta.rack == r1`}, []string{"node-b"}},
	} {
		if got := names(tc.params...); !slices.Equal(got, tc.want) {
			t.Errorf("%v: %v, want %v", tc.params, got, tc.want)
		}
	}
}

func TestFilterAgentAndChecks(t *testing.T) {
	b, c := filterServer(t)
	h := c.h
	mustStatus(t, do(t, h, "PUT", "/v1/agent/service/register", `{"ID":"db-1","Name":"db","Port":5432,"Tags":["primary"],"Check":{"TTL":"10s"}}`), 200)
	mustStatus(t, do(t, h, "PUT", "/v1/agent/check/pass/service:db-1", ""), 200)
	mustStatus(t, do(t, h, "PUT", "/v1/agent/check/register", `{"ID":"mem","Name":"memory","TTL":"10s"}`), 200)
	_ = b

	var svcs map[string]api.AgentService
	c.get("/v1/agent/services", &svcs, "filter", `"primary" in Tags and Port == 5432`)
	if len(svcs) != 1 || svcs["db-1"].Service != "db" {
		t.Errorf("agent/services: %v", svcs)
	}
	svcs = nil
	c.get("/v1/agent/services", &svcs, "filter", `Meta.owner == me`)
	if len(svcs) != 1 || svcs["web-a"].ID != "web-a" {
		t.Errorf("agent/services by meta: %v", svcs)
	}

	var checks map[string]api.AgentCheck
	c.get("/v1/agent/checks", &checks, "filter", `Status == critical`)
	if len(checks) != 1 || checks["mem"].Name != "memory" {
		t.Errorf("agent/checks: %v", checks)
	}
	checks = nil
	c.get("/v1/agent/checks", &checks, "filter", `ServiceName == db and CheckID == "service:db-1"`)
	if len(checks) != 1 || checks["service:db-1"].Status != "passing" {
		t.Errorf("agent/checks by service: %v", checks)
	}

	checkIDs := func(path string, params ...string) []string {
		t.Helper()
		var hc []api.HealthCheck
		if r := c.get(path, &hc, params...); r.code != 200 {
			t.Fatalf("%s %v: %d %s", path, params, r.code, r.body)
		}
		var out []string
		for _, x := range hc {
			out = append(out, x.Node+"/"+x.CheckID)
		}
		return out
	}
	for _, tc := range []struct {
		path   string
		params []string
		want   []string
	}{
		{"/v1/health/checks/web", []string{"filter", `Status != passing`}, []string{"node-c/service:web-2"}},
		{"/v1/health/checks/web", []string{"node-meta", "env:prod"}, []string{"node-b/service:web-1"}},
		{"/v1/health/checks/web", []string{"node-meta", "env:prod", "filter", `Status == critical`}, nil},
		{"/v1/health/node/node-d", []string{"filter", `CheckID != serfHealth`}, []string{"node-d/disk"}},
		{"/v1/health/state/any", []string{"node-meta", "env:prod", "filter", `CheckID != serfHealth`}, []string{"node-b/service:web-1", "node-d/disk"}},
		{"/v1/health/state/passing", []string{"node-meta", "rack:r1"}, []string{"node-b/serfHealth", "node-b/service:web-1", "node-c/serfHealth"}},
		{"/v1/health/state/any", []string{"filter", `"v1" in ServiceTags`}, []string{"node-c/service:web-2"}},
	} {
		if got := checkIDs(tc.path, tc.params...); !slices.Equal(got, tc.want) {
			t.Errorf("%s %v: %v, want %v", tc.path, tc.params, got, tc.want)
		}
	}
}

// A bad filter or node-meta is refused with a line that names it and
// why, before anything is read: even a blocking query answers at once,
// and an unknown service gets the same answer as a known one.
func TestBadFiltersAreRefused(t *testing.T) {
	b, c := filterServer(t)
	index := b.index()
	for _, tc := range []struct {
		path, filter, want string
	}{
		{"/v1/health/service/web", `Service.ID ==`, "filter: 1:14"},
		{"/v1/health/service/web", `Service.Nope == 1`, `filter: selector "Service.Nope" is not valid: "Service" has no field "Nope" (it has Kind, ID, Service, Tags, Meta, Port`},
		{"/v1/health/service/nothing-here", `Service.Nope == 1`, `filter: selector "Service.Nope" is not valid`},
		{"/v1/health/service/web", `Checks.Stauts == passing`, `filter: selector "Checks.Stauts" is not valid`},
		{"/v1/health/service/web", `Service.Port == eighty`, `filter: error getting match value in expression: strconv.ParseInt`},
		{"/v1/health/service/web", `Service.ID matches "("`, "filter: failed to compile regular expression"},
		{"/v1/health/service/web", `Service.Tags == prod`, "filter: unable to find suitable primitive comparison"},
		{"/v1/health/service/web", `Service.Tags.x == prod`, `filter: selector "Service.Tags.x" is not valid: "Service.Tags" is a list of values`},
		{"/v1/health/service/web", `((((((((Service.ID == x))))))))`, "filter: "},
		{"/v1/health/service/web", `any Checks.Status as s { s == passing }`, `filter: selector "Checks.Status" reaches into every element of "Checks"`},
		{"/v1/health/service/web", `any Service.Port as p { p == 1 }`, `filter: selector "Service.Port" is not a list or a map`},
		{"/v1/catalog/service/web", `Service.ID == x`, `filter: selector "Service.ID" is not valid: the top level has no field "Service" (it has ID, Node, Address`},
		{"/v1/catalog/nodes", `Meta.env.x == y`, `filter: selector "Meta.env.x" is not valid: "Meta.env" is a string, without fields`},
		{"/v1/agent/services", `Tags contains`, "filter: "},
		{"/v1/agent/checks", `Status = passing`, "filter: "},
		{"/v1/health/state/any", `Stauts == passing`, `filter: selector "Stauts" is not valid`},
		{"/v1/health/service/web", "Service.ID == `\xff`", "filter: "},
	} {
		params := url.Values{"filter": {tc.filter}, "index": {fmt.Sprint(index)}, "wait": {"1m"}}
		start := time.Now()
		r := do(t, c.h, "GET", tc.path+"?"+params.Encode(), "")
		if r.code != 400 || !strings.HasPrefix(r.body, tc.want) || strings.Count(r.body, "\n") != 1 {
			t.Errorf("%s %q: %d %q; want 400 starting %q", tc.path, tc.filter, r.code, r.body, tc.want)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s %q: answered after %v", tc.path, tc.filter, d)
		}
	}
	for _, target := range []string{
		"/v1/health/service/web?node-meta=:prod",
		"/v1/catalog/nodes?node-meta=" + strings.Repeat("a:b&node-meta=", catalog.MaxNodeMetaPairs) + "a:b",
	} {
		if r := do(t, c.h, "GET", target, ""); r.code != 400 || !strings.HasPrefix(r.body, "node-meta: ") {
			t.Errorf("%s: %d %q", target, r.code, r.body)
		}
	}
	if b.index() != index {
		t.Errorf("index moved from %d to %d", index, b.index())
	}
}

// Filtering drops entries and changes nothing else: the answer is the
// unfiltered answer's entries that the filter, evaluated on the api values
// the answer encodes, keeps. Catalogs are random, with strings that need
// escaping, as in TestEncoderMatchesEncodingJSON.
func TestFilterMatchesReference(t *testing.T) {
	healthFilters := []string{
		`Service.ID contains "a"`, `Node.Meta is empty`, `Checks.Status == critical`, `Checks.Status != passing`,
		`"x" in Service.Tags or Service.Tags is empty`, `Service.Port == 80`, `Checks.Damped == true`,
		`Node.Node == "node-1" or Service.Address matches "^[a-m]"`, `not (Checks.Type == ttl)`,
		`Checks.ServiceTags is not empty`, `Node.TaggedAddresses.lan_ipv6 is not empty`, `Service.Weights.Passing == 3`,
	}
	catalogFilters := []string{
		`ServiceID contains "a"`, `NodeMeta is empty`, `ServicePort == 80`, `"x" in ServiceTags`,
		`ServiceAddress matches "^[a-m]" and Node != "node-2"`, `ServiceWeights.Warning == 0`,
	}
	r := rand.New(rand.NewPCG(5, 6))
	kept, total := 0, 0
	for iter := range 60 {
		b := newTestBackend()
		h := New(Config{Backend: b})
		b.update(func(c *catalog.Catalog) {
			for n := range 1 + r.IntN(4) {
				node := fmt.Sprintf("node-%d", n)
				addr := []string{"10.0.0.9", "fd00::9", randString(r)}[r.IntN(3)]
				c.SetNode(catalog.Node{Name: node, Address: addr, Status: catalog.StatusAlive, Epoch: 1, Meta: randMeta(r)}, b.now)
				counter := uint64(0)
				apply := func(e catalog.Entry) {
					counter++
					e.Origin, e.Version = node, catalog.Version{Epoch: 1, Counter: counter}
					c.Apply(e, b.now)
				}
				for i := range r.IntN(4) {
					tags := []string{"x", randString(r)}[:r.IntN(3)]
					id := fmt.Sprintf("web-%d-%d", n, i) + randString(r)
					apply(catalog.Entry{Service: catalog.Service{ID: id, Name: "web", Tags: tags, Address: randString(r),
						Port: []int{80, 8080}[r.IntN(2)], Meta: randMeta(r),
						Weights: catalog.Weights{Passing: r.IntN(5), Warning: r.IntN(2)}}})
					for j := range r.IntN(3) {
						apply(catalog.Entry{Kind: catalog.KindCheck, Check: randCheck(r, fmt.Sprintf("svc-%d-%d", i, j), id)})
					}
				}
			}
		})
		var health []api.ServiceEntry
		var cat []api.CatalogService
		b.Read(func(c *catalog.Catalog) { health, cat = referenceInstances(c, "web", b.dc, b.addr, 0) })
		check := func(path, expr string, sample any, n int, datum func(i int) any) {
			f, err := compileFilter(expr, sample)
			if err != nil {
				t.Fatalf("%s: %v", expr, err)
			}
			var want []any
			for i := range n {
				ok, err := f.match(datum(i))
				if err != nil {
					t.Fatalf("%s: %v", expr, err)
				}
				if ok {
					want = append(want, datum(i))
				}
			}
			wantJSON, _ := json.Marshal(want)
			if want == nil {
				wantJSON = []byte("[]")
			}
			got := do(t, h, "GET", path+"?filter="+url.QueryEscape(expr), "")
			if got.code != 200 || got.body != string(wantJSON) {
				t.Fatalf("iteration %d %s %s:\n got %d %s\nwant %s", iter, path, expr, got.code, got.body, wantJSON)
			}
			kept += len(want)
			total += n
		}
		for _, expr := range healthFilters {
			check("/v1/health/service/web", expr, healthSample, len(health), func(i int) any { return &health[i] })
		}
		for _, expr := range catalogFilters {
			check("/v1/catalog/service/web", expr, catalogSample, len(cat), func(i int) any { return &cat[i] })
		}
	}
	if kept < total/10 || kept > total*9/10 {
		t.Errorf("filters kept %d of %d entries: too few or too many to tell", kept, total)
	}
	t.Logf("filters kept %d of %d entries", kept, total)
}

// printFilter writes what go-bexpr parses back into the same expression.
func TestPrintFilterRoundTrip(t *testing.T) {
	for _, src := range filterCorpus {
		checkPrintRoundTrip(t, src)
	}
}

var filterCorpus = []string{
	`Checks.Status == passing`,
	`Service.ID == "a" and Service.Port != 80 or not (Node.Meta.env == prod or "x" in Service.Tags)`,
	`(a == 1 or b == 2) and (c == 3 or d == 4) and not e is empty`,
	`a == 1 and (b == 2 and c == 3)`,
	`(a == 1 and b == 2) and c == 3`,
	`(a == 1 or b == 2) or c == 3`,
	`a is not empty and b is nil and c is not nil`,
	`a contains "q'" and b not contains x and c matches "^\\d+$" and d not matches ` + "`\\s`",
	`"v" not in Service.Tags and Service.Meta["some key"] == "x y" and Service.Meta.a/b == "/c"`,
	`"/Service/Meta/a~1b" == x and "/Checks/0/Status" == passing`,
	`any Checks as c { c.Status == passing and c.CheckID != serfHealth }`,
	`(all Service.Meta as k, v { v != "" }) and (any Service.Tags as _, t { t == prod })`,
	`any Service.Tags as i, _ { i == 0 }`,
	`not (any Checks as c { c.Status == critical })`,
	`Service.Port == -1.5 or Service.Port == 0`,
	`Service.ID == ""`,
	"Service.ID == `a\"b`",
	"Service.ID == \"\\x60\\r\"",
	`Service.Meta.x == Service.Meta.y`,
	`Checks.1.Status == passing`,
}

func checkPrintRoundTrip(t testing.TB, src string) {
	t.Helper()
	ast, err := grammar.Parse("", []byte(src), grammar.MaxExpressions(maxFilterExpressions))
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	printed := printFilter(ast.(grammar.Expression))
	again, err := grammar.Parse("", []byte(printed), grammar.MaxExpressions(maxFilterExpressions))
	if err != nil {
		t.Fatalf("%s printed as %s: %v", src, printed, err)
	}
	if !reflect.DeepEqual(again, ast) {
		t.Fatalf("%s printed as %s, which parses differently", src, printed)
	}
}

// FuzzFilter compiles arbitrary filters for health/service, whose
// selectors reach through the checks and are rewritten: no panic; what
// parses prints back to the same expression; what compiles evaluates.
func FuzzFilter(f *testing.F) {
	for _, s := range filterCorpus {
		f.Add(s)
	}
	f.Add(`Checks.Status == passing and Service.Meta.version == "2"`)
	f.Add(`((((((Service.ID == x))))))`)
	entry := sampleOf[api.ServiceEntry]()
	entry.Service.Tags = []string{"prod"}
	entry.Service.Meta = map[string]string{"version": "2"}
	entry.Checks = append(entry.Checks, &api.HealthCheck{Status: "passing", ServiceTags: []string{"a"}})
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 200 {
			return // the parser backtracks: long inputs only measure that
		}
		if _, err := grammar.Parse("", []byte(src), grammar.MaxExpressions(maxFilterExpressions)); err == nil {
			checkPrintRoundTrip(t, src)
		}
		flt, err := compileFilter(src, healthSample)
		if err != nil {
			return
		}
		_, _ = flt.match(entry)
		_, _ = flt.match(&api.ServiceEntry{Node: &api.Node{}, Service: &api.AgentService{}})
	})
}
