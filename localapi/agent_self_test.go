package localapi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-sd/shoal/acl"
)

// agent/self carries the sections Consul's tools read beside Config and
// Member: `consul info` fails without Stats.
func TestAgentSelfSections(t *testing.T) {
	_, h := newTestServer(t)
	r := do(t, h, "GET", "/v1/agent/self", "")
	mustStatus(t, r, 200)
	checkReadHeaders(t, r)
	var got map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Config", "Member", "Meta", "Coord", "DebugConfig", "Stats", "xDS"} {
		if got[k] == nil {
			t.Errorf("no %s in %s", k, r.body)
		}
	}
	var stats map[string]map[string]string
	if err := json.Unmarshal(got["Stats"], &stats); err != nil {
		t.Fatal(err)
	}
	if stats["agent"]["services"] != "0" || stats["runtime"]["goroutines"] == "" || stats["build"]["version"] != "0.1.0" {
		t.Errorf("stats %v", stats)
	}
	if string(got["xDS"]) != `{"SupportedProxies":{},"Port":-1,"Ports":{"Plaintext":-1,"TLS":-1}}` {
		t.Errorf("xDS %s", got["xDS"])
	}
	var dbg map[string]any
	if err := json.Unmarshal(got["DebugConfig"], &dbg); err != nil || dbg["NodeName"] != localNode || dbg["ServerMode"] != false {
		t.Errorf("DebugConfig %s", got["DebugConfig"])
	}
}

func TestAgentVersion(t *testing.T) {
	_, h := newTestServer(t)
	r := do(t, h, "GET", "/v1/agent/version", "")
	mustStatus(t, r, 200)
	var got map[string]string
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || got["HumanVersion"] != "0.1.0" {
		t.Fatalf("%s %v", r.body, err)
	}
}

// agent/host reads /proc; what it cannot read it says in Errors.
func TestAgentHost(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("uptime", "3600.52 7000.01\n")
	write("sys/kernel/osrelease", "6.1.0-test\n")
	write("cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\ncpu MHz\t\t: 2400.000\ncpu cores\t: 2\n\nprocessor\t: 1\nmodel name\t: Test CPU\n")
	h := readHost(dir)
	if h.Host["kernelVersion"] != "6.1.0-test" || h.Host["uptime"] != uint64(3600) || len(h.CPU) != 2 ||
		h.CPU[0]["modelName"] != "Test CPU" || h.CPU[0]["mhz"] != 2400.0 || h.CPU[0]["cores"] != 2 || h.CPU[1]["cpu"] != 1 {
		t.Errorf("host %+v cpu %+v", h.Host, h.CPU)
	}
	if h.Memory != nil || len(h.Errors) != 1 || !strings.HasPrefix(h.Errors[0], "meminfo: ") {
		t.Errorf("without meminfo: %v %v", h.Memory, h.Errors)
	}
	write("meminfo", "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    400 kB\n")
	h = readHost(dir)
	if h.Memory["total"] != uint64(1024000) || h.Memory["used"] != uint64(600*1024) || h.Memory["usedPercent"] != 60.0 || len(h.Errors) != 0 {
		t.Errorf("memory %v errors %v", h.Memory, h.Errors)
	}

	_, srv := newTestServer(t)
	r := do(t, srv, "GET", "/v1/agent/host", "")
	mustStatus(t, r, 200)
	var got map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || got["Host"] == nil || got["CPU"] == nil || got["CollectionTime"] == nil {
		t.Fatalf("%s %v", r.body, err)
	}
}

// The /proc parsers take any bytes without panicking and never report
// more memory used than there is.
func FuzzHostParsers(f *testing.F) {
	f.Add([]byte("MemTotal: 1000 kB\nMemAvailable: 2000 kB\n"))
	f.Add([]byte("processor : 0\nmodel name : x\ncpu MHz : nan\n"))
	f.Add([]byte("12.5 3.0\n"))
	f.Add([]byte("-1e300"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseCPUInfo(b)
		_, _ = parseUptime(b)
		if m, err := parseMeminfo(b); err == nil {
			if m["used"].(uint64) > m["total"].(uint64) {
				t.Fatalf("used > total: %v", m)
			}
		}
	})
}

// Consul's routes that need its servers or Connect are refused with 501
// and the reason, not the 404 of a path that names nothing: Consul's
// clients read some 404s (a KV key) as an empty answer.
func TestRefusedRoutes(t *testing.T) {
	_, h := newTestServer(t)
	for _, tt := range []struct{ method, path, want string }{
		{"GET", "/v1/kv/config/app", "/v1/kv: not supported: Shoal does not serve Consul's KV store"},
		{"PUT", "/v1/kv/x", "/v1/kv: not supported"},
		{"PUT", "/v1/txn", "/v1/txn: not supported"},
		{"PUT", "/v1/session/create", "/v1/session: not supported"},
		{"GET", "/v1/session/list", "/v1/session: not supported"},
		{"GET", "/v1/query", "/v1/query: not supported: Shoal does not serve prepared queries"},
		{"GET", "/v1/query/abc/execute", "/v1/query: not supported"},
		{"GET", "/v1/acl/token/self", "/v1/acl: not supported"},
		{"GET", "/v1/agent/connect/ca/roots", "/v1/agent/connect: not supported: Shoal does not serve Connect"},
		{"GET", "/v1/connect/ca/roots", "/v1/connect: not supported"},
		{"PUT", "/v1/catalog/register", "/v1/catalog/register: not supported"},
		{"GET", "/v1/event/list", "/v1/event: not supported"},
		{"GET", "/v1/operator/raft/configuration", "/v1/operator/raft: not supported"},
		{"GET", "/v1/snapshot", "/v1/snapshot: not supported"},
	} {
		r := do(t, h, tt.method, tt.path, "")
		if r.code != 501 || !strings.HasPrefix(r.body, tt.want) || strings.Count(r.body, "\n") != 1 {
			t.Errorf("%s %s: %d %q", tt.method, tt.path, r.code, r.body)
		}
	}
	for _, p := range []string{"/v1/kvx", "/v1/nope", "/kv/x", "/v1/queryx"} {
		if r := do(t, h, "GET", p, ""); r.code != 404 {
			t.Errorf("%s: %d %q", p, r.code, r.body)
		}
	}
}

// agent/host needs operator:read, as in Consul; agent/version nothing.
func TestAgentHostNeedsOperatorRead(t *testing.T) {
	res, err := acl.NewResolver(acl.Config{
		Enabled: true, DefaultPolicy: "deny",
		Policies: []acl.PolicyConfig{{Name: "op", Rules: json.RawMessage(`{"operator": "read"}`)}},
		Tokens:   []acl.TokenConfig{{SecretID: "op", Policies: []string{"op"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Backend: newTestBackend(), ACL: func() *acl.Resolver { return res }})
	if r := do(t, h, "GET", "/v1/agent/host", ""); r.code != 403 || !strings.Contains(r.body, "operator:read") {
		t.Errorf("without a token: %d %q", r.code, r.body)
	}
	mustStatus(t, do(t, h, "GET", "/v1/agent/host", "", "X-Consul-Token: op"), 200)
	mustStatus(t, do(t, h, "GET", "/v1/agent/version", ""), 200)
}
