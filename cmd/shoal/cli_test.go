package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

func TestReorder(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"services", "web", "--tag", "v1", "--passing"}, []string{"services", "--tag", "v1", "--passing", "web"}},
		{[]string{"services", "web", "--tag=v1", "-json"}, []string{"services", "--tag=v1", "-json", "web"}},
		{[]string{"--http-addr", "x", "services", "web", "--json"}, []string{"--http-addr", "x", "services", "--json", "web"}},
		{[]string{"--http-addr=x", "join", "a", "b", "--http-addr", "y"}, []string{"--http-addr=x", "join", "--http-addr", "y", "a", "b"}},
		{[]string{"register", "--name", "web", "--port", "80"}, []string{"register", "--name", "web", "--port", "80"}},
		{[]string{"deregister", "--", "-odd"}, []string{"deregister", "--", "-odd"}},
		{[]string{"deregister", "x", "--", "-y", "--json"}, []string{"deregister", "--", "x", "-y", "--json"}},
		{[]string{"check", "pass", "x", "--note", "hi"}, []string{"check", "pass", "--note", "hi", "x"}},
		{[]string{"check", "pass", "pass", "--note=hi"}, []string{"check", "pass", "--note=hi", "pass"}},
		{[]string{"check", "nosuch", "x", "--note", "hi"}, []string{"check", "--note", "nosuch", "x", "hi"}},
		{[]string{"services", "web", "-h"}, []string{"services", "-h", "web"}},
		{[]string{"nosuch", "a", "--x"}, []string{"nosuch", "a", "--x"}},
		{[]string{"--help"}, []string{"--help"}},
		{nil, nil},
	}
	app := (&shell{}).app()
	for _, tt := range tests {
		if got := reorder(app, tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("reorder(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseMeta(t *testing.T) {
	tests := []struct {
		in      []string
		want    map[string]string
		wantErr string
	}{
		{in: nil, want: nil},
		{in: []string{"env=prod"}, want: map[string]string{"env": "prod"}},
		{in: []string{"env=prod", "url=http://x/?a=b", "empty="},
			want: map[string]string{"env": "prod", "url": "http://x/?a=b", "empty": ""}},
		{in: []string{"zones=a,b"}, want: map[string]string{"zones": "a,b"}},
		{in: []string{"env"}, wantErr: "want KEY=VALUE"},
		{in: []string{""}, wantErr: "want KEY=VALUE"},
		{in: []string{"=prod"}, wantErr: "empty key"},
		{in: []string{"env=a", "env=b"}, wantErr: `key "env" given twice`},
	}
	for _, tt := range tests {
		got, err := parseMeta(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseMeta(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseMeta(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestRegisterFlags(t *testing.T) {
	// Nothing listens on the address: every case must fail before a
	// request would be sent, or say the agent is unreachable.
	addr := testutil.FreeAddr(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"register", "--port", "80"}, "register: missing --name"},
		{[]string{"register", "--name", "web"}, "register: missing --port"},
		{[]string{"register", "--name", "web", "--port", "80", "--meta", "x"}, `register: --meta "x": want KEY=VALUE`},
		{[]string{"register", "--name", "web", "--port", "eighty"}, "register: invalid value"},
		{[]string{"register", "--name", "web", "--port", "80", "extra"}, `register: unexpected argument "extra"`},
		{[]string{"register", "--name", "web", "--port", "80"}, "register: agent unreachable at " + addr},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := run(append([]string{"--http-addr", addr}, tt.args...), &out, &errb)
		if code != 1 || out.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q; want 1 and nothing", tt.args, code, out.String())
		}
		oneErrorLine(t, errb.String())
		if !strings.Contains(errb.String(), tt.want) {
			t.Errorf("%q: stderr %q, want %q", tt.args, errb.String(), tt.want)
		}
	}
}

func TestRender(t *testing.T) {
	node := func(n, a string) *api.Node { return &api.Node{Node: n, Address: a} }
	tests := []struct {
		name   string
		render func(io.Writer) error
		want   string
	}{
		{
			name: "members",
			render: func(w io.Writer) error {
				return membersTable(w, []*api.AgentMember{
					{Name: "node-b", Addr: "10.0.0.2", Port: 7946, Status: api.MemberFailed, Tags: map[string]string{"dc": "dc1"}},
					{Name: "a", Addr: "::1", Port: 8000, Status: api.MemberAlive, Tags: map[string]string{"dc": "dc1"}},
					{Name: "c", Addr: "10.0.0.3", Port: 7946, Status: api.MemberLeft},
				})
			},
			want: "" +
				"Node    Address        Status  DC\n" +
				"a       [::1]:8000     alive   dc1\n" +
				"c       10.0.0.3:7946  left\n" +
				"node-b  10.0.0.2:7946  failed  dc1\n",
		},
		{
			name: "services",
			render: func(w io.Writer) error {
				return servicesTable(w, map[string][]string{"web": {"v1", "primary"}, "db": {}, "cache": nil})
			},
			want: "" +
				"Name   Tags\n" +
				"cache\n" +
				"db\n" +
				"web    v1,primary\n",
		},
		{
			name: "instances",
			render: func(w io.Writer) error {
				return instancesTable(w, []*api.ServiceEntry{
					{Node: node("n2", "10.0.0.2"), Service: &api.AgentService{ID: "web-2", Port: 8080, Tags: []string{"v2"}},
						Checks: []*api.HealthCheck{{Status: api.HealthPassing}, {Status: api.HealthCritical}}},
					{Node: node("n1", "10.0.0.1"), Service: &api.AgentService{ID: "web-b", Port: 8081, Address: "192.168.1.9"}},
					{Node: node("n1", "10.0.0.1"), Service: &api.AgentService{ID: "web-a", Port: 8080, Tags: []string{"v1", "eu"}},
						Checks: []*api.HealthCheck{{Status: api.HealthWarning}}},
				})
			},
			want: "" +
				"Node  Address      Port  ID     Tags   Status\n" +
				"n1    10.0.0.1     8080  web-a  v1,eu  warning\n" +
				"n1    192.168.1.9  8081  web-b         passing\n" +
				"n2    10.0.0.2     8080  web-2  v2     critical\n",
		},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := tt.render(&b); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if b.String() != tt.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tt.name, b.String(), tt.want)
		}
	}
}

func TestRenderEmpty(t *testing.T) {
	var b bytes.Buffer
	_ = membersTable(&b, nil)
	_ = servicesTable(&b, nil)
	_ = instancesTable(&b, nil)
	want := "Node  Address  Status  DC\nName  Tags\nNode  Address  Port  ID  Tags  Status\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
	b.Reset()
	_ = writeJSON(&b, orEmpty([]*api.ServiceEntry(nil)))
	_ = writeJSON(&b, orEmptyMap(map[string][]string(nil)))
	if b.String() != "[]\n{}\n" {
		t.Errorf("empty JSON = %q, want [] and {}", b.String())
	}
}

func TestKeygen(t *testing.T) {
	keys := map[string]bool{}
	for range 2 {
		var out, errb bytes.Buffer
		if code := run([]string{"keygen"}, &out, &errb); code != 0 || errb.Len() != 0 {
			t.Fatalf("exit %d, stderr %q", code, errb.String())
		}
		key := strings.TrimSuffix(out.String(), "\n")
		if strings.Contains(key, "\n") {
			t.Fatalf("output %q is more than one line", out.String())
		}
		k, err := agent.DecodeKey(key)
		if err != nil {
			t.Fatalf("DecodeKey(%q): %v", key, err)
		}
		if len(k) != 32 {
			t.Errorf("key is %d bytes, want 32", len(k))
		}
		keys[key] = true
	}
	if len(keys) != 2 {
		t.Error("two runs made the same key")
	}
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "shoal "+agent.Version+" ") {
		t.Errorf("version = %q", out.String())
	}
}

// TestBinaryErrors builds shoal and checks, on the real process, that
// every failure is exit status 1 and one line of stderr, with no help text.
// buildShoal builds the shoal binary into a temporary directory.
func buildShoal(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shoal")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestBinaryErrors(t *testing.T) {
	bin := buildShoal(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			env = append(env, kv)
		}
	}
	env = append(env, api.EnvHTTPAddr+"="+testutil.FreeAddr(t))

	fails := [][]string{
		{"--bogus"},              // bad global flag
		{"members", "--bogus"},   // bad command flag
		{"agent", "--port", "x"}, // bad flag value
		{"nosuch"},               // unknown command
		{"help", "nosuch"},       // unknown help topic
		{"deregister"},           // missing argument
		{"join"},                 // missing argument
		{"register", "--name", "web"},
		{"services", "a", "b"}, // one argument too many
		{"members"},            // agent unreachable
		{"services", "web", "--tag", "v1"},
		{"check", "pass"}, // missing argument
		{"check", "nosuch"},
		{"check", "pass", "x", "--bogus"},
		{"register", "--name", "w", "--port", "1", "--ttl", "1m", "--tcp-check", "h:1"},
		{"maint", "--enable", "--disable"},
		{"checks"}, // agent unreachable
		{"reload"},
		{"agent", "--flap-threshold", "0"},
	}
	for _, args := range fails {
		var out, errb bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &errb
		err := cmd.Run()
		code := cmd.ProcessState.ExitCode()
		if code != 1 {
			t.Errorf("shoal %q: exit %d (%v), want 1", args, code, err)
		}
		if out.Len() != 0 {
			t.Errorf("shoal %q: stdout %q, want nothing", args, out.String())
		}
		oneErrorLine(t, errb.String())
	}

	for _, args := range [][]string{{}, {"--help"}, {"services", "--help"}, {"help", "agent"}, {"version"},
		{"check"}, {"check", "pass", "--help"}} {
		var out, errb bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &errb
		if err := cmd.Run(); err != nil || out.Len() == 0 || errb.Len() != 0 {
			t.Errorf("shoal %q: %v, stdout %d bytes, stderr %q; want success with output", args, err, out.Len(), errb.String())
		}
	}
}
