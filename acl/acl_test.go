package acl

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func mustPolicy(t *testing.T, name, rules string) *Policy {
	t.Helper()
	p, err := ParsePolicy(name, []byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMatching(t *testing.T) {
	p := mustPolicy(t, "p", `{
		"service_prefix": {"": {"policy": "read"}, "web": {"policy": "write"}, "web-admin": {"policy": "deny"}},
		"service": {"web-admin-ui": {"policy": "read"}},
		"node_prefix": {"db-": {"policy": "write"}},
		"operator": "read"}`)
	a := NewAuthorizer(Deny, p)
	for _, c := range []struct {
		r    Resource
		name string
		want Access
	}{
		{Service, "api", Read},          // the empty prefix
		{Service, "web", Write},         // longer prefix beats ""
		{Service, "web-1", Write},       //
		{Service, "web-admin", Deny},    // the longest prefix wins
		{Service, "web-admin-x", Deny},  //
		{Service, "web-admin-ui", Read}, // exact beats any prefix
		{Node, "db-1", Write},           //
		{Node, "app-1", Deny},           // no rule: the default
		{Agent, "db-1", Deny},           // rules of one resource say nothing of another
		{Operator, "", Read},            //
		{Keyring, "", Deny},             //
	} {
		if got := a.Access(c.r, c.name); got != c.want {
			t.Errorf("%s %q: %v, want %v", c.r, c.name, got, c.want)
		}
	}
	if a.Can(Service, "web-admin", Read) {
		t.Error("deny allowed read")
	}
	if !a.Can(Service, "web", Read) || a.Can(Service, "api", Write) {
		t.Error("write must imply read and read must not imply write")
	}
	allow := NewAuthorizer(Write, p)
	if allow.Access(Node, "app-1") != Write || allow.Access(Service, "web-admin") != Deny {
		t.Error("default allow: unmatched names are writable, explicit denies stay")
	}
}

func TestMergingPolicies(t *testing.T) {
	reader := mustPolicy(t, "r", `{"service_prefix": {"": {"policy": "read"}}, "operator": "read"}`)
	writer := mustPolicy(t, "w", `{"service_prefix": {"": {"policy": "write"}}, "operator": "write"}`)
	denier := mustPolicy(t, "d", `{"service": {"secret": {"policy": "deny"}}}`)
	a := NewAuthorizer(Deny, reader, writer, denier)
	if a.Access(Service, "web") != Write || a.Access(Operator, "") != Write {
		t.Error("read and write on one rule: write")
	}
	if a.Access(Service, "secret") != Deny {
		t.Error("deny in any policy wins")
	}
	// Order does not matter.
	b := NewAuthorizer(Deny, denier, writer, reader)
	for _, n := range []string{"web", "secret", ""} {
		if a.Access(Service, n) != b.Access(Service, n) {
			t.Errorf("%q: merge depends on order", n)
		}
	}
}

func TestManagementAndZero(t *testing.T) {
	if !Manage().Can(Keyring, "", Write) || !Manage().Management() {
		t.Error("management may do anything")
	}
	var z Authorizer
	if z.Can(Service, "web", Read) {
		t.Error("the zero authorizer allowed a read")
	}
	var nilA *Authorizer
	if nilA.Can(Service, "web", Read) {
		t.Error("a nil authorizer allowed a read")
	}
}

func TestParsePolicyErrors(t *testing.T) {
	for rules, want := range map[string]string{
		`{"key_prefix": {"": {"policy": "read"}}}`:  `"key_prefix" is not a rule`,
		`{"service": {"web": {"policy": "admin"}}}`: `service "web": policy: "admin" is not a policy`,
		`{"service": {"web": {}}}`:                  `service "web": policy: missing`,
		`{"service": {"web": {"polcy": "read"}}}`:   `unknown field "polcy"`,
		`{"operator": {"": {"policy": "read"}}}`:    `operator: want "read"`,
		`{"service": "read"}`:                       `service: want an object`,
		`not json`:                                  `rules:`,
		`{"operator": "read"} {}`:                   `trailing data`,
		`{"operator": "read"}}`:                     `rules:`,
		`{"service": {"db": {"policy": "deny"}}, "service": {"db": {"policy": "write"}}}`: `"service" is given twice`,
		`{"service": {"db": {"policy": "deny"}, "db": {"policy": "write"}}}`:              `"db" is given twice`,
		`{"service": null}`: `null where rules were expected`,
		`{"service": {"a": {"policy": "read"}}, "node": {"a": {"policy": "read"}}}`: ``,
		`{"service": {"web": {"policy": "write", "intentions": "read"}}}`:           ``,
	} {
		_, err := ParsePolicy("p", []byte(rules))
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", rules, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error with %q", rules, err, want)
		}
	}
}

