package agent_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/health"
	"github.com/shoal-sd/shoal/internal/testutil"
	"github.com/shoal-sd/shoal/localapi"
)

func init() {
	// Checks in these tests run every few tens of milliseconds.
	health.MinInterval = 10 * time.Millisecond
}

// flipServer is a real HTTP health endpoint whose answer a test sets.
type flipServer struct {
	*httptest.Server
	code atomic.Int32
}

func newFlipServer(t *testing.T, code int) *flipServer {
	f := &flipServer{}
	f.code.Store(int32(code))
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(f.code.Load()))
		fmt.Fprintf(w, "answered %d", f.code.Load())
	}))
	t.Cleanup(f.Close)
	return f
}

// statusEverywhere waits until every node serves the instance origin/id of
// "web" with the given status.
func statusEverywhere(t *testing.T, c *testutil.Cluster, origin, id string, want catalog.Health) {
	t.Helper()
	testutil.WaitFor(t, converge, func() error {
		for _, n := range c.Nodes() {
			found := false
			for _, in := range n.Instances("web") {
				if in.Node.Name == origin && in.Service.ID == id {
					found = true
					if in.Status != want {
						return fmt.Errorf("%s sees %s/%s %s, want %s", n.Name, origin, id, in.Status, want)
					}
				}
			}
			if !found {
				return fmt.Errorf("%s does not serve %s/%s", n.Name, origin, id)
			}
		}
		return nil
	})
}

// An HTTP check run by the instance's agent decides its status, and every
// agent serves that status.
func TestHTTPCheckStatusReachesEveryAgent(t *testing.T) {
	c := testutil.NewCluster(t, 3)
	srv := newFlipServer(t, http.StatusOK)
	n1 := c.Node("node-1")
	check := api.AgentServiceCheck{HTTP: srv.URL + "/health", Interval: "50ms", Timeout: "1s"}
	if err := n1.Agent.RegisterService(web("web-1", 8080), []api.AgentServiceCheck{check}); err != nil {
		t.Fatal(err)
	}
	statusEverywhere(t, c, "node-1", "web-1", catalog.HealthPassing)
	srv.code.Store(http.StatusInternalServerError)
	statusEverywhere(t, c, "node-1", "web-1", catalog.HealthCritical)
	srv.code.Store(http.StatusTooManyRequests)
	statusEverywhere(t, c, "node-1", "web-1", catalog.HealthWarning)
	srv.code.Store(http.StatusOK)
	statusEverywhere(t, c, "node-1", "web-1", catalog.HealthPassing)

	// The agent shows the check with its definition and the full output.
	checks := n1.Agent.AgentChecks()
	if len(checks) != 1 || checks[0].CheckID != "service:web-1" || checks[0].ServiceName != "web" ||
		checks[0].Status != "passing" || !strings.Contains(checks[0].Output, "answered 200") || checks[0].Definition.HTTP != check.HTTP {
		t.Fatalf("AgentChecks = %+v", checks)
	}
	// The same registration again changes nothing: the check keeps
	// running in the state it reached (no blip to critical anywhere).
	idx := c.Node("node-0").Agent.Changed()
	if err := n1.Agent.RegisterService(web("web-1", 8080), []api.AgentServiceCheck{check}); err != nil {
		t.Fatal(err)
	}
	if checks := n1.Agent.AgentChecks(); checks[0].Status != "passing" {
		t.Fatalf("re-registration reset the check: %+v", checks[0])
	}
	select {
	case <-idx:
		t.Fatal("an identical re-registration changed a remote catalog")
	default:
	}
	// A check registered on its own stays when the service is
	// registered again without it, as in Consul…
	if err := n1.Agent.RegisterCheck(api.AgentCheckRegistration{ID: "extra", Name: "extra", ServiceID: "web-1",
		AgentServiceCheck: api.AgentServiceCheck{TTL: "1m", Status: "passing"}}); err != nil {
		t.Fatal(err)
	}
	if err := n1.Agent.RegisterService(web("web-1", 8080), nil); err != nil {
		t.Fatal(err)
	}
	if checks := n1.Agent.AgentChecks(); len(checks) != 2 {
		t.Fatalf("a registration without checks dropped some: %+v", checks)
	}
	// …and ReplaceExistingChecks drops every check it does not list,
	// everywhere.
	if err := n1.Agent.RegisterService(web("web-1", 8080), nil, localapi.RegisterOptions{ReplaceExistingChecks: true}); err != nil {
		t.Fatal(err)
	}
	srv.code.Store(http.StatusInternalServerError)
	testutil.WaitFor(t, converge, func() error {
		for _, n := range c.Nodes() {
			if in := n.Instances("web"); len(in) != 1 || in[0].Checks != nil || in[0].Status != catalog.HealthPassing {
				return fmt.Errorf("%s: %+v", n.Name, in)
			}
		}
		return nil
	})
}

