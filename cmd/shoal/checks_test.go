package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/health"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// cell returns the cell in column col of the row of a writeTable table
// that has key as one of its cells.
func cell(t *testing.T, table, key, col string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	header := lines[0]
	start := strings.Index(header, col)
	if start < 0 {
		t.Fatalf("no column %q in:\n%s", col, table)
	}
	end := -1 // the last column
	if rest := strings.TrimLeft(header[start+len(col):], " "); rest != "" {
		end = len(header) - len(rest)
	}
	for _, l := range lines[1:] {
		if !slices.Contains(strings.Fields(l), key) {
			continue
		}
		if len(l) <= start {
			return ""
		}
		if end < 0 || end > len(l) {
			return strings.TrimSpace(l[start:])
		}
		return strings.TrimSpace(l[start:end])
	}
	t.Fatalf("no row %q in:\n%s", key, table)
	return ""
}

// TestCheckFlagErrors runs command lines that are wrong in their flags:
// each must fail before sending anything, with one line naming the flag.
func TestCheckFlagErrors(t *testing.T) {
	clearEnv(t)
	addr := testutil.FreeAddr(t) // nothing listens: a request would say so
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"register", "--name", "w", "--port", "1", "--ttl", "1m", "--http-check", "http://x/"},
			"register: --http-check and --ttl cannot be combined"},
		{[]string{"register", "--name", "w", "--port", "1", "--tcp-check", "h:1", "--grpc-check", "h:2"},
			"register: --tcp-check and --grpc-check cannot be combined"},
		{[]string{"register", "--name", "w", "--port", "1", "--interval", "5s"}, "register: --interval needs a check"},
		{[]string{"register", "--name", "w", "--port", "1", "--deregister-critical-after", "1m"},
			"register: --deregister-critical-after needs a check"},
		{[]string{"register", "--name", "w", "--port", "1", "--ttl", "1m", "--interval", "5s"},
			"register: --interval does not apply to --ttl"},
		{[]string{"register", "--name", "w", "--port", "1", "--ttl", "1m", "--timeout", "5s"},
			"register: --timeout does not apply to --ttl"},
		{[]string{"register", "--name", "w", "--port", "1", "--ttl", "0s"}, "register: --ttl must be positive"},
		{[]string{"register", "--name", "w", "--port", "1", "--http-check", "http://x/", "--interval", "0s"},
			"register: --interval must be positive"},
		{[]string{"register", "--name", "w", "--port", "1", "--http-check", ""}, "register: --http-check: empty"},
		{[]string{"register", "--name", "w", "--port", "1", "--ttl", "soon"}, "register: invalid value \"soon\" for flag -ttl"},
		{[]string{"check", "register", "--ttl", "1m"}, "check register: missing --name"},
		{[]string{"check", "register", "--name", "x"}, "check register: missing a check: --http, --tcp, --grpc or --ttl"},
		{[]string{"check", "register", "--name", "x", "--tcp", "a:1", "--ttl", "1m"}, "check register: --tcp and --ttl cannot be combined"},
		{[]string{"check", "register", "--name", "x", "--http-check", "http://x/"}, "check register: flag provided but not defined: -http-check"},
		{[]string{"check", "register", "--name", "x", "--ttl", "1m", "extra"}, `check register: unexpected argument "extra"`},
		{[]string{"check", "pass"}, "check pass: missing CHECK_ID"},
		{[]string{"check", "warn", "a", "b"}, `check warn: unexpected argument "b"`},
		{[]string{"check", "fail", "x", "--bogus"}, "check fail: flag provided but not defined: -bogus"},
		{[]string{"check", "update", "x"}, "check update: missing --status"},
		{[]string{"check", "update", "x", "--status", "ok"}, `check update: --status "ok" is not one of passing, warning, critical`},
		{[]string{"check", "deregister"}, "check deregister: missing CHECK_ID"},
		{[]string{"check", "nosuch", "x"}, `check: unknown subcommand "nosuch"`},
		{[]string{"checks", "x"}, `checks: unexpected argument "x"`},
		{[]string{"maint", "--enable", "--disable"}, "maint: --enable and --disable cannot be combined"},
		{[]string{"maint", "--service", "web"}, "maint: --service needs --enable or --disable"},
		{[]string{"maint", "--reason", "x"}, "maint: --reason needs --enable or --disable"},
		{[]string{"maint", "--disable", "--reason", "x"}, "maint: --reason goes with --enable"},
		{[]string{"maint", "--enable", "--service", ""}, "maint: --service: empty service ID"},
		{[]string{"reload", "now"}, `reload: unexpected argument "now"`},
		{[]string{"services", "web", "--warning"}, "services: --warning goes with --passing"},
		{[]string{"services", "--passing", "--warning"}, "services: --tag, --node-meta, --filter, --passing and --warning need a service NAME"},
		{[]string{"agent", "--flap-threshold", "0"}, "agent: --flap-threshold must be at least 1, got 0"},
		{[]string{"agent", "--flap-window", "0s"}, "agent: --flap-window must be positive"},
		{[]string{"agent", "--flap-hold-down", "-1s"}, "agent: --flap-hold-down must be positive"},
		{[]string{"agent", "--no-flap-damping", "--flap-threshold", "3"}, "agent: --no-flap-damping cannot be combined with --flap-threshold"},
	}
	for _, tt := range tests {
		if line := failShoal(t, append([]string{"--http-addr", addr}, tt.args...)...); !strings.Contains(line, tt.want) {
			t.Errorf("shoal %q: %q, want %q", tt.args, line, tt.want)
		}
	}
}