func TestResolver(t *testing.T) {
	c := Config{
		Enabled:           true,
		DefaultPolicy:     "deny",
		InitialManagement: "root",
		Default:           "anon",
		Policies: []PolicyConfig{
			{Name: "web", Rules: json.RawMessage(`{"service": {"web": {"policy": "write"}}}`)},
			{Name: "read", Rules: json.RawMessage(`"{\"service_prefix\": {\"\": {\"policy\": \"read\"}}}"`)},
		},
		Tokens: []TokenConfig{
			{SecretID: "deployer", Policies: []string{"web"}},
			{SecretID: "anon", Policies: []string{"read"}},
		},
	}
	r, err := NewResolver(c)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := r.Resolve("root"); !a.Management() {
		t.Error("initial_management is not management")
	}
	if a, _ := r.Resolve("deployer"); !a.Can(Service, "web", Write) || a.Can(Service, "api", Read) {
		t.Error("deployer: write web only")
	}
	if a, _ := r.Resolve(""); !a.Can(Service, "api", Read) || a.Can(Service, "api", Write) {
		t.Error("no token: the default token's policies")
	}
	if _, err := r.Resolve("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown token: %v", err)
	}
	off, _ := NewResolver(Config{})
	if a, err := off.Resolve("anything"); err != nil || !a.Can(Operator, "", Write) {
		t.Error("ACLs off: everything allowed")
	}

	for _, bad := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.DefaultPolicy = "maybe" }, "acl.default_policy"},
		{func(c *Config) { c.Policies[0].Name = "" }, "acl.policies[0].name: missing"},
		{func(c *Config) { c.Policies[1].Name = "web" }, "defined twice"},
		{func(c *Config) { c.Policies[0].Rules = json.RawMessage(`{"kv": 1}`) }, "acl.policies[0].rules"},
		{func(c *Config) { c.Tokens[0].Policies = []string{"nope"} }, `acl.tokens.list[0].policies[0]: no policy is named "nope"`},
		{func(c *Config) { c.Tokens[1].SecretID = "deployer" }, "listed twice"},
		{func(c *Config) { c.Tokens[1].SecretID = "" }, "acl.tokens.list[1].secret_id: missing"},
	} {
		cc := c
		cc.Policies = append([]PolicyConfig(nil), c.Policies...)
		cc.Tokens = append([]TokenConfig(nil), c.Tokens...)
		cc.Tokens[0].Policies = append([]string(nil), c.Tokens[0].Policies...)
		bad.mut(&cc)
		_, err := NewResolver(cc)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("got %v, want %q", err, bad.want)
		}
		if err != nil && (strings.Contains(err.Error(), "deployer") || strings.Contains(err.Error(), "root")) {
			t.Errorf("an error shows a secret: %v", err)
		}
	}
}

func TestPermissionDeniedText(t *testing.T) {
	err := NewAuthorizer(Deny).Require(Service, "web", Write)
	if err == nil || err.Error() != `Permission denied: token lacks permission 'service:write' on "web"` {
		t.Errorf("got %v", err)
	}
	if err := NewAuthorizer(Deny).Require(Operator, "", Read); err == nil || !strings.HasSuffix(err.Error(), "'operator:read'") {
		t.Errorf("got %v", err)
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(`{"service_prefix": {"": {"policy": "read"}}, "operator": "write"}`))
	f.Add([]byte(`{"node": {"a": {"policy": "deny"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy("f", b)
		if err != nil {
			return
		}
		a := NewAuthorizer(Deny, p)
		for r := range numResources {
			x := a.Access(r, "x")
			if x != Deny && x != Read && x != Write {
				t.Fatalf("%s: access %d", r, x)
			}
		}
	})
}
