package localapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// The JSON keys of the check the Consul agent serves at /v1/agent/checks
// (its structs.HealthCheck), in their order: a superset of Consul's
// api.AgentCheck, which its client decodes.
var consulAgentCheckKeys = []string{"Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID",
	"ServiceName", "ServiceTags", "Type", "Interval", "Timeout", "ExposedPort", "Definition",
	"Namespace", "Partition", "PeerName", "CreateIndex", "ModifyIndex"}

// Keys Shoal shows of a check that is not damped.
var healthCheckKeys = []string{"Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID",
	"ServiceName", "ServiceTags", "Type", "CreateIndex", "ModifyIndex"}

// consulClient is HashiCorp's own client on a loopback server that serves h.
func consulClient(t *testing.T, h http.Handler) *consulapi.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := consulapi.DefaultConfig()
	cfg.Address = srv.URL
	cfg.Token = ""
	cl, err := consulapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// checkIDs lists the IDs of checks, in order.
func checkIDs(checks consulapi.HealthChecks) []string {
	ids := []string{}
	for _, c := range checks {
		ids = append(ids, c.CheckID)
	}
	return ids
}

// TestConsulClientChecks drives every check route with Consul's own Go
// client, v1.34.5, and reads back what it decodes.
func TestConsulClientChecks(t *testing.T) {
	b, h := newTestServer(t)
	cl := consulClient(t, h)
	ag := cl.Agent()

	// A service with a TTL check and an HTTP check, as Consul's client
	// sends them: Check and Checks.
	err := ag.ServiceRegister(&consulapi.AgentServiceRegistration{
		ID: "web-1", Name: "web", Port: 8080, Tags: []string{"v1"},
		Check:  &consulapi.AgentServiceCheck{CheckID: "web-ttl", Name: "web heartbeat", TTL: "30s", Notes: "app pings"},
		Checks: consulapi.AgentServiceChecks{{HTTP: "http://127.0.0.1:8080/health", Interval: "10s", Status: "passing"}},
	})
	if err != nil {
		t.Fatalf("service register: %v", err)
	}
	// A node check and a check bound to the service, registered alone.
	if err := ag.CheckRegister(&consulapi.AgentCheckRegistration{ID: "mem", Name: "Memory", Notes: "free memory",
		AgentServiceCheck: consulapi.AgentServiceCheck{TTL: "1m", Status: "passing"}}); err != nil {
		t.Fatalf("check register: %v", err)
	}
	if err := ag.CheckRegister(&consulapi.AgentCheckRegistration{Name: "web-extra", ServiceID: "web-1",
		AgentServiceCheck: consulapi.AgentServiceCheck{TTL: "1m"}}); err != nil {
		t.Fatalf("check register with ServiceID: %v", err)
	}

	checks, err := ag.Checks()
	if err != nil {
		t.Fatalf("agent checks: %v", err)
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for id := range checks {
			if !yield(id) {
				return
			}
		}
	}); !slices.Equal(got, []string{"mem", "service:web-1:2", "web-extra", "web-ttl"}) {
		t.Fatalf("agent checks = %v", got)
	}
	for id, c := range checks {
		if c.CheckID != id || c.Node != localNode {
			t.Errorf("%s: %+v", id, c)
		}
	}
	if c := checks["web-ttl"]; c.Name != "web heartbeat" || c.Status != "critical" || c.Notes != "app pings" ||
		c.ServiceID != "web-1" || c.ServiceName != "web" || c.Type != "ttl" {
		t.Errorf("web-ttl = %+v", c)
	}
	if c := checks["service:web-1:2"]; c.Name != "Service 'web' check" || c.Status != "passing" || c.Type != "http" ||
		c.Definition.HTTP != "http://127.0.0.1:8080/health" {
		t.Errorf("http check = %+v", c)
	}
	if c := checks["mem"]; c.Status != "passing" || c.ServiceID != "" || c.ServiceName != "" || c.Notes != "free memory" {
		t.Errorf("mem = %+v", c)
	}
	if c := checks["web-extra"]; c.ServiceID != "web-1" || c.ServiceName != "web" || c.Status != "critical" {
		t.Errorf("web-extra = %+v", c)
	}

	// TTL heartbeats, both ways Consul's client sends them.
	long := strings.Repeat("x", catalog.MaxOutputHead+100)
	for _, tc := range []struct {
		id     string
		do     func(id string) error
		status string
		output string
	}{
		{"web-ttl", func(id string) error { return ag.UpdateTTL(id, "all good", "pass") }, "passing", "all good"},
		{"web-ttl", func(id string) error { return ag.UpdateTTL(id, "slow", consulapi.HealthWarning) }, "warning", "slow"},
		{"web-ttl", func(id string) error { return ag.UpdateTTL(id, long, "fail") }, "critical", long},
		{"web-ttl", func(id string) error { return ag.PassTTL(id, "noted") }, "passing", "noted"},
		{"web-ttl", func(id string) error { return ag.WarnTTL(id, "") }, "warning", ""},
		{"web-ttl", func(id string) error { return ag.FailTTL(id, "down") }, "critical", "down"},
		{"web-extra", func(id string) error { return ag.PassTTL(id, "ok") }, "passing", "ok"},
	} {
		if err := tc.do(tc.id); err != nil {
			t.Fatalf("%s %s: %v", tc.id, tc.status, err)
		}
		// The agent's own view has the whole output, not the head the
		// catalog gossips.
		if c := must2(ag.Checks())[tc.id]; c.Status != tc.status || c.Output != tc.output {
			t.Errorf("after %s: %s = %s %q", tc.status, tc.id, c.Status, c.Output)
		}
	}
	if err := ag.UpdateTTL("web-ttl", "back", "passing"); err != nil {
		t.Fatal(err)
	}

	// health/checks/:service: the service's checks, not the node's.
	hc, meta, err := cl.Health().Checks("web", nil)
	if err != nil {
		t.Fatalf("health checks: %v", err)
	}
	if !slices.Equal(checkIDs(hc), []string{"service:web-1:2", "web-extra", "web-ttl"}) || meta.LastIndex == 0 {
		t.Fatalf("health checks = %v, index %d", checkIDs(hc), meta.LastIndex)
	}
	c := hc[2]
	if c.Node != localNode || c.Name != "web heartbeat" || c.Status != "passing" || c.Output != "back" ||
		c.Notes != "app pings" || c.ServiceID != "web-1" || c.ServiceName != "web" ||
		!slices.Equal(c.ServiceTags, []string{"v1"}) || c.Type != "ttl" || c.CreateIndex == 0 || c.ModifyIndex < c.CreateIndex {
		t.Errorf("web-ttl = %+v", c)
	}
	if s := hc.AggregatedStatus(); s != consulapi.HealthPassing {
		t.Errorf("aggregated status %s", s)
	}

	// health/node/:node: serfHealth, the node's checks, its services'.
	hn, _, err := cl.Health().Node(localNode, nil)
	if err != nil {
		t.Fatalf("health node: %v", err)
	}
	if !slices.Equal(checkIDs(hn), []string{"serfHealth", "mem", "service:web-1:2", "web-extra", "web-ttl"}) {
		t.Fatalf("health node = %v", checkIDs(hn))
	}
	if s := hn[0]; s.Status != "passing" || s.Name != "Serf Health Status" || s.ServiceTags == nil {
		t.Errorf("serfHealth = %+v", s)
	}
	if m := hn[1]; m.ServiceID != "" || m.ServiceName != "" || m.ServiceTags == nil || len(m.ServiceTags) != 0 {
		t.Errorf("node check = %+v", m)
	}

	// health/state/:state over two nodes.
	b.addRemote("node-b", "10.0.0.2", catalog.Service{ID: "web-2", Name: "web", Port: 8080})
	b.putRemoteCheck("node-b", catalog.Check{ID: "load", Name: "Load", Type: "tcp", Status: catalog.HealthWarning, Output: "high"})
	for _, tc := range []struct {
		state string
		want  []string
	}{
		{"any", []string{"serfHealth", "mem", "service:web-1:2", "web-extra", "web-ttl", "serfHealth", "load"}},
		{"passing", []string{"serfHealth", "mem", "service:web-1:2", "web-extra", "web-ttl", "serfHealth"}},
		{"warning", []string{"load"}},
		{"critical", []string{}},
	} {
		hs, meta, err := cl.Health().State(tc.state, nil)
		if err != nil {
			t.Fatalf("state %s: %v", tc.state, err)
		}
		if !slices.Equal(checkIDs(hs), tc.want) || meta.LastIndex == 0 {
			t.Errorf("state %s = %v, want %v", tc.state, checkIDs(hs), tc.want)
		}
		if tc.state == "any" && (hs[5].Node != "node-b" || hs[6].Node != "node-b" || hs[6].Output != "high") {
			t.Errorf("node-b's checks: %+v %+v", hs[5], hs[6])
		}
	}

	// Node maintenance: a critical check on every instance of the node.
	if err := ag.EnableNodeMaintenance("kernel upgrade"); err != nil {
		t.Fatalf("node maintenance: %v", err)
	}
	hn, _, _ = cl.Health().Node(localNode, nil)
	if i := slices.Index(checkIDs(hn), catalog.NodeMaintenanceID); i < 0 || hn[i].Status != "critical" ||
		hn[i].Notes != "kernel upgrade" || hn[i].Type != "maintenance" || hn[i].ServiceID != "" {
		t.Errorf("node maintenance check: %v", hn)
	}
	entries, _, err := cl.Health().Service("web", "", true, nil)
	if err != nil || len(entries) != 0 {
		t.Errorf("passing during node maintenance: %v %+v", err, entries)
	}
	if err := ag.DisableNodeMaintenance(); err != nil {
		t.Fatal(err)
	}
	// web-2 is warning, through its node's check.
	entries, _, err = cl.Health().Service("web", "", true, nil)
	if err != nil || len(entries) != 1 || entries[0].Service.ID != "web-1" || len(entries[0].Checks) != 5 ||
		entries[0].Checks.AggregatedStatus() != consulapi.HealthPassing {
		t.Errorf("passing after node maintenance: %v %+v", err, entries)
	}
	if ids := checkIDs(must(cl.Health().Node(localNode, nil))); slices.Contains(ids, catalog.NodeMaintenanceID) {
		t.Errorf("node maintenance still on: %v", ids)
	}

	// Service maintenance.
	if err := ag.EnableServiceMaintenance("web-1", "deploy"); err != nil {
		t.Fatalf("service maintenance: %v", err)
	}
	hc = must(cl.Health().Checks("web", nil))
	if i := slices.Index(checkIDs(hc), "_service_maintenance:web-1"); i < 0 || hc[i].Status != "critical" ||
		hc[i].Notes != "deploy" || hc[i].ServiceID != "web-1" || hc[i].ServiceName != "web" {
		t.Errorf("service maintenance check: %v", checkIDs(hc))
	}
	if err := ag.DisableServiceMaintenance("web-1"); err != nil {
		t.Fatal(err)
	}
	if ids := checkIDs(must(cl.Health().Checks("web", nil))); slices.Contains(ids, "_service_maintenance:web-1") {
		t.Errorf("service maintenance still on: %v", ids)
	}

	// Deregistration and reload.
	if err := ag.CheckDeregister("mem"); err != nil {
		t.Fatalf("check deregister: %v", err)
	}
	if _, ok := must2(ag.Checks())["mem"]; ok {
		t.Error("mem still registered")
	}
	if err := ag.CheckDeregister("mem"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("second deregister: %v", err)
	}
	if err := ag.Reload(); err != nil || b.reloads != 1 {
		t.Errorf("reload: %v, %d reloads", err, b.reloads)
	}
	b.reloadErr = fmt.Errorf("config: line 3: bad")
	if err := ag.Reload(); err == nil || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("failed reload: %v", err)
	}
}