// A TCP check follows a real listener that goes away and comes back on
// the same port, and a gRPC check a real grpc.health.v1 server that stops
// and starts serving; every agent sees each change.
func TestTCPAndGRPCChecksReachEveryAgent(t *testing.T) {
	c := testutil.NewCluster(t, 2)
	n0 := c.Node("node-0")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	accept := func(l net.Listener) {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}
	go accept(ln)
	if err := n0.Agent.RegisterService(web("tcp-1", 8080), []api.AgentServiceCheck{{TCP: addr, Interval: "30ms", Timeout: "500ms"}}); err != nil {
		t.Fatal(err)
	}
	statusEverywhere(t, c, "node-0", "tcp-1", catalog.HealthPassing)
	ln.Close()
	statusEverywhere(t, c, "node-0", "tcp-1", catalog.HealthCritical)
	testutil.WaitFor(t, 10*time.Second, func() error {
		ln, err = net.Listen("tcp", addr) // the port may linger a moment
		return err
	})
	defer ln.Close()
	go accept(ln)
	statusEverywhere(t, c, "node-0", "tcp-1", catalog.HealthPassing)

	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := grpchealth.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(gl)
	defer srv.Stop()
	hs.SetServingStatus("web", healthpb.HealthCheckResponse_SERVING)
	if err := n0.Agent.RegisterService(web("grpc-1", 8080), []api.AgentServiceCheck{{GRPC: gl.Addr().String() + "/web", Interval: "30ms", Timeout: "500ms"}}); err != nil {
		t.Fatal(err)
	}
	statusEverywhere(t, c, "node-0", "grpc-1", catalog.HealthPassing)
	hs.SetServingStatus("web", healthpb.HealthCheckResponse_NOT_SERVING)
	statusEverywhere(t, c, "node-0", "grpc-1", catalog.HealthCritical)
	hs.SetServingStatus("web", healthpb.HealthCheckResponse_SERVING)
	statusEverywhere(t, c, "node-0", "grpc-1", catalog.HealthPassing)
}

// Thresholds hold a state change back on every agent until enough runs
// in a row agree.
func TestCheckThresholdsHoldChanges(t *testing.T) {
	c := testutil.NewCluster(t, 2)
	var hits atomic.Int32
	var code atomic.Int32
	code.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(int(code.Load()))
	}))
	defer srv.Close()
	check := api.AgentServiceCheck{HTTP: srv.URL, Interval: "30ms", SuccessBeforePassing: 3, FailuresBeforeCritical: 4, Status: "passing"}
	if err := c.Node("node-0").Agent.RegisterService(web("web-1", 8080), []api.AgentServiceCheck{check}); err != nil {
		t.Fatal(err)
	}
	statusEverywhere(t, c, "node-0", "web-1", catalog.HealthPassing)
	// Count from before the switch: every failing run is counted (a run
	// counted early may still have passed, which only makes n larger).
	failedFrom := hits.Load()
	code.Store(http.StatusInternalServerError)
	statusEverywhere(t, c, "node-0", "web-1", catalog.HealthCritical)
	if n := hits.Load() - failedFrom; n < 4 {
		t.Fatalf("critical after %d failing runs, want at least 4", n)
	}
	passedFrom := hits.Load()
	code.Store(http.StatusOK)
	statusEverywhere(t, c, "node-0", "web-1", catalog.HealthPassing)
	if n := hits.Load() - passedFrom; n < 3 {
		t.Fatalf("passing after %d passing runs, want at least 3", n)
	}
}

