package localapi

import (
	"net/http"
	"slices"
	"unicode/utf8"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// The health check routes: the agent's own checks under agent/check and
// agent/checks, maintenance mode, and the cluster's checks under health/.
// Writes go through the Backend, which validates; reads copy check views
// out of the catalog and encode them as Consul's api.HealthCheck.

// checkUpdateHint lists the fields of a check update body.
const checkUpdateHint = `the fields are "Status" and "Output"`

// PUT /v1/agent/check/register
func (s *server) agentCheckRegister(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	var reg api.AgentCheckRegistration
	if err := decodeStrict(body, &reg, "check registration", checkRegistrationHint); err != nil {
		return err
	}
	// A service's check needs write on the service, a node check on the
	// node; replacing a check needs what its owner needs too.
	if err := s.requireCheckWrite(q, reg.ServiceID); err != nil {
		return err
	}
	if err := s.requireCheckOwner(q, checkRegistrationID(reg)); err != nil {
		return err
	}
	if err := s.b.RegisterCheck(reg); err != nil {
		return writeError(err, nil, "register check %q", reg.Name)
	}
	s.log.Debug("check registered", "name", reg.Name, "id", reg.ID, "service", reg.ServiceID)
	writeOK(w)
	return nil
}

// PUT /v1/agent/check/deregister/:check_id
func (s *server) agentCheckDeregister(w http.ResponseWriter, _ *http.Request, q *query, id string) error {
	if err := s.requireCheckOwner(q, id); err != nil {
		return err
	}
	if err := s.b.DeregisterCheck(id); err != nil {
		return writeError(err, unknownCheckID(id), "deregister check %q", id)
	}
	s.log.Debug("check deregistered", "id", id)
	writeOK(w)
	return nil
}

// unknownCheckID is Consul's answer for a check ID the agent lacks.
func unknownCheckID(id string) error {
	return errorf(http.StatusNotFound, "Unknown check ID %q. Ensure that the check ID is passed, not the check name.", id)
}

// PUT /v1/agent/check/pass/:check_id?note=N: a TTL check's heartbeat,
// with N as its output.
func (s *server) agentCheckPass(w http.ResponseWriter, _ *http.Request, q *query, id string) error {
	return s.checkTTL(w, q, id, catalog.HealthPassing)
}

// PUT /v1/agent/check/warn/:check_id?note=N
func (s *server) agentCheckWarn(w http.ResponseWriter, _ *http.Request, q *query, id string) error {
	return s.checkTTL(w, q, id, catalog.HealthWarning)
}

// PUT /v1/agent/check/fail/:check_id?note=N
func (s *server) agentCheckFail(w http.ResponseWriter, _ *http.Request, q *query, id string) error {
	return s.checkTTL(w, q, id, catalog.HealthCritical)
}

func (s *server) checkTTL(w http.ResponseWriter, q *query, id string, status catalog.Health) error {
	note := q.values.Get("note")
	if !utf8.ValidString(note) {
		return errorf(http.StatusBadRequest, "note: not valid UTF-8")
	}
	if err := s.requireCheckOwner(q, id); err != nil {
		return err
	}
	return s.updateCheck(w, id, status, note, "note")
}

// checkUpdate is the body of PUT /v1/agent/check/update/:check_id, as
// Consul's client sends it.
type checkUpdate struct {
	Status string
	Output string
}

// PUT /v1/agent/check/update/:check_id with {"Status": S, "Output": O}
func (s *server) agentCheckUpdate(w http.ResponseWriter, r *http.Request, q *query, id string) error {
	if err := s.requireCheckOwner(q, id); err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	var u checkUpdate
	if err := decodeStrict(body, &u, `check update {"Status": ..., "Output": ...}`, checkUpdateHint); err != nil {
		return err
	}
	status, err := catalog.ParseHealth(u.Status)
	if err != nil {
		return errorf(http.StatusBadRequest, "Status: %v", err)
	}
	return s.updateCheck(w, id, status, u.Output, "Output")
}

// updateCheck reports a TTL check's state; outputParam names where the
// output came from, for errors.
func (s *server) updateCheck(w http.ResponseWriter, id string, status catalog.Health, output, outputParam string) error {
	if err := s.b.UpdateCheck(id, status, output); err != nil {
		return writeError(paramError(err, "Output", outputParam), unknownCheckID(id), "update check %q", id)
	}
	writeOK(w)
	return nil
}

// GET /v1/agent/checks: this agent's checks keyed by check ID, with
// their full output. It blocks on the catalog's index, as agent/services
// does; an output that changes past the head the catalog keeps does not
// end a wait.
func (s *server) agentChecks(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	f, err := q.filter(agentCheckSmp)
	if err != nil {
		return err
	}
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 { return c.Index() })
	if err != nil {
		return err
	}
	// Read the index first and the checks after: a change in between
	// makes the next blocking query return at once, never miss it.
	checks := s.b.AgentChecks()
	out := make(map[string]api.AgentCheck, len(checks))
	for _, c := range checks {
		if !canReadCheck(q.authz, c.ServiceName, c.Node) {
			q.filtered = true
			continue
		}
		c.ServiceTags = nonNilSlice(c.ServiceTags) // as Consul shows them
		out[c.CheckID] = c
	}
	if err := narrowMap(out, f); err != nil {
		return err
	}
	return s.writeJSON(w, q, index, out)
}