func must(checks consulapi.HealthChecks, _ *consulapi.QueryMeta, err error) consulapi.HealthChecks {
	if err != nil {
		panic(err)
	}
	return checks
}

func must2[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestCheckShapes holds the raw JSON of the check routes to Consul's keys
// and order, and checks the Shoal additions: Damped, present only when
// set.
func TestCheckShapes(t *testing.T) {
	b, h := newTestServer(t)
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080,"Tags":["v1"],"Check":{"CheckID":"ttl","TTL":"10s"}}`)
	b.addRemote("node-b", "10.0.0.2", catalog.Service{ID: "web-2", Name: "web", Port: 8080})
	b.putRemoteCheck("node-b", catalog.Check{ID: "flappy", Name: "Flappy", ServiceID: "web-2", Type: "http",
		Status: catalog.HealthCritical, Output: "held", Damped: true})

	r := do(t, h, "GET", "/v1/agent/checks", "")
	mustStatus(t, r, 200)
	checkReadHeaders(t, r)
	var agentChecks map[string]json.RawMessage
	json.Unmarshal([]byte(r.body), &agentChecks)
	checkKeys(t, "agent check", agentChecks["ttl"], []string{"Node", "CheckID", "Name", "Status", "Notes", "Output",
		"ServiceID", "ServiceName", "ServiceTags", "Type", "Interval", "Timeout", "ExposedPort", "Definition"}, consulAgentCheckKeys)

	for _, target := range []string{"/v1/health/checks/web", "/v1/health/node/node-a", "/v1/health/state/any"} {
		r := do(t, h, "GET", target, "")
		mustStatus(t, r, 200)
		checkReadHeaders(t, r)
		var list []json.RawMessage
		json.Unmarshal([]byte(r.body), &list)
		if len(list) == 0 {
			t.Fatalf("%s = %s", target, r.body)
		}
		for _, raw := range list {
			if strings.Contains(string(raw), `"flappy"`) {
				continue
			}
			checkKeys(t, target, raw, healthCheckKeys, consulHealthCheckKeys)
		}
	}

	// Damped shows only on the damped check, last, and only as true.
	r = do(t, h, "GET", "/v1/health/service/web", "")
	if n := strings.Count(r.body, `"Damped"`); n != 1 || !strings.Contains(r.body, `"ModifyIndex":`) ||
		!regexpDamped.MatchString(r.body) {
		t.Errorf("Damped appears %d times: %s", n, r.body)
	}
	r = do(t, h, "GET", "/v1/health/checks/web", "")
	var hcs []api.HealthCheck
	json.Unmarshal([]byte(r.body), &hcs)
	if len(hcs) != 2 || hcs[0].CheckID != "ttl" || hcs[0].Damped || hcs[1].CheckID != "flappy" || !hcs[1].Damped {
		t.Errorf("health checks = %s", r.body)
	}

	// Unknown and dead nodes have no checks; an unknown service none.
	for _, target := range []string{"/v1/health/node/nope", "/v1/health/checks/nope"} {
		if r := do(t, h, "GET", target, ""); r.code != 200 || r.body != "[]" {
			t.Errorf("%s = %d %s", target, r.code, r.body)
		}
	}
	b.setStatus("node-b", catalog.StatusDead)
	if r := do(t, h, "GET", "/v1/health/node/node-b", ""); r.body != "[]" {
		t.Errorf("dead node = %s", r.body)
	}
	if r := do(t, h, "GET", "/v1/health/state/any", ""); strings.Contains(r.body, "node-b") {
		t.Errorf("dead node in state/any: %s", r.body)
	}
	if r := do(t, h, "GET", "/v1/agent/checks", ""); !strings.Contains(r.body, `"ServiceTags":["v1"]`) {
		t.Errorf("agent checks = %s", r.body)
	}
}

var regexpDamped = regexp.MustCompile(`"ModifyIndex":\d+,"Damped":true\}`)

// TestHealthServiceChecks shows an instance's checks after serfHealth:
// node checks, then its own, with the fields Consul shows.
func TestHealthServiceChecks(t *testing.T) {
	_, h := newTestServer(t)
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080,"Tags":["v1","prod"],"Check":{"CheckID":"web-ttl","TTL":"10s","Notes":"n"}}`)
	mustStatus(t, do(t, h, "PUT", "/v1/agent/check/register", `{"Name":"disk","TTL":"1m","Status":"passing"}`), 200)
	mustStatus(t, do(t, h, "PUT", "/v1/agent/check/update/web-ttl", `{"Status":"warning","Output":"slow <db>"}`), 200)

	var entries []api.ServiceEntry
	r := do(t, h, "GET", "/v1/health/service/web", "")
	json.Unmarshal([]byte(r.body), &entries)
	if len(entries) != 1 {
		t.Fatalf("entries = %s", r.body)
	}
	var ids []string
	for _, c := range entries[0].Checks {
		ids = append(ids, c.CheckID)
	}
	if !slices.Equal(ids, []string{"serfHealth", "disk", "web-ttl"}) {
		t.Fatalf("checks = %v", ids)
	}
	disk, ttl := entries[0].Checks[1], entries[0].Checks[2]
	if disk.Node != localNode || disk.Status != "passing" || disk.ServiceID != "" || disk.ServiceName != "" ||
		disk.ServiceTags == nil || len(disk.ServiceTags) != 0 || disk.Type != "ttl" || disk.CreateIndex == 0 {
		t.Errorf("node check = %+v", disk)
	}
	if ttl.Status != "warning" || ttl.Output != "slow <db>" || ttl.Notes != "n" || ttl.ServiceID != "web-1" ||
		ttl.ServiceName != "web" || !slices.Equal(ttl.ServiceTags, []string{"v1", "prod"}) || ttl.Type != "ttl" ||
		ttl.ModifyIndex <= ttl.CreateIndex || ttl.Damped {
		t.Errorf("service check = %+v", ttl)
	}
	if !strings.Contains(r.body, `"Output":"slow \u003cdb\u003e"`) {
		t.Errorf("output not escaped as encoding/json escapes it: %s", r.body)
	}
}

