// Package acl decides what a token may do, in Consul's rule language.
//
// A policy is a set of rules on resources — services, nodes, agents (all
// by exact name or by prefix), the operator and the keyring — each
// granting read, write or deny. A token holds policies; an Authorizer is
// the merge of a token's policies over the agent's default policy. The
// package is pure: it parses, merges and answers, and does no I/O.
//
// Matching follows Consul: a rule for the exact name beats any prefix
// rule; among prefix rules the longest prefix wins; with no rule, the
// default policy decides. Where a token's policies disagree on one rule,
// deny wins, and otherwise the more permissive of read and write.
package acl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Access is what a rule grants. The zero value is no rule.
type Access uint8

// Access levels, from none to most.
const (
	unset Access = iota
	Deny
	Read
	Write
)

func (a Access) String() string {
	switch a {
	case Deny:
		return "deny"
	case Read:
		return "read"
	case Write:
		return "write"
	}
	return ""
}

// ParseAccess reads "read", "write" or "deny".
func ParseAccess(s string) (Access, error) {
	switch s {
	case "read":
		return Read, nil
	case "write":
		return Write, nil
	case "deny":
		return Deny, nil
	}
	return unset, fmt.Errorf("%q is not a policy; use read, write or deny", s)
}

// merge combines two grants of one rule: deny wins, else the larger.
func merge(a, b Access) Access {
	if a == Deny || b == Deny {
		return Deny
	}
	return max(a, b)
}

// Resource is a kind of thing rules name.
type Resource uint8

// The resources Shoal enforces.
const (
	Service Resource = iota
	Node
	Agent
	Operator
	Keyring
	numResources
)

var resourceNames = [numResources]string{"service", "node", "agent", "operator", "keyring"}

func (r Resource) String() string { return resourceNames[r] }

// named reports whether rules on r name things (service "web") rather than
// grant one level (operator = "read").
func (r Resource) named() bool { return r == Service || r == Node || r == Agent }

// ruleSet is the rules of one named resource.
type ruleSet struct {
	exact  map[string]Access
	prefix map[string]Access
}

func (rs *ruleSet) add(name string, prefix bool, a Access) {
	m := &rs.exact
	if prefix {
		m = &rs.prefix
	}
	if *m == nil {
		*m = make(map[string]Access)
	}
	(*m)[name] = merge((*m)[name], a)
}

// Policy is a named set of rules.
type Policy struct {
	Name  string
	named [numResources]ruleSet
	flat  [numResources]Access // operator and keyring
}

// ruleKeys are the keys of a policy's JSON, Consul's names.
var ruleKeys = map[string]struct {
	res    Resource
	prefix bool
}{
	"service": {Service, false}, "service_prefix": {Service, true},
	"node": {Node, false}, "node_prefix": {Node, true},
	"agent": {Agent, false}, "agent_prefix": {Agent, true},
	"operator": {Operator, false}, "keyring": {Keyring, false},
}

// ParsePolicy reads rules in Consul's JSON form:
//
//	{"service_prefix": {"": {"policy": "read"}},
//	 "service": {"web": {"policy": "write"}},
//	 "node_prefix": {"": {"policy": "read"}},
//	 "agent": {"host-1": {"policy": "write"}},
//	 "operator": "read", "keyring": "write"}
//
// A rule's "intentions" (Connect, which Shoal does not serve) is accepted
// and ignored; any other key is an error naming it.
func ParsePolicy(name string, rules []byte) (*Policy, error) {
	p := &Policy{Name: name}
	var top map[string]json.RawMessage
	if err := strictJSON(rules, &top); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	for _, key := range slices.Sorted(maps.Keys(top)) {
		k, ok := ruleKeys[key]
		if !ok {
			return nil, fmt.Errorf("rules: %q is not a rule Shoal knows; use service, service_prefix, node, node_prefix, agent, agent_prefix, operator or keyring", key)
		}
		raw := top[key]
		if !k.res.named() {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("rules: %s: want \"read\", \"write\" or \"deny\"", key)
			}
			a, err := ParseAccess(s)
			if err != nil {
				return nil, fmt.Errorf("rules: %s: %w", key, err)
			}
			p.flat[k.res] = merge(p.flat[k.res], a)
			continue
		}
		var named map[string]json.RawMessage
		if err := strictJSON(raw, &named); err != nil {
			return nil, fmt.Errorf("rules: %s: want an object of names to {\"policy\": ...}: %w", key, err)
		}
		for _, n := range slices.Sorted(maps.Keys(named)) {
			var r struct {
				Policy     *string `json:"policy"`
				Intentions *string `json:"intentions"`
			}
			if err := strictJSON(named[n], &r); err != nil {
				return nil, fmt.Errorf("rules: %s %q: %w", key, n, err)
			}
			if r.Policy == nil {
				return nil, fmt.Errorf("rules: %s %q: policy: missing", key, n)
			}
			a, err := ParseAccess(*r.Policy)
			if err != nil {
				return nil, fmt.Errorf("rules: %s %q: policy: %w", key, n, err)
			}
			p.named[k.res].add(n, k.prefix, a)
		}
	}
	return p, nil
}