// PUT /v1/agent/maintenance?enable=true|false&reason=R
func (s *server) agentMaintenance(w http.ResponseWriter, _ *http.Request, q *query, _ string) error {
	enable, err := q.requiredBool("enable")
	if err != nil {
		return err
	}
	if err := s.b.NodeMaintenance(enable, q.values.Get("reason")); err != nil {
		return writeError(paramError(err, "Notes", "reason"), nil, "node maintenance")
	}
	s.log.Info("node maintenance", "enable", enable)
	writeOK(w)
	return nil
}

// PUT /v1/agent/service/maintenance/:service_id?enable=true|false&reason=R
func (s *server) agentServiceMaintenance(w http.ResponseWriter, _ *http.Request, q *query, id string) error {
	enable, err := q.requiredBool("enable")
	if err != nil {
		return err
	}
	if name, ok := s.localServiceName(id); ok {
		if err := require(q.authz, acl.Service, name, acl.Write); err != nil {
			return err
		}
	}
	if err := s.b.ServiceMaintenance(id, enable, q.values.Get("reason")); err != nil {
		return writeError(paramError(err, "Notes", "reason"), unknownServiceID(id), "maintenance of service %q", id)
	}
	s.log.Info("service maintenance", "id", id, "enable", enable)
	writeOK(w)
	return nil
}

// PUT /v1/agent/reload. A config file the agent cannot apply is the
// agent's failure, not the request's: it answers 500 with the reason.
func (s *server) agentReload(w http.ResponseWriter, r *http.Request, _ *query, _ string) error {
	if err := s.b.Reload(r.Context()); err != nil {
		return err // the backend's error says "reload: …"
	}
	s.log.Info("configuration reloaded on request")
	writeOK(w)
	return nil
}

// GET /v1/health/checks/:service: the checks of every served instance of
// the service (not the node checks), blocking on the service's index.
func (s *server) healthChecks(w http.ResponseWriter, r *http.Request, q *query, name string) error {
	nm, f, err := q.narrowing(checkSample)
	if err != nil {
		return err
	}
	out := []api.HealthCheck{}
	near := ""
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 {
		out = out[:0]
		near = q.nearNode(c.LocalName())
		for _, v := range c.ServiceChecks(name) {
			if nm != nil {
				if n, ok := c.Node(v.Node); !ok || !nm.match(n.Meta) {
					continue
				}
			}
			out = append(out, healthCheck(v))
		}
		return c.ServiceIndex(name)
	})
	if err != nil {
		return err
	}
	out = readableChecks(q, out)
	if out, err = narrowSlice(out, nil, f); err != nil {
		return err
	}
	if near != "" {
		s.sortChecksNear(out, near)
	}
	return s.writeJSON(w, q, index, out)
}

// GET /v1/health/node/:node: the node's serfHealth check, then its node
// checks, then its services' checks. A node that is unknown or whose
// services are not served has none: [].
func (s *server) healthNode(w http.ResponseWriter, r *http.Request, q *query, node string) error {
	f, err := q.filter(checkSample)
	if err != nil {
		return err
	}
	out := []api.HealthCheck{}
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 {
		out = out[:0]
		n, ok := c.Node(node)
		switch {
		case !ok && node == c.LocalName():
			out = appendNodeHealth(out, c, localNodeOf(c), 0)
		case ok && (n.Serving() || node == c.LocalName()):
			out = appendNodeHealth(out, c, n, 0)
		}
		return c.Index()
	})
	if err != nil {
		return err
	}
	out = readableChecks(q, out)
	if out, err = narrowSlice(out, nil, f); err != nil {
		return err
	}
	return s.writeJSON(w, q, index, out)
}