// TestAgentDampingFlags maps the flap damping flags onto agent.Config.
func TestAgentDampingFlags(t *testing.T) {
	def := agent.DefaultConfig().Damping
	tests := []struct {
		args []string
		env  map[string]string
		want health.Damping
	}{
		{args: []string{"agent"}, want: def},
		{args: []string{"agent", "--flap-threshold", "3", "--flap-window", "30s", "--flap-hold-down", "2m"},
			want: health.Damping{Threshold: 3, Window: 30 * time.Second, HoldDown: 2 * time.Minute}},
		{args: []string{"agent", "--flap-window", "5m"},
			want: health.Damping{Threshold: def.Threshold, Window: 5 * time.Minute, HoldDown: def.HoldDown}},
		{args: []string{"agent", "--no-flap-damping"}, want: health.Damping{Disabled: true, Threshold: def.Threshold, Window: def.Window, HoldDown: def.HoldDown}},
		{args: []string{"agent", "--no-flap-damping=false"}, want: def},
		{args: []string{"agent"}, env: map[string]string{"SHOAL_FLAP_THRESHOLD": "9", "SHOAL_FLAP_HOLD_DOWN": "10s"},
			want: health.Damping{Threshold: 9, Window: def.Window, HoldDown: 10 * time.Second}},
	}
	for _, tt := range tests {
		clearEnv(t)
		for k, v := range tt.env {
			t.Setenv(k, v)
		}
		f := newFakeShell()
		if code := f.run(tt.args); code != 0 || !f.started {
			t.Fatalf("%q: exit %d, started %v: %s", tt.args, code, f.started, f.err.String())
		}
		if f.cfg.Damping != tt.want {
			t.Errorf("%q %v: Damping = %+v, want %+v", tt.args, tt.env, f.cfg.Damping, tt.want)
		}
	}
}