// TestPassingFilter: ?passing keeps instances whose every check passes,
// serfHealth included; ?passing&warning keeps warning ones too.
func TestPassingFilter(t *testing.T) {
	b, h := newTestServer(t)
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080,"Check":{"CheckID":"ttl-1","TTL":"10s","Status":"passing"}}`)
	b.addRemote("node-b", "10.0.0.2", catalog.Service{ID: "web-2", Name: "web", Port: 8080},
		catalog.Service{ID: "web-3", Name: "web", Port: 8081})
	b.putRemoteCheck("node-b", catalog.Check{ID: "c2", Name: "c2", ServiceID: "web-2", Type: "http", Status: catalog.HealthWarning})
	b.putRemoteCheck("node-b", catalog.Check{ID: "c3", Name: "c3", ServiceID: "web-3", Type: "http", Status: catalog.HealthCritical})
	b.addRemote("node-c", "10.0.0.3", catalog.Service{ID: "web-4", Name: "web", Port: 8080})
	b.addRemote("node-d", "10.0.0.4", catalog.Service{ID: "web-5", Name: "web", Port: 8080})
	b.putRemoteCheck("node-d", catalog.Check{ID: "node", Name: "node", Type: "tcp", Status: catalog.HealthWarning})

	eq := func(target string, want ...string) {
		t.Helper()
		if got := healthIDs(t, h, target); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", target, got, want)
		}
	}
	eq("/v1/health/service/web", "web-1", "web-2", "web-3", "web-4", "web-5")
	eq("/v1/health/service/web?passing", "web-1", "web-4")
	eq("/v1/health/service/web?passing=true&warning=true", "web-1", "web-2", "web-4", "web-5")
	eq("/v1/health/service/web?passing&warning=false", "web-1", "web-4")
	eq("/v1/health/service/web?passing=false&warning=false", "web-1", "web-2", "web-3", "web-4", "web-5")

	// A check going critical, and node maintenance, take the local
	// instance out; a suspect node stays in.
	mustStatus(t, do(t, h, "PUT", "/v1/agent/check/fail/ttl-1?note=down", ""), 200)
	eq("/v1/health/service/web?passing&warning", "web-2", "web-4", "web-5")
	mustStatus(t, do(t, h, "PUT", "/v1/agent/check/pass/ttl-1", ""), 200)
	eq("/v1/health/service/web?passing", "web-1", "web-4")
	mustStatus(t, do(t, h, "PUT", "/v1/agent/maintenance?enable=true&reason=upgrade", ""), 200)
	eq("/v1/health/service/web?passing", "web-4")
	eq("/v1/health/service/web", "web-1", "web-2", "web-3", "web-4", "web-5")
	mustStatus(t, do(t, h, "PUT", "/v1/agent/maintenance?enable=false", ""), 200)
	mustStatus(t, do(t, h, "PUT", "/v1/agent/service/maintenance/web-1?enable=1", ""), 200)
	eq("/v1/health/service/web?passing&warning", "web-2", "web-4", "web-5")
	mustStatus(t, do(t, h, "PUT", "/v1/agent/service/maintenance/web-1?enable=false", ""), 200)
	b.setStatus("node-c", catalog.StatusSuspect)
	eq("/v1/health/service/web?passing", "web-1", "web-4")
	// The local node after leaving is critical through serfHealth.
	b.setStatus(localNode, catalog.StatusLeft)
	eq("/v1/health/service/web?passing&warning", "web-2", "web-4", "web-5")
	var hs []api.HealthCheck
	json.Unmarshal([]byte(do(t, h, "GET", "/v1/health/state/critical", "").body), &hs)
	if len(hs) != 2 || hs[0].CheckID != "serfHealth" || hs[0].Node != localNode || hs[1].CheckID != "c3" {
		t.Errorf("state/critical = %+v", hs)
	}
}

// TestHealthBlockingQueries: each health read blocks until a check it
// shows changes, and answers with the new state.
func TestHealthBlockingQueries(t *testing.T) {
	for _, tc := range []struct {
		target string
		change string // PUT path
		want   string // in the answer after the change
	}{
		{"/v1/health/state/critical", "/v1/agent/check/fail/ttl-1?note=gone", `"Output":"gone"`},
		{"/v1/health/state/any", "/v1/agent/check/warn/ttl-1", `"Status":"warning"`},
		{"/v1/health/checks/web", "/v1/agent/check/warn/ttl-1?note=w", `"Output":"w"`},
		{"/v1/health/node/" + localNode, "/v1/agent/maintenance?enable=true", catalog.NodeMaintenanceID},
		{"/v1/health/service/web", "/v1/agent/check/fail/ttl-1?note=x", `"Output":"x"`},
		{"/v1/agent/checks", "/v1/agent/check/pass/ttl-1?note=up", `"Output":"up"`},
	} {
		t.Run(tc.target, func(t *testing.T) {
			b, h := newTestServer(t)
			register(t, h, `{"ID":"web-1","Name":"web","Port":8080,"Check":{"CheckID":"ttl-1","TTL":"10s","Status":"passing"}}`)
			ix := checkReadHeaders(t, do(t, h, "GET", tc.target, ""))
			reads := b.reads.Load()
			got := blockingGet(t.Context(), h, fmt.Sprintf("%s?index=%d&wait=30s", tc.target, ix))
			waitFor(t, 5*time.Second, "the query to read", func() bool { return b.reads.Load() > reads })
			select {
			case rec := <-got:
				t.Fatalf("answered before any change: %d %s", rec.Code, rec.Body)
			default:
			}
			mustStatus(t, do(t, h, "PUT", tc.change, ""), 200)
			select {
			case rec := <-got:
				ix2, _ := strconv.ParseUint(rec.Header().Get("X-Consul-Index"), 10, 64)
				if rec.Code != 200 || ix2 <= ix || !strings.Contains(rec.Body.String(), tc.want) {
					t.Errorf("after the change: %d index %d (was %d): %s", rec.Code, ix2, ix, rec.Body)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("not woken by the change")
			}
		})
	}
}

// TestHealthServiceIgnoresOtherChecks: a check of another service does
// not wake a blocking query on health/service or health/checks.
func TestHealthServiceIgnoresOtherChecks(t *testing.T) {
	b, h := newTestServer(t)
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080}`)
	register(t, h, `{"ID":"db-1","Name":"db","Port":5432,"Check":{"CheckID":"db-ttl","TTL":"10s"}}`)
	for _, target := range []string{"/v1/health/service/web", "/v1/health/checks/web"} {
		ix := checkReadHeaders(t, do(t, h, "GET", target, ""))
		ctx, cancel := context.WithCancel(t.Context())
		reads := b.reads.Load()
		got := blockingGet(ctx, h, fmt.Sprintf("%s?index=%d&wait=30s", target, ix))
		waitFor(t, 5*time.Second, "the query to read", func() bool { return b.reads.Load() > reads })
		reads = b.reads.Load()
		mustStatus(t, do(t, h, "PUT", "/v1/agent/check/pass/db-ttl", ""), 200)
		waitFor(t, 5*time.Second, "the query to read again", func() bool { return b.reads.Load() > reads })
		select {
		case rec := <-got:
			t.Errorf("%s answered on a change to db: %s", target, rec.Body)
		default:
		}
		cancel()
		<-got
	}
}