// strictJSON decodes one JSON value that has no key twice in any object
// (encoding/json would keep the last: a deny followed by a grant of the
// same name would be lost) and nothing after it; null is refused.
func strictJSON(b []byte, v any) error {
	if err := noDuplicateKeys(b); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var raw json.RawMessage
	if err := d.Decode(&raw); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("trailing data after the rules")
	}
	if string(bytes.TrimSpace(raw)) == "null" {
		return errors.New("null where rules were expected")
	}
	d = json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// noDuplicateKeys walks a JSON text and reports a key given twice in one
// object.
func noDuplicateKeys(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		keys  map[string]bool
		isObj bool
		key   bool // the next string token is a key
	}
	var stack []*frame
	for {
		t, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := t.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top != nil && top.isObj {
					top.key = true // the value ends; a key comes next
				}
				stack = append(stack, &frame{keys: map[string]bool{}, isObj: t == '{', key: t == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top != nil && top.isObj && top.key {
				if top.keys[t] {
					return fmt.Errorf("%q is given twice", t)
				}
				top.keys[t] = true
				top.key = false
				continue
			}
			if top != nil && top.isObj {
				top.key = true
			}
		default:
			if top != nil && top.isObj {
				top.key = true
			}
		}
	}
}

// Authorizer answers for one token. The zero value denies everything.
type Authorizer struct {
	manage  bool
	noRules bool // AllowAll
	def     Access
	named   [numResources]compiled
	flat    [numResources]Access
}

// compiled is a ruleSet ready to match: prefixes longest first.
type compiled struct {
	exact    map[string]Access
	prefixes []string
	access   []Access
}

func (c *compiled) lookup(name string) Access {
	if a, ok := c.exact[name]; ok {
		return a
	}
	for i, p := range c.prefixes {
		if strings.HasPrefix(name, p) {
			return c.access[i]
		}
	}
	return unset
}

// Manage returns an authorizer that may do anything (initial_management).
func Manage() *Authorizer { return &Authorizer{manage: true, def: Write} }

// AllowAll is the authorizer of an agent with ACLs off.
func AllowAll() *Authorizer { return allowAll }

// allowAll is shared: authorizers are never changed once built.
var allowAll = &Authorizer{def: Write, noRules: true}

// NewAuthorizer merges policies over a default policy (Write for
// "allow", Deny for "deny").
func NewAuthorizer(def Access, ps ...*Policy) *Authorizer {
	a := &Authorizer{def: def}
	for r := range numResources {
		var merged ruleSet
		for _, p := range ps {
			if r.named() {
				for n, x := range p.named[r].exact {
					merged.add(n, false, x)
				}
				for n, x := range p.named[r].prefix {
					merged.add(n, true, x)
				}
			} else {
				a.flat[r] = merge(a.flat[r], p.flat[r])
			}
		}
		c := compiled{exact: merged.exact}
		c.prefixes = slices.SortedFunc(maps.Keys(merged.prefix), func(x, y string) int {
			if len(x) != len(y) {
				return len(y) - len(x)
			}
			return strings.Compare(x, y)
		})
		for _, pfx := range c.prefixes {
			c.access = append(c.access, merged.prefix[pfx])
		}
		a.named[r] = c
	}
	return a
}

// Access is what the token may do on one resource (name is ignored for
// operator and keyring).
func (a *Authorizer) Access(r Resource, name string) Access {
	if a == nil {
		return Deny
	}
	if a.manage {
		return Write
	}
	var x Access
	if r.named() {
		x = a.named[r].lookup(name)
	} else {
		x = a.flat[r]
	}
	if x == unset {
		x = a.def
	}
	if x == unset {
		return Deny
	}
	return x
}

// Can reports whether the token has at least want on the resource.
func (a *Authorizer) Can(r Resource, name string, want Access) bool {
	x := a.Access(r, name)
	return x != Deny && x >= want
}

// Unrestricted reports whether the token may do anything: management,
// or ACLs off. Callers use it to skip filtering.
func (a *Authorizer) Unrestricted() bool {
	return a != nil && (a.manage || a.def == Write && a.noRules)
}

// Management reports whether the token may do anything.
func (a *Authorizer) Management() bool { return a != nil && a.manage }

// PermissionDenied is the error of a request the token may not make. Its
// text is Consul's: `Permission denied: token with AccessorID '…' lacks
// permission 'service:write' on "web"`, without the accessor (Shoal has
// none) so that no secret appears.
type PermissionDenied struct {
	Resource Resource
	Access   Access
	Name     string
}

func (e *PermissionDenied) Error() string {
	if e.Resource.named() {
		return fmt.Sprintf("Permission denied: token lacks permission '%s:%s' on %q", e.Resource, e.Access, e.Name)
	}
	return fmt.Sprintf("Permission denied: token lacks permission '%s:%s'", e.Resource, e.Access)
}

// Require returns a *PermissionDenied unless the token has want.
func (a *Authorizer) Require(r Resource, name string, want Access) error {
	if a.Can(r, name, want) {
		return nil
	}
	return &PermissionDenied{Resource: r, Access: want, Name: name}
}
