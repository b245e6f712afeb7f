package acl

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNotFound is the answer for a token that does not exist; its text is
// Consul's.
var ErrNotFound = errors.New("ACL not found")

// Config is the acl block of an agent's configuration, with Consul's
// agent-config keys where Consul has them. Shoal has no servers to hold
// tokens, so the tokens an agent accepts and their policies are listed
// here too (Tokens).
type Config struct {
	Enabled bool
	// DefaultPolicy is "allow" or "deny": what a token may do where
	// none of its rules says.
	DefaultPolicy string
	// InitialManagement may do anything. Agent is accepted for Consul's
	// sake and resolved like any listed token. Default is the token of
	// requests that send none, and of DNS.
	InitialManagement, Agent, Default string
	Policies                          []PolicyConfig
	Tokens                            []TokenConfig
}

// PolicyConfig is a named policy; Rules is Consul's JSON rules, as an
// object or as a string holding one (the shape of Consul's policy API).
type PolicyConfig struct {
	Name  string
	Rules json.RawMessage
}

// TokenConfig is a token: its secret and the names of its policies.
type TokenConfig struct {
	SecretID    string
	Description string
	Policies    []string
}

// Resolver maps secrets to authorizers. It is immutable: a reload builds
// a new one.
type Resolver struct {
	enabled   bool
	bySecret  map[string]*Authorizer
	anonymous *Authorizer
}

// Disabled is the resolver of an agent with ACLs off: every request may
// do anything, whatever token it sends.
func Disabled() *Resolver { return disabled }

var disabled = &Resolver{anonymous: allowAll}

// NewResolver checks a Config and builds its resolver. Errors name the
// key at fault and never a secret.
func NewResolver(c Config) (*Resolver, error) {
	if !c.Enabled {
		return Disabled(), nil
	}
	var def Access
	switch c.DefaultPolicy {
	case "allow", "":
		def = Write
	case "deny":
		def = Deny
	default:
		return nil, fmt.Errorf("acl.default_policy: %q is not a policy; use allow or deny", c.DefaultPolicy)
	}
	policies := make(map[string]*Policy, len(c.Policies))
	for i, pc := range c.Policies {
		if pc.Name == "" {
			return nil, fmt.Errorf("acl.policies[%d].name: missing", i)
		}
		if policies[pc.Name] != nil {
			return nil, fmt.Errorf("acl.policies[%d].name: %q is defined twice", i, pc.Name)
		}
		rules := []byte(pc.Rules)
		var s string
		if json.Unmarshal(rules, &s) == nil {
			rules = []byte(s)
		}
		if len(rules) == 0 {
			return nil, fmt.Errorf("acl.policies[%d].rules: missing", i)
		}
		p, err := ParsePolicy(pc.Name, rules)
		if err != nil {
			return nil, fmt.Errorf("acl.policies[%d].%w", i, err)
		}
		policies[pc.Name] = p
	}
	r := &Resolver{enabled: true, bySecret: make(map[string]*Authorizer)}
	for i, tc := range c.Tokens {
		if tc.SecretID == "" {
			return nil, fmt.Errorf("acl.tokens.list[%d].secret_id: missing", i)
		}
		if r.bySecret[tc.SecretID] != nil || tc.SecretID == c.InitialManagement {
			return nil, fmt.Errorf("acl.tokens.list[%d].secret_id: the same secret is listed twice", i)
		}
		var ps []*Policy
		for j, name := range tc.Policies {
			p := policies[name]
			if p == nil {
				return nil, fmt.Errorf("acl.tokens.list[%d].policies[%d]: no policy is named %q", i, j, name)
			}
			ps = append(ps, p)
		}
		r.bySecret[tc.SecretID] = NewAuthorizer(def, ps...)
	}
	if c.InitialManagement != "" {
		r.bySecret[c.InitialManagement] = Manage()
	}
	// A token named in tokens.agent or tokens.default but listed nowhere
	// holds no policy: the default policy alone.
	for _, s := range []string{c.Agent, c.Default} {
		if s != "" && r.bySecret[s] == nil {
			r.bySecret[s] = NewAuthorizer(def)
		}
	}
	r.anonymous = NewAuthorizer(def)
	if c.Default != "" {
		r.anonymous = r.bySecret[c.Default]
	}
	return r, nil
}

// Enabled reports whether tokens are checked.
func (r *Resolver) Enabled() bool { return r != nil && r.enabled }

// Resolve returns the authorizer of a secret; "" is the default token.
// A secret that is not configured is ErrNotFound.
func (r *Resolver) Resolve(secret string) (*Authorizer, error) {
	if !r.Enabled() {
		return AllowAll(), nil
	}
	if secret == "" {
		return r.anonymous, nil
	}
	if a := r.bySecret[secret]; a != nil {
		return a, nil
	}
	return nil, ErrNotFound
}