// TestRegisterCheckRequest checks the registration `shoal register`
// sends for each kind of check, against a server that records it.
func TestRegisterCheckRequest(t *testing.T) {
	clearEnv(t)
	bodies := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- r.Method + " " + r.URL.Path + " " + strings.TrimSpace(string(b))
	}))
	t.Cleanup(srv.Close)
	base := []string{"register", "--http-addr", srv.URL, "--name", "web", "--port", "80"}
	tests := []struct {
		flags []string
		check string // the registration's "Check", JSON
	}{
		{[]string{"--ttl", "1m"}, `{"TTL":"1m0s"}`},
		{[]string{"--ttl", "90s", "--deregister-critical-after", "1h"}, `{"TTL":"1m30s","DeregisterCriticalServiceAfter":"1h0m0s"}`},
		{[]string{"--http-check", "http://127.0.0.1:80/health"}, `{"Interval":"10s","HTTP":"http://127.0.0.1:80/health"}`},
		{[]string{"--tcp-check", "127.0.0.1:80", "--interval", "2s", "--timeout", "500ms"},
			`{"Interval":"2s","Timeout":"500ms","TCP":"127.0.0.1:80"}`},
		{[]string{"--grpc-check", "127.0.0.1:80/web"}, `{"Interval":"10s","GRPC":"127.0.0.1:80/web"}`},
	}
	for _, tt := range tests {
		mustShoal(t, append(base, tt.flags...)...)
		want := `PUT /v1/agent/service/register {"Name":"web","Port":80,"Check":` + tt.check + `}`
		if got := <-bodies; got != want {
			t.Errorf("%q sent\n%s\nwant\n%s", tt.flags, got, want)
		}
	}

	mustShoal(t, "check", "register", "--http-addr", srv.URL, "--name", "disk", "--id", "disk-1",
		"--service-id", "web", "--notes", "df", "--tcp", "127.0.0.1:22")
	want := `PUT /v1/agent/check/register {"ID":"disk-1","Name":"disk","Notes":"df","ServiceID":"web","Interval":"10s","TCP":"127.0.0.1:22"}`
	if got := <-bodies; got != want {
		t.Errorf("check register sent\n%s\nwant\n%s", got, want)
	}
}