// A TTL check turns critical without heartbeats; a heartbeat revives it,
// on every agent; an unknown or non-TTL check is refused.
func TestTTLCheckHeartbeats(t *testing.T) {
	c := testutil.NewCluster(t, 2)
	n0 := c.Node("node-0")
	if err := n0.Agent.RegisterService(web("web-1", 8080), []api.AgentServiceCheck{{CheckID: "hb", TTL: "300ms", Status: "passing"}}); err != nil {
		t.Fatal(err)
	}
	statusEverywhere(t, c, "node-0", "web-1", catalog.HealthCritical) // expired
	if err := n0.Agent.UpdateCheck("hb", catalog.HealthPassing, "alive"); err != nil {
		t.Fatal(err)
	}
	statusEverywhere(t, c, "node-0", "web-1", catalog.HealthPassing)
	if err := n0.Agent.UpdateCheck("nope", catalog.HealthPassing, ""); err == nil {
		t.Fatal("a heartbeat of an unknown check was accepted")
	}
	if err := n0.Agent.RegisterCheck(api.AgentCheckRegistration{ID: "tcp", Name: "tcp", AgentServiceCheck: api.AgentServiceCheck{TCP: n0.Agent.HTTPAddr(), Interval: "50ms"}}); err != nil {
		t.Fatal(err)
	}
	if err := n0.Agent.UpdateCheck("tcp", catalog.HealthPassing, ""); err == nil {
		t.Fatal("a heartbeat of a TCP check was accepted")
	}
}

// A service whose check stays critical past
// DeregisterCriticalServiceAfter is deregistered everywhere.
func TestDeregisterCriticalServiceAfter(t *testing.T) {
	c := testutil.NewCluster(t, 2)
	srv := newFlipServer(t, http.StatusOK)
	check := api.AgentServiceCheck{HTTP: srv.URL, Interval: "30ms", DeregisterCriticalServiceAfter: "300ms"}
	if err := c.Node("node-0").Agent.RegisterService(web("web-1", 8080), []api.AgentServiceCheck{check}); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-0/web-1")
	srv.code.Store(http.StatusServiceUnavailable)
	seenBy(t, c)
}