// TestCheckBadRequests: every refusal is a 4xx that names what is wrong,
// and changes nothing.
func TestCheckBadRequests(t *testing.T) {
	b, h := newTestServer(t)
	register(t, h, `{"ID":"web-1","Name":"web","Port":8080,"Checks":[{"CheckID":"ttl-1","TTL":"10s"},{"CheckID":"http-1","HTTP":"http://x/","Interval":"10s"}]}`)
	for _, tc := range []struct {
		method, target, body string
		code                 int
		names                string // the message starts with it
	}{
		// Check registration.
		{"PUT", "/v1/agent/check/register", ``, 400, "body"},
		{"PUT", "/v1/agent/check/register", `{`, 400, "body"},
		{"PUT", "/v1/agent/check/register", `[]`, 400, "body"},
		{"PUT", "/v1/agent/check/register", `{"Name":"x","TTL":"10s"} {}`, 400, "body"},
		{"PUT", "/v1/agent/check/register", `{"Name":"x","TTL":"10s","Bogus":1}`, 400, "Bogus: unknown field; see Consul's AgentCheckRegistration"},
		{"PUT", "/v1/agent/check/register", `{"Name":"x","TTL":"10s","Namespace":"ns"}`, 400, "Namespace: unknown field"},
		{"PUT", "/v1/agent/check/register", `{"Name":"x","Interval":10}`, 400, "Interval: expected a string"},
		{"PUT", "/v1/agent/check/register", `{"Name":"x","Header":{"a":"b"}}`, 400, "Header: expected an array"},
		{"PUT", "/v1/agent/check/register", `{"TTL":"10s"}`, 400, "Name"},
		{"PUT", "/v1/agent/check/register", `{"Name":"x","TTL":"10s","Status":"fine"}`, 400, "Status"},
		{"PUT", "/v1/agent/check/register", `{"Name":"x","TTL":"10s","ServiceID":"nope"}`, 400, "ServiceID"},
		{"PUT", "/v1/agent/check/register", `{"ID":"a/b","Name":"x","TTL":"10s"}`, 400, "CheckID"},
		{"PUT", "/v1/agent/check/register", `{"ID":"_node_maintenance","Name":"x","TTL":"10s"}`, 400, "ID"},
		// Checks inside a service registration.
		{"PUT", "/v1/agent/service/register", `{"Name":"web","Port":80,"Check":{"Bogus":1}}`, 400, "Check.Bogus: unknown field"},
		{"PUT", "/v1/agent/service/register", `{"Name":"web","Port":80,"Checks":[null,{"TTL":"1s","Bogus":1}]}`, 400, "Checks[1].Bogus: unknown field"},
		{"PUT", "/v1/agent/service/register", `{"Name":"web","Port":80,"Checks":[{"TTL":"1s"},{"TTL":"1s","Status":"bad"}]}`, 400, "Checks[1].Status"},
		{"PUT", "/v1/agent/service/register", `{"Name":"web","Port":80,"Check":{"Interval":"10s"}}`, 400, "Check.TTL"},
		{"PUT", "/v1/agent/service/register", `{"Name":"web","Port":80,"Checks":[{"CheckID":"a","TTL":"1s"},{"CheckID":"a","TTL":"1s"}]}`, 400, "Checks[1].CheckID"},
		// Deregistration and heartbeats.
		{"PUT", "/v1/agent/check/deregister/nope", ``, 404, `Unknown check ID "nope"`},
		{"PUT", "/v1/agent/check/deregister/", ``, 400, "check ID: missing"},
		{"PUT", "/v1/agent/check/pass/nope", ``, 404, `Unknown check ID "nope"`},
		{"PUT", "/v1/agent/check/warn/http-1", ``, 400, "CheckID"},
		{"PUT", "/v1/agent/check/fail/ttl-1?note=%ff", ``, 400, "note"},
		{"PUT", "/v1/agent/check/pass/ttl-1?filter=x", ``, 400, "filter"},
		{"PUT", "/v1/agent/check/update/ttl-1", ``, 400, "body"},
		{"PUT", "/v1/agent/check/update/ttl-1", `{"Status":"fine"}`, 400, "Status"},
		{"PUT", "/v1/agent/check/update/ttl-1", `{"Output":"x"}`, 400, "Status"},
		{"PUT", "/v1/agent/check/update/ttl-1", `{"Status":"passing","Outptu":"x"}`, 400, `Outptu: unknown field; the fields are "Status" and "Output"`},
		{"PUT", "/v1/agent/check/update/ttl-1", `{"Status":"passing","Output":5}`, 400, "Output: expected a string"},
		{"PUT", "/v1/agent/check/update/nope", `{"Status":"passing"}`, 404, `Unknown check ID "nope"`},
		{"PUT", "/v1/agent/check/update/http-1", `{"Status":"passing"}`, 400, "CheckID"},
		// Maintenance.
		{"PUT", "/v1/agent/maintenance", ``, 400, "enable: missing"},
		{"PUT", "/v1/agent/maintenance?enable", ``, 400, "enable"},
		{"PUT", "/v1/agent/maintenance?enable=maybe", ``, 400, "enable"},
		{"PUT", "/v1/agent/maintenance?enable=true&reason=%00", ``, 400, "reason"},
		{"PUT", "/v1/agent/service/maintenance/web-1", ``, 400, "enable: missing"},
		{"PUT", "/v1/agent/service/maintenance/web-1?enable=yes", ``, 400, "enable"},
		{"PUT", "/v1/agent/service/maintenance/nope?enable=true", ``, 404, `Unknown service ID "nope"`},
		{"PUT", "/v1/agent/service/maintenance/?enable=true", ``, 400, "service ID: missing"},
		// Reads.
		{"GET", "/v1/health/state/bogus", ``, 400, "state"},
		{"GET", "/v1/health/state/", ``, 400, "state: missing"},
		{"GET", "/v1/health/state/any?filter=Stauts==x", ``, 400, `filter: selector "Stauts" is not valid`},
		{"GET", "/v1/health/checks/web?node-meta=:a", ``, 400, "node-meta"},
		{"GET", "/v1/health/node/node-a?filter=x", ``, 400, "filter"},
		{"GET", "/v1/health/node/node-a?index=x", ``, 400, "index"},
		{"GET", "/v1/agent/checks?filter=x", ``, 400, "filter"},
		{"GET", "/v1/agent/checks?wait=soon", ``, 400, "wait"},
		{"GET", "/v1/health/service/web?warning", ``, 400, "warning"},
		{"GET", "/v1/health/service/web?passing&warning=maybe", ``, 400, "warning"},
		// Methods.
		{"GET", "/v1/agent/check/register", ``, 405, "method"},
		{"PUT", "/v1/agent/checks", ``, 405, "method"},
		{"GET", "/v1/agent/maintenance?enable=true", ``, 405, "method"},
		{"GET", "/v1/agent/reload", ``, 405, "method"},
		{"POST", "/v1/health/state/any", ``, 405, "method"},
	} {
		t.Run(tc.method+" "+tc.target+" "+tc.body, func(t *testing.T) {
			before := b.state()
			r := do(t, h, tc.method, tc.target, tc.body)
			if r.code != tc.code || !strings.HasPrefix(r.body, tc.names) || strings.Count(r.body, "\n") != 1 {
				t.Errorf("%d %q; want %d starting with %q", r.code, r.body, tc.code, tc.names)
			}
			if after := b.state(); after != before {
				t.Errorf("state changed:\n%s\n%s", before, after)
			}
		})
	}
	if b.reloads != 0 {
		t.Errorf("%d reloads", b.reloads)
	}
}