// GET /v1/health/state/:state: every check in the state (any, passing,
// warning or critical) of every node whose services are served, and of
// this agent's node, sorted by node; each node's serfHealth comes first.
func (s *server) healthState(w http.ResponseWriter, r *http.Request, q *query, state string) error {
	var want catalog.Health // 0: any
	if state != "any" {
		h, err := catalog.ParseHealth(state)
		if err != nil {
			return errorf(http.StatusBadRequest, "state: %q is not a state: use any, passing, warning or critical", state)
		}
		want = h
	}
	nm, f, err := q.narrowing(checkSample)
	if err != nil {
		return err
	}
	out := []api.HealthCheck{}
	near := ""
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 {
		out = out[:0]
		near = q.nearNode(c.LocalName())
		hasLocal := false
		nodes := c.Nodes()
		served := nodes[:0]
		for _, n := range nodes {
			if n.Name == c.LocalName() {
				hasLocal = true
			} else if !n.Serving() {
				continue
			}
			served = append(served, n)
		}
		if !hasLocal {
			served = insertNode(served, localNodeOf(c))
		}
		for _, n := range served {
			if nm.match(n.Meta) {
				out = appendNodeHealth(out, c, n, want)
			}
		}
		return c.Index()
	})
	if err != nil {
		return err
	}
	out = readableChecks(q, out)
	if out, err = narrowSlice(out, nil, f); err != nil {
		return err
	}
	if near != "" {
		s.sortChecksNear(out, near)
	}
	return s.writeJSON(w, q, index, out)
}

// localNodeOf is the local node as instances show it before the catalog
// has been told about it: alive, with no indexes.
func localNodeOf(c *catalog.Catalog) catalog.Node {
	return catalog.Node{Name: c.LocalName(), Status: catalog.StatusAlive}
}

// appendNodeHealth appends a node's serfHealth check and every check of
// the node, in the state want (0 for any).
func appendNodeHealth(out []api.HealthCheck, c *catalog.Catalog, n catalog.Node, want catalog.Health) []api.HealthCheck {
	if serf := serfHealthCheck(n); want == 0 || serf.Status == want.String() {
		out = append(out, serf)
	}
	for _, v := range c.NodeChecks(n.Name) {
		if want == 0 || v.Check.Status == want {
			out = append(out, healthCheck(v))
		}
	}
	return out
}

// serfHealthCheck is the node's serfHealth check as api.HealthCheck; see
// appendSerfHealth for the instance lists.
func serfHealthCheck(n catalog.Node) api.HealthCheck {
	status, output := serfStatus(n.Serving(), n.Preserved)
	return api.HealthCheck{
		Node:        n.Name,
		CheckID:     serfCheckID,
		Name:        serfCheckName,
		Status:      status,
		Output:      output,
		ServiceTags: []string{},
		CreateIndex: n.CreateIndex,
		ModifyIndex: n.ModifyIndex,
	}
}

// healthCheck shows a check as Consul does; ServiceTags, shared with the
// catalog, are copied, and are [] rather than null.
func healthCheck(v catalog.CheckView) api.HealthCheck {
	tags := []string{}
	if len(v.ServiceTags) > 0 {
		tags = slices.Clone(v.ServiceTags)
	}
	return api.HealthCheck{
		Node:        v.Node,
		CheckID:     v.Check.ID,
		Name:        v.Check.Name,
		Status:      v.Check.Status.String(),
		Notes:       v.Check.Notes,
		Output:      v.Check.Output,
		ServiceID:   v.Check.ServiceID,
		ServiceName: v.ServiceName,
		ServiceTags: tags,
		Type:        v.Check.Type,
		CreateIndex: v.CreateIndex,
		ModifyIndex: v.ModifyIndex,
		Damped:      v.Check.Damped,
	}
}

// requireCheckWrite asks for what registering a check needs: write on
// the local service of that ID, or on this node for a node check.
func (s *server) requireCheckWrite(q *query, serviceID string) error {
	if serviceID == "" {
		return require(q.authz, acl.Node, s.b.Self().Config.NodeName, acl.Write)
	}
	if name, ok := s.localServiceName(serviceID); ok {
		return require(q.authz, acl.Service, name, acl.Write)
	}
	return nil // the backend answers that there is no such service
}

// requireCheckOwner asks for write on the owner of an existing local
// check; a check that does not exist asks nothing (the backend answers
// 404 or registers it).
func (s *server) requireCheckOwner(q *query, id string) error {
	if id == "" || q.authz.Unrestricted() {
		return nil
	}
	for _, c := range s.b.AgentChecks() {
		if c.CheckID != id {
			continue
		}
		if c.ServiceName != "" {
			return require(q.authz, acl.Service, c.ServiceName, acl.Write)
		}
		return require(q.authz, acl.Node, c.Node, acl.Write)
	}
	return nil
}

// checkRegistrationID is the ID a check registration will have: ID, then
// CheckID, then the name, as health.FromCheckRegistration takes it.
func checkRegistrationID(r api.AgentCheckRegistration) string {
	for _, id := range []string{r.ID, r.CheckID, r.Name, r.AgentServiceCheck.Name} {
		if id != "" {
			return id
		}
	}
	return ""
}

// readableChecks leaves out the checks the request's token may not read.
func readableChecks(q *query, cs []api.HealthCheck) []api.HealthCheck {
	kept := cs[:0]
	for _, c := range cs {
		if canReadCheck(q.authz, c.ServiceName, c.Node) {
			kept = append(kept, c)
		} else {
			q.filtered = true
		}
	}
	return kept
}