// Maintenance of the node or of one service makes instances critical
// everywhere, with the reason; ending it restores them.
func TestMaintenanceMode(t *testing.T) {
	c := testutil.NewCluster(t, 2)
	n0 := c.Node("node-0")
	for _, id := range []string{"web-1", "web-2"} {
		if err := n0.Agent.RegisterService(web(id, 8080), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := n0.Agent.ServiceMaintenance("web-1", true, "deploying"); err != nil {
		t.Fatal(err)
	}
	statusEverywhere(t, c, "node-0", "web-1", catalog.HealthCritical)
	statusEverywhere(t, c, "node-0", "web-2", catalog.HealthPassing)
	if err := n0.Agent.NodeMaintenance(true, ""); err != nil {
		t.Fatal(err)
	}
	statusEverywhere(t, c, "node-0", "web-2", catalog.HealthCritical)
	var notes string
	c.Node("node-1").Agent.Read(func(cat *catalog.Catalog) {
		for _, v := range cat.NodeChecks("node-0") {
			if v.Check.ID == "_service_maintenance:web-1" {
				notes = v.Check.Notes
			}
		}
	})
	if notes != "deploying" {
		t.Fatalf("remote maintenance reason %q", notes)
	}
	if err := n0.Agent.NodeMaintenance(false, ""); err != nil {
		t.Fatal(err)
	}
	if err := n0.Agent.ServiceMaintenance("web-1", false, ""); err != nil {
		t.Fatal(err)
	}
	statusEverywhere(t, c, "node-0", "web-1", catalog.HealthPassing)
	statusEverywhere(t, c, "node-0", "web-2", catalog.HealthPassing)
	if err := n0.Agent.ServiceMaintenance("nope", true, ""); err == nil {
		t.Fatal("maintenance of an unknown service was accepted")
	}
	// A check cannot pose as maintenance mode.
	if err := n0.Agent.NodeMaintenance(true, "again"); err != nil {
		t.Fatal(err)
	}
	fake := api.AgentServiceCheck{CheckID: "_node_maintenance", TTL: "1m", Status: "passing"}
	if err := n0.Agent.RegisterService(web("web-3", 8080), []api.AgentServiceCheck{fake}); err == nil {
		t.Fatal("a service check took the node maintenance ID")
	}
	statusEverywhere(t, c, "node-0", "web-2", catalog.HealthCritical)
}

// A check that flaps is held at its worse state everywhere, shown damped,
// and released once stable.
func TestFlappingCheckIsDampedEverywhere(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) {
		// A hold-down long enough for every agent to be seen damped
		// even on a loaded machine.
		cfg.Damping = health.Damping{Threshold: 3, Window: 10 * time.Second, HoldDown: 2 * time.Second}
	}
	c.Start("node-0", 0)
	c.Start("node-1", 0)
	c.JoinAll()
	n0 := c.Node("node-0")
	if err := n0.Agent.RegisterService(web("web-1", 8080), []api.AgentServiceCheck{{CheckID: "hb", TTL: "1m", Status: "passing"}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		st := catalog.HealthCritical
		if i%2 == 1 {
			st = catalog.HealthPassing
		}
		if err := n0.Agent.UpdateCheck("hb", st, ""); err != nil {
			t.Fatal(err)
		}
	}
	// Held critical and damped, though the last heartbeat passed.
	testutil.WaitFor(t, converge, func() error {
		for _, n := range c.Nodes() {
			in := n.Instances("web")
			if len(in) != 1 || !in[0].Damped || in[0].Status != catalog.HealthCritical {
				return fmt.Errorf("%s: %+v", n.Name, in)
			}
		}
		return nil
	})
	// Stable for the hold-down: released, passing.
	testutil.WaitFor(t, converge, func() error {
		for _, n := range c.Nodes() {
			in := n.Instances("web")
			if len(in) != 1 || in[0].Damped || in[0].Status != catalog.HealthPassing {
				return fmt.Errorf("%s: %+v", n.Name, in)
			}
		}
		return nil
	})
}

// A restart with the same data dir brings back services, checks (a TTL
// check critical until its first heartbeat) and maintenance; a corrupt
// check file is set aside.
func TestRestartRestoresChecksAndMaintenance(t *testing.T) {
	dir := t.TempDir()
	c := testutil.NewEmptyCluster(t)
	c.Configure = withDataDir("node-0", dir)
	n := c.Start("node-0", 0)
	srv := newFlipServer(t, http.StatusOK)
	if err := n.Agent.RegisterService(web("web-1", 8080), []api.AgentServiceCheck{{CheckID: "hb", TTL: "1m"}}); err != nil {
		t.Fatal(err)
	}
	if err := n.Agent.RegisterService(web("web-2", 8080), []api.AgentServiceCheck{{HTTP: srv.URL, Interval: "50ms"}}); err != nil {
		t.Fatal(err)
	}
	if err := n.Agent.RegisterCheck(api.AgentCheckRegistration{Name: "disk", AgentServiceCheck: api.AgentServiceCheck{TTL: "1m", Status: "passing"}}); err != nil {
		t.Fatal(err)
	}
	if err := n.Agent.UpdateCheck("hb", catalog.HealthPassing, "ok"); err != nil {
		t.Fatal(err)
	}
	if err := n.Agent.ServiceMaintenance("web-2", true, "upgrade"); err != nil {
		t.Fatal(err)
	}
	port := n.Port
	c.Stop("node-0")
	if err := os.WriteFile(filepath.Join(dir, "checks", "torn.json"), []byte(`{"Version":1,"Check":{"ID":`), 0o600); err != nil {
		t.Fatal(err)
	}
	// The check of a service whose file is gone (a deregistration cut
	// short) is dropped, not set aside.
	orphan := filepath.Join(dir, "checks", "orphan.json")
	if err := os.WriteFile(orphan, []byte(`{"Version":1,"Check":{"ID":"o","Name":"o","ServiceID":"gone","TTL":"1m"}}`), 0o600); err != nil {
		t.Fatal(err)
	}

	n = c.Start("node-0", port)
	checkIDs := func() map[string]string {
		got := map[string]string{}
		for _, ch := range n.Agent.AgentChecks() {
			got[ch.CheckID] = ch.Status
		}
		return got
	}
	got := checkIDs()
	if len(got) != 4 || got["hb"] != "critical" || got["disk"] != "critical" || got["_service_maintenance:web-2"] != "critical" || got["service:web-2"] == "" {
		t.Fatalf("restored checks %v", got)
	}
	testutil.WaitFor(t, converge, func() error {
		if st := checkIDs()["service:web-2"]; st != "passing" {
			return fmt.Errorf("restored HTTP check is %s", st)
		}
		return nil
	})
	matches, _ := filepath.Glob(filepath.Join(dir, "checks", "torn.json.corrupt-*"))
	if len(matches) != 1 {
		t.Fatalf("corrupt check file not set aside: %v", matches)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Fatalf("orphan check file: %v", err)
	}
	if matches, _ := filepath.Glob(orphan + ".corrupt-*"); len(matches) != 0 {
		t.Fatalf("orphan check file set aside: %v", matches)
	}
	// Deregistering removes the service's checks and maintenance from
	// disk too: nothing comes back after another restart.
	if err := n.Agent.DeregisterService("web-2"); err != nil {
		t.Fatal(err)
	}
	c.Stop("node-0")
	n = c.Start("node-0", port)
	if got := checkIDs(); len(got) != 2 || got["hb"] == "" || got["disk"] == "" {
		t.Fatalf("after deregistration and restart: %v", got)
	}
}

// Reloading the config file adds, changes and removes the services it
// defines and leaves API-registered ones alone; a bad file changes
// nothing.
func TestConfigReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shoal.json")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"services": [
		{"id": "a", "name": "web", "port": 1001},
		{"id": "b", "name": "web", "port": 1002, "check": {"ttl": "1m"}}
	]}`)
	f, err := agent.LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) {
		f.Apply(cfg)
		cfg.ConfigFile = path
	}
	n := c.Start("node-0", 0)
	if err := n.Agent.RegisterService(web("api-registered", 9000), nil); err != nil {
		t.Fatal(err)
	}
	ports := func() map[string]int {
		got := map[string]int{}
		for _, s := range n.Agent.LocalServices() {
			got[s.ID] = s.Port
		}
		return got
	}
	if got := ports(); len(got) != 3 || got["a"] != 1001 || got["b"] != 1002 {
		t.Fatalf("at start: %v", got)
	}
	write(`{"services": [
		{"id": "a", "name": "web", "port": 2001},
		{"id": "c", "name": "web", "port": 1003}
	]}`)
	if err := n.Agent.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := ports(); len(got) != 3 || got["a"] != 2001 || got["c"] != 1003 || got["api-registered"] != 9000 {
		t.Fatalf("after reload: %v", got)
	}
	if checks := n.Agent.AgentChecks(); len(checks) != 0 {
		t.Fatalf("b's check outlived b: %+v", checks)
	}
	write(`{"services": [{"id": "a", "name": "web", "port": 99999}]}`)
	if err := n.Agent.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "port") {
		t.Fatalf("bad file: %v", err)
	}
	if got := ports(); len(got) != 3 || got["a"] != 2001 {
		t.Fatalf("a bad reload changed services: %v", got)
	}
}

// Checks and maintenance added over the API to a service the config file
// defines survive a restart; a reload that cannot be applied whole
// changes nothing, not even the services it could have applied.
func TestConfigServicesKeepAPIStateAndFailedReloadChangesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(t.TempDir(), "shoal.json")
	if err := os.WriteFile(path, []byte(`{"services": [
		{"id": "a", "name": "web", "port": 1001},
		{"id": "b", "name": "web", "port": 1002, "check": {"id": "chk", "ttl": "1m"}}
	]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := agent.LoadConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) {
		f.Apply(cfg)
		cfg.ConfigFile = path
		withDataDir("node-0", dir)(cfg)
	}
	n := c.Start("node-0", 0)
	if err := n.Agent.RegisterCheck(api.AgentCheckRegistration{ID: "api-chk", Name: "api", ServiceID: "a",
		AgentServiceCheck: api.AgentServiceCheck{TTL: "1m"}}); err != nil {
		t.Fatal(err)
	}
	if err := n.Agent.ServiceMaintenance("a", true, "moving"); err != nil {
		t.Fatal(err)
	}
	port := n.Port
	c.Stop("node-0")
	n = c.Start("node-0", port)
	got := map[string]bool{}
	for _, ch := range n.Agent.AgentChecks() {
		got[ch.CheckID] = true
	}
	if !got["api-chk"] || !got["_service_maintenance:a"] || !got["chk"] {
		t.Fatalf("after restart: %v", got)
	}

	// chk becomes a node check over the API; a file that still gives it
	// to b cannot be applied, and a and b stay as they run.
	if err := n.Agent.RegisterCheck(api.AgentCheckRegistration{ID: "chk", Name: "node chk", AgentServiceCheck: api.AgentServiceCheck{TTL: "1m"}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"services": [
		{"id": "a", "name": "web", "port": 2001},
		{"id": "b", "name": "web", "port": 1002, "check": {"id": "chk", "ttl": "1m"}}
	]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.Agent.Reload(t.Context()); err == nil {
		t.Fatal("a reload that conflicts with a node check succeeded")
	}
	ports := map[string]int{}
	for _, s := range n.Agent.LocalServices() {
		ports[s.ID] = s.Port
	}
	if ports["a"] != 1001 || ports["b"] != 1002 {
		t.Fatalf("a failed reload changed services: %v", ports)
	}
}
