package catalog

import (
	"slices"
	"sort"
	"strings"
)

// CheckView is a check's state as readers see it, with its node and, for a
// service check whose service is registered, the service's name and tags.
type CheckView struct {
	Node        string
	Check       Check
	ServiceName string
	ServiceTags []string // shared with the catalog: read only
	CreateIndex uint64
	ModifyIndex uint64
}

// appendChecks appends the live checks an origin holds for one service ID
// ("" for the node's own checks), sorted by ID. svc is the service they
// belong to, when known.
func (c *Catalog) appendChecks(out []CheckView, o *origin, node, serviceID string, svc *Service) []CheckView {
	m := o.checks[serviceID]
	if len(m) == 0 {
		return out
	}
	if svc == nil && serviceID != "" {
		if r := o.entries[entryKey{KindService, serviceID}]; r != nil && !r.Deleted {
			svc = &r.Service
		}
	}
	start := len(out)
	for _, r := range m {
		v := CheckView{Node: node, Check: r.Check, CreateIndex: r.createIndex, ModifyIndex: r.modifyIndex}
		if svc != nil {
			v.ServiceName, v.ServiceTags = svc.Name, svc.Tags
		}
		out = append(out, v)
	}
	added := out[start:]
	slices.SortFunc(added, func(a, b CheckView) int { return strings.Compare(a.Check.ID, b.Check.ID) })
	return out
}

// ServiceChecks lists the checks of every served instance of the named
// service (not the node checks), sorted by node, then check ID, as
// /v1/health/checks/:service shows them.
func (c *Catalog) ServiceChecks(name string) []CheckView {
	var out []CheckView
	for _, in := range c.Instances(name) {
		for _, ck := range in.Checks {
			if ck.Check.ServiceID != "" {
				out = append(out, ck)
			}
		}
	}
	return out
}

// NodeChecks lists every check of the named node, node checks first, then
// those of its services by service ID. It returns nil for a node that is
// not served (a dead node shows no checks, as it shows no services).
func (c *Catalog) NodeChecks(node string) []CheckView {
	o := c.origins[node]
	if o == nil || !c.visible(node) {
		return nil
	}
	out := c.appendChecks(nil, o, node, "", nil)
	ids := make([]string, 0, len(o.checks))
	for id := range o.checks {
		if id != "" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		out = c.appendChecks(out, o, node, id, nil)
	}
	return out
}

// Checks lists the checks of every served node, sorted by node, as
// /v1/health/state/any shows them.
func (c *Catalog) Checks() []CheckView {
	names := make([]string, 0, len(c.origins))
	for n, o := range c.origins {
		if len(o.checks) > 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []CheckView
	for _, n := range names {
		out = append(out, c.NodeChecks(n)...)
	}
	return out
}

// LocalChecks lists this agent's own checks (node checks first), as
// /v1/agent/checks shows them.
func (c *Catalog) LocalChecks() []CheckView { return c.NodeChecks(c.local) }

// LocalCheck returns one of this agent's own checks.
func (c *Catalog) LocalCheck(id string) (Check, bool) {
	r := c.origins[c.local].entries[entryKey{KindCheck, id}]
	if r == nil || r.Deleted {
		return Check{}, false
	}
	return r.Check, true
}