// TestAgentChecksFullOutput: agent/checks shows the output the agent
// keeps; health reads show the head the catalog gossips.
func TestAgentChecksFullOutput(t *testing.T) {
	_, h := newTestServer(t)
	mustStatus(t, do(t, h, "PUT", "/v1/agent/check/register", `{"ID":"ttl-1","Name":"t","TTL":"10s"}`), 200)
	out := strings.Repeat("é", catalog.MaxOutputHead) // two bytes each
	body, _ := json.Marshal(map[string]string{"Status": "critical", "Output": out})
	mustStatus(t, do(t, h, "PUT", "/v1/agent/check/update/ttl-1", string(body)), 200)
	var checks map[string]api.AgentCheck
	json.Unmarshal([]byte(do(t, h, "GET", "/v1/agent/checks", "").body), &checks)
	if c := checks["ttl-1"]; c.Output != out || c.Status != "critical" {
		t.Errorf("agent check output %d bytes, status %s", len(c.Output), c.Status)
	}
	var hs []api.HealthCheck
	json.Unmarshal([]byte(do(t, h, "GET", "/v1/health/state/critical", "").body), &hs)
	if len(hs) != 1 || hs[0].Output != catalog.TruncateOutput(out, catalog.MaxOutputHead) {
		t.Errorf("health state = %+v", hs)
	}
}
