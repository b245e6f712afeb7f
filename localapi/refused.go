package localapi

import (
	"net/http"
	"strings"
)

// The parts of Consul's HTTP API that Shoal refuses on purpose: they need
// Consul's servers (the KV store, sessions, prepared queries, ACL
// management, snapshots, Raft), or Connect, which Shoal does not have.
//
// They are answered 501 Not Implemented with a one-line reason, not the
// 404 of a path that names nothing: Consul's own clients read a 404 on
// some of them as an answer (a KV read of a key that does not exist
// returns nil and no error), so a 404 would let a tool believe the store
// is merely empty. 501 makes every client fail with the reason.

// refusal is one family of refused routes: a path below apiPrefix, or
// every path below it when it ends in '/'.
type refusal struct {
	path   string
	reason string
}

var refusals = []refusal{
	{"kv/", "Consul's KV store"},
	{"txn", "Consul's transactions (KV)"},
	{"session/", "Consul's sessions"},
	{"query", "prepared queries"},
	{"query/", "prepared queries"},
	{"acl/", "ACL management over the API (tokens and policies are in each agent's config file)"},
	{"agent/token/", "ACL management over the API (tokens and policies are in each agent's config file)"},
	{"connect/", "Connect (service mesh)"},
	{"agent/connect/", "Connect (service mesh)"},
	{"discovery-chain/", "Connect (service mesh)"},
	{"config", "config entries (Connect)"},
	{"config/", "config entries (Connect)"},
	{"catalog/register", "catalog writes: a node's services are written only by its own agent (PUT /v1/agent/service/register)"},
	{"catalog/deregister", "catalog writes: a node's services are written only by its own agent (PUT /v1/agent/service/deregister/:id)"},
	{"event/", "user events"},
	{"snapshot", "snapshots: there are no servers holding state to save"},
	{"operator/raft/", "Raft: Shoal has no servers"},
	{"operator/autopilot/", "Raft: Shoal has no servers"},
	{"peering/", "cluster peering"},
}

// refused returns the error answering a path of a refused family, or nil.
func refused(p string) error {
	for _, r := range refusals {
		if p == r.path || strings.HasSuffix(r.path, "/") && strings.HasPrefix(p, r.path) {
			return errorf(http.StatusNotImplemented, "%s%s: not supported: Shoal does not serve %s; it answers Consul's discovery API only", apiPrefix, strings.TrimSuffix(r.path, "/"), r.reason)
		}
	}
	return nil
}