// TestChecksEndToEnd drives the check, checks, maint and services
// commands against a real agent in this process.
func TestChecksEndToEnd(t *testing.T) {
	clearEnv(t)
	cluster := testutil.NewEmptyCluster(t)
	addr := cluster.Start("checks", 0).Agent.HTTPAddr()
	with := func(args ...string) []string { return append([]string{"--http-addr", addr}, args...) }
	// status waits until `shoal services web` shows web-1 as want.
	status := func(want string) {
		t.Helper()
		testutil.WaitFor(t, 10*time.Second, func() error {
			if got := cell(t, mustShoal(t, with("services", "web")...), "web-1", "Status"); got != want {
				return fmt.Errorf("web-1 is %q, want %q", got, want)
			}
			return nil
		})
	}

	mustShoal(t, with("register", "--name", "web", "--port", "8080", "--id", "web-1", "--ttl", "1m")...)
	status(api.HealthCritical) // a TTL check starts critical, as in Consul

	if out := mustShoal(t, with("check", "pass", "service:web-1", "--note", "all good")...); out != "Check \"service:web-1\" is passing.\n" {
		t.Errorf("check pass said %q", out)
	}
	status(api.HealthPassing)
	table := mustShoal(t, with("checks")...)
	if got := squeeze(strings.Split(table, "\n")[1]); got != "service:web-1 Service 'web' check web-1 ttl passing all good" {
		t.Errorf("checks table:\n%s", table)
	}

	mustShoal(t, with("check", "warn", "service:web-1")...)
	status(api.HealthWarning)
	if got := instances(t, addr, "web", "--passing"); len(got) != 0 {
		t.Errorf("--passing kept a warning instance: %s", dump(got))
	}
	if got := instances(t, addr, "web", "--passing", "--warning"); len(got) != 1 {
		t.Errorf("--passing --warning: %s, want web-1", dump(got))
	}

	mustShoal(t, with("check", "fail", "service:web-1", "--note", "down\nsecond line")...)
	status(api.HealthCritical)
	if got := instances(t, addr, "web", "--passing", "--warning"); len(got) != 0 {
		t.Errorf("--passing --warning kept a critical instance: %s", dump(got))
	}
	if got := cell(t, mustShoal(t, with("checks")...), "service:web-1", "Output"); got != "down" {
		t.Errorf("output head = %q, want the first line", got)
	}
	mustShoal(t, with("check", "update", "service:web-1", "--status", "passing", "--output", "back")...)
	status(api.HealthPassing)

	// A node check and a service check of another kind.
	if out := mustShoal(t, with("check", "register", "--name", "disk", "--ttl", "30s", "--notes", "df -h")...); out != "Registered check \"disk\".\n" {
		t.Errorf("check register said %q", out)
	}
	mustShoal(t, with("check", "register", "--name", "self", "--id", "web-self", "--service-id", "web-1",
		"--http", "http://"+addr+"/v1/agent/self", "--interval", "1s")...)
	testutil.WaitFor(t, 20*time.Second, func() error {
		checks := decode[map[string]*api.AgentCheck](t, mustShoal(t, with("checks", "--json")...))
		if c := checks["web-self"]; c == nil || c.Status != api.HealthPassing || c.Type != "http" || c.ServiceID != "web-1" {
			return fmt.Errorf("web-self = %s, want a passing HTTP check of web-1", dump(c))
		}
		if c := checks["disk"]; c == nil || c.Type != "ttl" || c.ServiceID != "" || c.Notes != "df -h" {
			return fmt.Errorf("disk = %s, want a node TTL check", dump(c))
		}
		return nil
	})
	if line := failShoal(t, with("check", "pass", "web-self")...); !strings.Contains(line, "400") || !strings.Contains(line, "not a TTL check") {
		t.Errorf("pass of an HTTP check: %q", line)
	}
	if line := failShoal(t, with("check", "register", "--name", "x", "--service-id", "nosuch", "--ttl", "1m")...); !strings.Contains(line, "ServiceID") {
		t.Errorf("check of an unknown service: %q, want it to name ServiceID", line)
	}
	if out := mustShoal(t, with("check", "deregister", "disk")...); out != "Deregistered check \"disk\".\n" {
		t.Errorf("check deregister said %q", out)
	}
	if line := failShoal(t, with("check", "deregister", "disk")...); !strings.Contains(line, "404") {
		t.Errorf("deregister twice: %q, want a 404", line)
	}
	if line := failShoal(t, with("check", "pass", "nosuch")...); !strings.Contains(line, "check pass nosuch: agent answered 404") {
		t.Errorf("pass of an unknown check: %q", line)
	}

	// Maintenance: nothing, then the node, then a service too.
	if out := mustShoal(t, with("maint")...); out != "" {
		t.Errorf("maint with nothing in maintenance said %q", out)
	}
	if out := mustShoal(t, with("maint", "--enable", "--reason", "kernel upgrade")...); out != "Node entered maintenance mode\n" {
		t.Errorf("maint --enable said %q", out)
	}
	status(api.HealthCritical)
	if out := mustShoal(t, with("maint", "--enable", "--service", "web-1", "--reason", "x")...); out != "Service entered maintenance mode: web-1\n" {
		t.Errorf("maint --enable --service said %q", out)
	}
	if got, want := mustShoal(t, with("maint")...), "Node:\n  Name:   checks\n  Reason: kernel upgrade\n\n"+
		"Service:\n  ID:     web-1\n  Reason: x\n\n"; got != want {
		t.Errorf("maint listed\n%s\nwant\n%s", got, want)
	}
	if got := cell(t, mustShoal(t, with("checks")...), api.NodeMaint, "Status"); got != api.HealthCritical {
		t.Errorf("node maintenance check is %q", got)
	}
	if line := failShoal(t, with("maint", "--enable", "--service", "nosuch")...); !strings.Contains(line, "404") {
		t.Errorf("maintenance of an unknown service: %q", line)
	}
	if out := mustShoal(t, with("maint", "--disable")...); out != "Node left maintenance mode\n" {
		t.Errorf("maint --disable said %q", out)
	}
	if out := mustShoal(t, with("maint", "--disable", "--service", "web-1")...); out != "Service left maintenance mode: web-1\n" {
		t.Errorf("maint --disable --service said %q", out)
	}
	if out := mustShoal(t, with("maint")...); out != "" {
		t.Errorf("maint after --disable listed %q", out)
	}
	status(api.HealthPassing)
}

