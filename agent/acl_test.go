package agent_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	consul "github.com/hashicorp/consul/api"
	"github.com/miekg/dns"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// aclConfig: deny by default; "deployer" may write web and read
// everything; the default token (requests without one, and DNS) may read
// services but not "secret"; "root" may do anything.
func aclConfig() *acl.Config {
	return &acl.Config{
		Enabled:           true,
		DefaultPolicy:     "deny",
		InitialManagement: "root",
		Default:           "anon",
		Policies: []acl.PolicyConfig{
			{Name: "web-deployer", Rules: json.RawMessage(`{"service": {"web": {"policy": "write"}}}`)},
			{Name: "read-all", Rules: json.RawMessage(`{"service_prefix": {"": {"policy": "read"}}, "node_prefix": {"": {"policy": "read"}}}`)},
			{Name: "no-secret", Rules: json.RawMessage(`{"service": {"secret": {"policy": "deny"}}}`)},
		},
		Tokens: []acl.TokenConfig{
			{SecretID: "deployer", Policies: []string{"web-deployer", "read-all"}},
			{SecretID: "anon", Policies: []string{"read-all", "no-secret"}},
		},
	}
}

func tokenClient(t *testing.T, n *testutil.Node, token string) *consul.Client {
	t.Helper()
	cfg := consul.DefaultConfig()
	cfg.Address = n.Agent.HTTPAddr()
	cfg.Token = token
	cl, err := consul.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// statusOf is the HTTP status in a Consul client's error, 0 for none.
func statusOf(err error) int {
	var se consul.StatusError
	if ok := asStatus(err, &se); ok {
		return se.Code
	}
	return 0
}

func asStatus(err error, se *consul.StatusError) bool {
	for e := err; e != nil; {
		if s, ok := e.(consul.StatusError); ok {
			*se = s
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// Tokens through HashiCorp's Go client: writes need write on the service,
// reads leave out what the token may not read, agent operations need
// agent write, an unknown token is "ACL not found", DNS answers with the
// default token.
func TestACLsThroughTheConsulClient(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) { cfg.ACL = aclConfig() }
	for i := range 2 {
		c.Start(fmt.Sprintf("node-%d", i), 0)
	}
	c.JoinAll()
	n0, n1 := c.Node("node-0"), c.Node("node-1")
	root, deployer, anon := tokenClient(t, n0, "root"), tokenClient(t, n0, "deployer"), tokenClient(t, n0, "")

	web := &consul.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 80}
	if err := anon.Agent().ServiceRegister(web); statusOf(err) != http.StatusForbidden ||
		!strings.Contains(err.Error(), "Permission denied: token lacks permission 'service:write' on \"web\"") {
		t.Fatalf("register without a token: %v", err)
	}
	if err := deployer.Agent().ServiceRegister(web); err != nil {
		t.Fatalf("deployer registers web: %v", err)
	}
	if err := deployer.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "api-1", Name: "api", Port: 81}); statusOf(err) != http.StatusForbidden {
		t.Fatalf("deployer registers api: %v", err)
	}
	// Taking over web's ID with another name needs write on both.
	if err := deployer.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "secret-1", Name: "secret", Port: 82}); statusOf(err) != http.StatusForbidden {
		t.Fatalf("deployer registers secret: %v", err)
	}
	if err := root.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "secret-1", Name: "secret", Port: 82}); err != nil {
		t.Fatalf("root registers secret: %v", err)
	}
	if err := deployer.Agent().ServiceDeregister("secret-1"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("deployer deregisters secret: %v", err)
	}
	// A registration without an ID takes the name as its ID: web's writer
	// must not replace the secret service whose ID is "web".
	if err := root.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "web", Name: "secret", Port: 83,
		Check: &consul.AgentServiceCheck{CheckID: "secret-ttl", TTL: "1m"}}); err != nil {
		t.Fatal(err)
	}
	if err := deployer.Agent().ServiceRegister(&consul.AgentServiceRegistration{Name: "web", Port: 84}); statusOf(err) != http.StatusForbidden {
		t.Fatalf("deployer replaced the service of ID web (secret) by leaving out the ID: %v", err)
	}
	// Nor take secret's check by naming it through CheckID or Name.
	for _, reg := range []*consul.AgentCheckRegistration{
		{Name: "x", ServiceID: "web-1", AgentServiceCheck: consul.AgentServiceCheck{CheckID: "secret-ttl", TTL: "1m"}},
		{Name: "secret-ttl", ServiceID: "web-1", AgentServiceCheck: consul.AgentServiceCheck{TTL: "1m"}},
	} {
		if err := deployer.Agent().CheckRegister(reg); statusOf(err) != http.StatusForbidden {
			t.Fatalf("deployer took secret's check with %+v: %v", reg, err)
		}
	}
	if err := root.Agent().ServiceDeregister("web"); err != nil {
		t.Fatal(err)
	}

	// Reads on the other agent, after gossip: the default token sees web,
	// not secret; the list says it was filtered.
	other := tokenClient(t, n1, "")
	testutil.WaitFor(t, converge, func() error {
		all, _, err := tokenClient(t, n1, "root").Catalog().Services(nil)
		if err != nil || all["web"] == nil || all["secret"] == nil {
			return fmt.Errorf("root sees %v %v", all, err)
		}
		return nil
	})
	svcs, _, err := other.Catalog().Services(nil)
	if err != nil || svcs["web"] == nil || svcs["secret"] != nil {
		t.Fatalf("default token's catalog: %v %v", svcs, err)
	}
	entries, _, err := other.Health().Service("secret", "", false, nil)
	if err != nil || len(entries) != 0 {
		t.Fatalf("default token reads secret's instances: %v %v", entries, err)
	}
	entries, _, err = other.Health().Service("web", "", false, nil)
	if err != nil || len(entries) != 1 {
		t.Fatalf("default token reads web: %v %v", entries, err)
	}
	checks, _, err := other.Health().State("any", nil)
	if err != nil || slices.ContainsFunc(checks, func(h *consul.HealthCheck) bool { return h.ServiceName == "secret" }) {
		t.Fatalf("health/state shows secret's checks: %v", err)
	}

	// Agent operations: leave and join need agent write, self agent read.
	if err := anon.Agent().Leave(); statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "agent:write") {
		t.Fatalf("leave without a token: %v", err)
	}
	if _, err := anon.Agent().Self(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("self without a token: %v", err)
	}
	if _, err := root.Agent().Self(); err != nil {
		t.Fatalf("self as root: %v", err)
	}
	// A token that does not exist.
	if _, _, err := tokenClient(t, n0, "nope").Catalog().Services(nil); statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "ACL not found") {
		t.Fatalf("unknown token: %v", err)
	}

	// The other ways to send a token, as Consul reads them.
	for _, set := range []func(*http.Request){
		func(r *http.Request) { r.Header.Set("Authorization", "Bearer root") },
		func(r *http.Request) { q := r.URL.Query(); q.Set("token", "root"); r.URL.RawQuery = q.Encode() },
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+n0.Agent.HTTPAddr()+"/v1/agent/self", nil)
		set(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("token sent as %v: %d", req.Header, resp.StatusCode)
		}
	}

	// DNS answers with the default token: web, not secret.
	lookup := func(name string) int {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeSRV)
		r, err := dns.Exchange(m, n1.Agent.DNSAddr())
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Answer)
	}
	if lookup("web.service.shoal.") != 1 || lookup("secret.service.shoal.") != 0 {
		t.Fatalf("DNS: web %d, secret %d answers", lookup("web.service.shoal."), lookup("secret.service.shoal."))
	}
}

