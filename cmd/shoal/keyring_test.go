package main

import (
	"strings"
	"testing"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

const (
	oldKey     = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
	rotatedKey = "H2HJBKPqRXvxdb9wT8MiWWs6XiPC0ZrF5D0oq9pM6mE="
)

// `shoal keyring` rotates the key of a running cluster in its three steps
// and lists what every member holds; its mistakes are one line.
func TestKeyringCommand(t *testing.T) {
	clearEnv(t)
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) { cfg.EncryptKey = oldKey }
	c.Start("node-0", 0)
	c.Start("node-1", 0)
	c.JoinAll()
	addr := c.Node("node-0").Agent.HTTPAddr()
	with := func(args ...string) []string { return append([]string{"keyring", "--http-addr", addr}, args...) }

	if out := mustShoal(t, with("-install", rotatedKey)...); !strings.HasSuffix(out, "Done: every member took it.\n") {
		t.Fatalf("install said %q", out)
	}
	mustShoal(t, with("-use", rotatedKey)...)
	table := mustShoal(t, with("-list")...)
	want := "dc1 (LAN), 2 nodes:\n" +
		"  Key                                           Nodes  Primary\n" +
		"  " + rotatedKey + "  [2/2]  primary on 2\n" +
		"  " + oldKey + "  [2/2]\n"
	if table != want {
		t.Fatalf("list:\n%s\nwant:\n%s", table, want)
	}
	mustShoal(t, with("-remove", oldKey)...)
	rs := decode[[]*api.KeyringResponse](t, mustShoal(t, with("-list", "--json")...))
	if len(rs) != 1 || rs[0].NumNodes != 2 || len(rs[0].Keys) != 1 || rs[0].PrimaryKeys[rotatedKey] != 2 {
		t.Fatalf("list --json: %+v", rs[0])
	}
	local := decode[[]*api.KeyringResponse](t, mustShoal(t, with("-list", "-local-only", "--json")...))
	if local[0].NumNodes != 1 || local[0].Keys[rotatedKey] != 1 {
		t.Fatalf("list -local-only: %+v", local[0])
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give exactly one of"},
		{[]string{"-list", "-use", rotatedKey}, "give exactly one of"},
		{[]string{"-install", rotatedKey, "-local-only"}, "-local-only and --json go with -list"},
		{[]string{"-list", "extra"}, "unexpected argument"},
	} {
		if line := failShoal(t, with(tc.args...)...); !strings.Contains(line, tc.want) {
			t.Errorf("keyring %q: %q", tc.args, line)
		}
	}
	code, _, errb := shoal(t, with("-remove", rotatedKey)...)
	if code != 1 || !strings.Contains(errb, "removing the primary key is not allowed") || strings.Count(errb, "\n") != 1 {
		t.Errorf("removing the primary: exit %d, %q", code, errb)
	}
	code, _, errb = shoal(t, with("-install", "c2hvcnQ=")...)
	if code != 1 || !strings.Contains(errb, "Key: 5 bytes") {
		t.Errorf("a short key: exit %d, %q", code, errb)
	}
}

// The CLI speaks HTTPS to an agent that verifies client certificates,
// with the CA and certificate given as flags or in Consul's environment
// variables.
func TestCLIOverHTTPS(t *testing.T) {
	clearEnv(t)
	for _, env := range []string{"CONSUL_CACERT", "CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY"} {
		t.Setenv(env, "")
	}
	ca := testutil.NewCA(t)
	c := testutil.NewEmptyCluster(t)
	cliCert, cliKey := ca.ServeHTTPS(c)
	addr := "https://" + c.Start("node-0", 0).Agent.HTTPSAddr()

	out := mustShoal(t, "--ca-file", ca.CAFile(), "--client-cert", cliCert, "--client-key", cliKey, "members", "--http-addr", addr)
	if !strings.Contains(out, "node-0") || !strings.Contains(out, "alive") {
		t.Fatalf("members over HTTPS: %q", out)
	}
	t.Setenv("CONSUL_CACERT", ca.CAFile())
	t.Setenv("CONSUL_CLIENT_CERT", cliCert)
	t.Setenv("CONSUL_CLIENT_KEY", cliKey)
	if out := mustShoal(t, "members", "--http-addr", addr); !strings.Contains(out, "node-0") {
		t.Fatalf("members with Consul's variables: %q", out)
	}
	t.Setenv("CONSUL_CLIENT_CERT", "")
	t.Setenv("CONSUL_CLIENT_KEY", "")
	failShoal(t, "members", "--http-addr", addr) // no client certificate
}