// TestDampedStatus shows a flapping check as damped in `shoal services`
// and `shoal checks`.
func TestDampedStatus(t *testing.T) {
	clearEnv(t)
	cluster := testutil.NewEmptyCluster(t)
	cluster.Configure = func(cfg *agent.Config) {
		// More than one change within the window damps; the hold-down
		// outlasts the test.
		cfg.Damping = health.Damping{Threshold: 1, Window: time.Hour, HoldDown: time.Hour}
	}
	addr := cluster.Start("flappy", 0).Agent.HTTPAddr()
	with := func(args ...string) []string { return append([]string{"--http-addr", addr}, args...) }
	mustShoal(t, with("register", "--name", "web", "--port", "80", "--id", "web-1", "--ttl", "1m")...)
	mustShoal(t, with("check", "pass", "service:web-1")...)
	mustShoal(t, with("check", "fail", "service:web-1")...)
	mustShoal(t, with("check", "pass", "service:web-1")...)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if got := cell(t, mustShoal(t, with("services", "web")...), "web-1", "Status"); got != "critical (damped)" {
			return fmt.Errorf("services: web-1 is %q, want critical (damped)", got)
		}
		if got := cell(t, mustShoal(t, with("checks")...), "service:web-1", "Status"); got != "critical (damped)" {
			return fmt.Errorf("checks: service:web-1 is %q, want critical (damped)", got)
		}
		return nil
	})
}

