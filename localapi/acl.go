package localapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/shoal-sd/shoal/acl"
)

// tokenOf returns the token a request carries, where Consul looks for
// it: the X-Consul-Token header, then Authorization: Bearer, then
// ?token=. Empty means none (the default token).
func tokenOf(r *http.Request) string {
	if t := r.Header.Get("X-Consul-Token"); t != "" {
		return t
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, t, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(t)
		}
	}
	if !strings.Contains(r.URL.RawQuery, "token=") {
		return "" // spare parsing the query of every request
	}
	return r.URL.Query().Get("token")
}

// authorize resolves a request's token. A token the agent does not know
// is a 403 "ACL not found", as in Consul.
func (s *server) authorize(r *http.Request) (*acl.Authorizer, error) {
	res := acl.Disabled()
	if s.acl != nil {
		res = s.acl()
	}
	a, err := res.Resolve(tokenOf(r))
	if errors.Is(err, acl.ErrNotFound) {
		return nil, errorf(http.StatusForbidden, "ACL not found")
	}
	return a, err
}

// require answers 403 naming the permission the token lacks.
func require(a *acl.Authorizer, res acl.Resource, name string, want acl.Access) error {
	if err := a.Require(res, name, want); err != nil {
		return errorf(http.StatusForbidden, "%s", err.Error())
	}
	return nil
}

// need is a route's permission on this agent itself, checked before the
// handler runs: the resource is named by the agent's node name.
type need struct {
	res    acl.Resource
	access acl.Access
}

// stillAllowed resolves a stream's token again (a reload may have
// changed it) and reports whether it still has want on this agent.
func (s *server) stillAllowed(r *http.Request, res acl.Resource, want acl.Access) bool {
	a, err := s.authorize(r)
	return err == nil && (a.Unrestricted() || a.Can(res, s.b.Self().Config.NodeName, want))
}

// canRead reports whether a token may see an instance: read on its
// service and on its node, as Consul filters catalog and health answers.
func canRead(a *acl.Authorizer, service, node string) bool {
	return a.Can(acl.Service, service, acl.Read) && a.Can(acl.Node, node, acl.Read)
}

// canReadCheck reports whether a token may see a check: read on its
// node, and on its service if it has one.
func canReadCheck(a *acl.Authorizer, service, node string) bool {
	if !a.Can(acl.Node, node, acl.Read) {
		return false
	}
	return service == "" || a.Can(acl.Service, service, acl.Read)
}

// headerFiltered is set on answers that left out what the token may not
// read, as Consul sets it.
const headerFiltered = "X-Consul-Results-Filtered-By-ACLs"
