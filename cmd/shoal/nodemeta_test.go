package main

import (
	"bytes"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAgentNodeMetaFlag(t *testing.T) {
	clearEnv(t)
	file := filepath.Join(t.TempDir(), "shoal.json")
	if err := os.WriteFile(file, []byte(`{"node_meta": {"env": "staging", "az": "a"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  string
		want map[string]string
		err  string
	}{
		{args: []string{"agent", "--node-meta", "env:prod", "--node-meta", "url:http://x:1,y"},
			want: map[string]string{"env": "prod", "url": "http://x:1,y"}},
		{args: []string{"agent", "--config", file, "--node-meta", "env:prod"},
			want: map[string]string{"env": "prod", "az": "a"}},
		{args: []string{"agent", "--config", file}, want: map[string]string{"env": "staging", "az": "a"}},
		{args: []string{"agent"}, env: "rack:r1", want: map[string]string{"rack": "r1"}},
		{args: []string{"agent", "--node-meta", "env=prod"}, err: `agent: --node-meta "env=prod": want KEY:VALUE`},
		{args: []string{"agent", "--node-meta", ":prod"}, err: `--node-meta ":prod": want KEY:VALUE`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("SHOAL_NODE_META", tc.env)
			}
			f := newFakeShell()
			code := f.run(tc.args)
			if tc.err != "" {
				if code != 1 || !strings.Contains(f.err.String(), tc.err) {
					t.Fatalf("exit %d, stderr %q; want 1 and %q", code, f.err.String(), tc.err)
				}
				oneErrorLine(t, f.err.String())
				return
			}
			if code != 0 || !maps.Equal(f.cfg.NodeMeta, tc.want) {
				t.Fatalf("exit %d, NodeMeta %v (stderr %q); want %v", code, f.cfg.NodeMeta, f.err.String(), tc.want)
			}
		})
	}
}

// `shoal services NAME --filter --node-meta` sends Consul's parameters.
func TestServicesFilterFlags(t *testing.T) {
	var got url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Query()
		w.Header().Set("X-Consul-Index", "1")
		w.Write([]byte("[]"))
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	var out, errb bytes.Buffer
	code := run([]string{"--http-addr", addr, "services", "web", "--filter", `Service.Meta.version == "2"`,
		"--node-meta", "env:prod", "--node-meta", "rack:r1", "--tag", "v2"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := url.Values{"filter": {`Service.Meta.version == "2"`}, "node-meta": {"env:prod", "rack:r1"}, "tag": {"v2"}}
	if got.Encode() != want.Encode() {
		t.Errorf("query %v, want %v", got, want)
	}
	for _, args := range [][]string{
		{"services", "--filter", "x == y"},
		{"services", "web", "--node-meta", "env"},
		{"services", "web", "--node-meta", "env:a", "--node-meta", "env:b"},
	} {
		out.Reset()
		errb.Reset()
		if code := run(append([]string{"--http-addr", addr}, args...), &out, &errb); code != 1 {
			t.Errorf("%q: exit %d", args, code)
		}
		oneErrorLine(t, errb.String())
	}
}