// TestReloadCommand runs `shoal reload` against an agent started with a
// config file that was rewritten since.
func TestReloadCommand(t *testing.T) {
	clearEnv(t)
	path := configFile(t, `{"services": [{"name": "db", "port": 5432}]}`)
	cluster := testutil.NewEmptyCluster(t)
	cluster.Configure = func(cfg *agent.Config) {
		// What `shoal agent --config` does.
		f, err := agent.LoadConfigFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Apply(cfg)
		cfg.ConfigFile = path
	}
	addr := cluster.Start("reload", 0).Agent.HTTPAddr()
	services := func() map[string][]string {
		return decode[map[string][]string](t, mustShoal(t, "services", "--json", "--http-addr", addr))
	}
	if s := services(); s["db"] == nil || s["cache"] != nil {
		t.Fatalf("services at start: %v", s)
	}

	if err := os.WriteFile(path, []byte(`{"services": [{"name": "db", "port": 5432}, {"name": "cache", "port": 6379}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustShoal(t, "reload", "--http-addr", addr); out != "Configuration reloaded.\n" {
		t.Errorf("reload said %q", out)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if s := services(); s["db"] == nil || s["cache"] == nil {
			return fmt.Errorf("services after reload: %v, want db and cache", s)
		}
		return nil
	})

	// A file that does not load: one line naming it, nothing changes.
	if err := os.WriteFile(path, []byte(`{"services": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	if line := failShoal(t, "reload", "--http-addr", addr); !strings.Contains(line, "shoal.json") {
		t.Errorf("reload of a broken file: %q, want it to name the file", line)
	}
	if s := services(); s["db"] == nil || s["cache"] == nil {
		t.Errorf("services after a failed reload: %v, want db and cache still", s)
	}

	// An agent without a config file has nothing to reload.
	cluster.Configure = nil
	plain := cluster.Start("plain", 0).Agent.HTTPAddr()
	if line := failShoal(t, "reload", "--http-addr", plain); !strings.Contains(line, "--config") {
		t.Errorf("reload without a config file: %q", line)
	}
}

// TestAgentSIGHUP sends the agent command's reload signal in this
// process: a good file is applied, a broken one is logged and the agent
// runs on. The test talks to the agent through package api, not run
// (runs must not overlap).
func TestAgentSIGHUP(t *testing.T) {
	clearEnv(t)
	path := configFile(t, `{"services": [{"name": "db", "port": 5432}]}`)
	addr := testutil.FreeAddr(t)
	a := startAgentCommand(t, "--dev", "--node", "hup", "--port", "0", "--http-addr", addr, "--config", path)
	c := &api.Client{Addr: addr}
	ctx := context.Background()
	waitServices := func(want ...string) {
		t.Helper()
		testutil.WaitFor(t, 30*time.Second, func() error {
			a.running(t)
			got, err := c.AgentServices(ctx)
			if err != nil {
				return err
			}
			if ids := slices.Sorted(maps.Keys(got)); !slices.Equal(ids, want) {
				return fmt.Errorf("services %q, want %q", ids, want)
			}
			return nil
		})
	}
	waitServices("db")

	if err := os.WriteFile(path, []byte(`{"services": [{"name": "queue", "port": 5672}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	a.hangups <- syscall.SIGHUP
	waitServices("queue")

	if err := os.WriteFile(path, []byte(`{"services": [{"name": "db", "port": 70000}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	a.hangups <- syscall.SIGHUP
	testutil.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(a.logs.String(), "reload failed") {
			return fmt.Errorf("no failed reload logged yet")
		}
		return nil
	})
	waitServices("queue")

	a.sigs <- os.Interrupt
	a.wait(t)
}

// TestAgentProcessSIGHUP sends `kill -HUP` to a real `shoal agent`
// process started with --config: it reloads the file, survives a broken
// one, and still leaves gracefully on SIGTERM.
func TestAgentProcessSIGHUP(t *testing.T) {
	bin := buildShoal(t)
	path := configFile(t, `{"services": [{"name": "db", "port": 5432}]}`)
	addr := testutil.FreeAddr(t)
	cmd, logs := startAgentProcess(t, bin, addr, "--node", "hup", "--config", path)
	c := &api.Client{Addr: addr}
	has := func(name string) error {
		s, _, err := c.CatalogServices(context.Background(), nil)
		if err != nil {
			return err
		}
		if s[name] == nil {
			return fmt.Errorf("no %s in %v", name, s)
		}
		return nil
	}
	testutil.WaitFor(t, 10*time.Second, func() error { return has("db") })

	if err := os.WriteFile(path, []byte(`{"services": [{"name": "db", "port": 5432}, {"name": "cache", "port": 6379}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() error { return has("cache") })

	if err := os.WriteFile(path, []byte(`{broken`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(logs.String(), "reload failed") {
			return fmt.Errorf("no failed reload logged yet")
		}
		return nil
	})
	if err := has("cache"); err != nil {
		t.Errorf("after a broken file: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("shoal agent: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("shoal agent did not stop on SIGTERM:\n%s", logs.String())
	}
}

func TestRenderChecks(t *testing.T) {
	var b bytes.Buffer
	err := checksTable(&b, map[string]*api.AgentCheck{
		"service:web-1": {Name: "Service 'web' check", ServiceID: "web-1", Type: "ttl", Status: api.HealthCritical,
			Damped: true, Output: "\n  TTL expired  \nsecond line"},
		"disk":        {Name: "disk", Type: "http", Status: api.HealthPassing, Output: strings.Repeat("é", 40)},
		api.NodeMaint: {Name: "Node Maintenance Mode", Type: "maintenance", Status: api.HealthCritical},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"ID                 Name                   Service  Type         Status             Output\n" +
		"_node_maintenance  Node Maintenance Mode           maintenance  critical\n" +
		"disk               disk                            http         passing            " + strings.Repeat("é", 30) + "...\n" +
		"service:web-1      Service 'web' check    web-1    ttl          critical (damped)  TTL expired\n"
	if b.String() != want {
		t.Errorf("checks table:\n%s\nwant\n%s", b.String(), want)
	}

	b.Reset()
	err = instancesTable(&b, []*api.ServiceEntry{{
		Node:    &api.Node{Node: "n1", Address: "10.0.0.1"},
		Service: &api.AgentService{ID: "web-1", Port: 80},
		Checks:  []*api.HealthCheck{{Status: api.HealthPassing}, {Status: api.HealthWarning, Damped: true}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := squeeze(b.String()); got != "Node Address Port ID Tags Status\nn1 10.0.0.1 80 web-1 warning (damped)\n" {
		t.Errorf("instances table:\n%s", b.String())
	}

	b.Reset()
	if err := maintenanceList(&b, map[string]*api.AgentCheck{"disk": {Notes: "x"}}); err != nil || b.Len() != 0 {
		t.Errorf("nothing in maintenance: %q, %v", b.String(), err)
	}
}