// A reload (SIGHUP, PUT /v1/agent/reload) puts a new token list in force;
// a bad acl block leaves the running one.
func TestACLsReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "shoal.json")
	write := func(body string) {
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"acl": {"enabled": true, "default_policy": "deny", "tokens": {"initial_management": "root"}}}`)
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) {
		f, err := agent.LoadConfigFile(file)
		if err != nil {
			t.Fatal(err)
		}
		f.Apply(cfg)
		cfg.ConfigFile = file
	}
	n := c.Start("node-0", 0)
	reg := &consul.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 80}
	if err := tokenClient(t, n, "new").Agent().ServiceRegister(reg); statusOf(err) != http.StatusForbidden {
		t.Fatalf("before the reload: %v", err)
	}
	write(`{"acl": {"enabled": true, "default_policy": "deny", "tokens": {"initial_management": "root",
		"list": [{"secret_id": "new", "policies": ["web"]}]},
		"policies": [{"name": "web", "rules": {"service": {"web": {"policy": "write"}}}}]}}`)
	if err := tokenClient(t, n, "root").Agent().Reload(); err != nil {
		t.Fatal(err)
	}
	if err := tokenClient(t, n, "new").Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("after the reload: %v", err)
	}
	// An open watch stream of the token ends once a reload revokes it.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+n.Agent.HTTPAddr()+"/v1/shoal/watch/service/web", nil)
	req.Header.Set("X-Consul-Token", "new")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %v %v", err, resp)
	}
	ended := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, resp.Body); resp.Body.Close(); close(ended) }()
	write(`{"acl": {"enabled": true, "default_policy": "deny", "tokens": {"initial_management": "root"}}}`)
	if err := tokenClient(t, n, "root").Agent().Reload(); err != nil {
		t.Fatal(err)
	}
	if err := tokenClient(t, n, "root").Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "web-2", Name: "web", Port: 81}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, converge, func() error {
		select {
		case <-ended:
			return nil
		default:
			return fmt.Errorf("the watch of a revoked token is still open")
		}
	})
	if err := tokenClient(t, n, "new").Agent().ServiceDeregister("web-1"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("revoked token: %v", err)
	}
	write(`{"acl": {"enabled": true, "default_policy": "deny", "tokens": {"initial_management": "root",
		"list": [{"secret_id": "new", "policies": ["web"]}]},
		"policies": [{"name": "web", "rules": {"service": {"web": {"policy": "write"}}}}]}}`)
	if err := tokenClient(t, n, "root").Agent().Reload(); err != nil {
		t.Fatal(err)
	}
	write(`{"acl": {"enabled": true, "policies": [{"name": "x", "rules": {"kv": {}}}]}}`)
	if err := tokenClient(t, n, "root").Agent().Reload(); err == nil || !strings.Contains(err.Error(), "kv") {
		t.Fatalf("a bad acl block reloaded: %v", err)
	}
	if err := tokenClient(t, n, "new").Agent().ServiceDeregister("web-1"); err != nil {
		t.Fatalf("the running tokens were lost: %v", err)
	}
}

// The API answers only requests whose Host names the agent: loopback, the
// machine's own addresses, or http_config.allowed_hosts. A page that
// reached it by DNS rebinding sends its own name, whatever else it sends.
func TestHostAllowlist(t *testing.T) {
	file := filepath.Join(t.TempDir(), "shoal.json")
	if err := os.WriteFile(file, []byte(`{"http_config": {"allowed_hosts": ["shoal.internal"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := agent.LoadConfigFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) { f.Apply(cfg) }
	n := c.Start("node-0", 0)
	_, port, _ := strings.Cut(n.Agent.HTTPAddr(), ":")
	for host, want := range map[string]int{
		"127.0.0.1:" + port:      http.StatusOK,
		"localhost:" + port:      http.StatusOK,
		"shoal.internal:" + port: http.StatusOK,
		"SHOAL.internal.":        http.StatusOK,
		"evil.example:" + port:   http.StatusForbidden,
		"192.0.2.1:" + port:      http.StatusForbidden,
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+n.Agent.HTTPAddr()+"/v1/catalog/services", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d %s, want %d", host, resp.StatusCode, body, want)
		}
		if want == http.StatusForbidden && !strings.HasPrefix(string(body), "Host: ") {
			t.Errorf("Host %s: the refusal does not name Host: %s", host, body)
		}
	}
}

// /v1/agent/checks shows a check's URL without its credentials and its
// headers without their values; the check still runs with them.
func TestCheckDefinitionsAreRedacted(t *testing.T) {
	c := testutil.NewCluster(t, 1)
	cl := consulClient(t, c.Node("node-0"))
	err := cl.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 80,
		Check: &consul.AgentServiceCheck{CheckID: "web-http", HTTP: "http://alice:s3cr3t@127.0.0.1:1/health", Interval: "10s",
			Header: map[string][]string{"Authorization": {"Bearer t0k3n"}}}})
	if err != nil {
		t.Fatal(err)
	}
	checks, err := cl.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	d := checks["web-http"].Definition
	if d.HTTP != "http://redacted@127.0.0.1:1/health" || len(d.Header["Authorization"]) != 1 || d.Header["Authorization"][0] != "redacted" {
		t.Errorf("definition shown: %+v", d)
	}
	testutil.WaitFor(t, converge, func() error {
		checks, err := cl.Agent().Checks()
		if err != nil {
			return err
		}
		if out := checks["web-http"].Output; out == "" || strings.Contains(out, "s3cr3t") || strings.Contains(out, "alice") {
			return fmt.Errorf("output %q", out)
		}
		return nil
	})
}
