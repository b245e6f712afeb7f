package localapi

import (
	"maps"
	"net/http"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// GET /v1/catalog/services: every served service name with the sorted
// union of its instances' tags.
func (s *server) catalogServices(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	nm, f, err := q.narrowing(catalogSample)
	if err != nil {
		return err
	}
	if nm != nil || f != nil {
		return s.catalogServicesNarrowed(w, r, q, nm, f)
	}
	var svcs map[string][]string
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 {
		svcs = c.Services() // a fresh map of fresh slices: ours to keep
		return c.Index()
	})
	if err != nil {
		return err
	}
	if !q.authz.Unrestricted() {
		for name := range svcs {
			if !q.authz.Can(acl.Service, name, acl.Read) {
				delete(svcs, name)
				q.filtered = true
			}
		}
	}
	return s.writeJSON(w, q, index, svcs)
}

// GET /v1/catalog/service/:name, filtered by every ?tag given.
func (s *server) catalogService(w http.ResponseWriter, r *http.Request, q *query, name string) error {
	return s.serveInstances(w, r, q, name, false, 0, (*serviceView).appendCatalog)
}

// GET /v1/health/service/:name, filtered by every ?tag given and, with
// ?passing, to instances whose checks (serfHealth included) all pass.
// Shoal adds ?warning, which with ?passing keeps warning instances too,
// as Consul's DNS interface does.
func (s *server) healthService(w http.ResponseWriter, r *http.Request, q *query, name string) error {
	worst, err := healthFilter(q) // 0: no filter
	if err != nil {
		return err
	}
	return s.serveInstances(w, r, q, name, true, worst, (*serviceView).appendHealth)
}

// serveInstances answers a read of one service's instances, blocking on
// the service's own index. With checks the view holds the instances'
// checks; worst, if not 0, drops instances in a worse state.
func (s *server) serveInstances(w http.ResponseWriter, r *http.Request, q *query, name string, checks bool, worst catalog.Health,
	encode func(v *serviceView, b []byte, dc string) []byte) error {
	tags := q.values["tag"]
	if len(tags) > catalog.MaxTags {
		// Matching runs under the agent's read lock; keep it short.
		return errorf(http.StatusBadRequest, "tag: %d tags given; an instance has at most %d", len(tags), catalog.MaxTags)
	}
	sample := any(catalogSample)
	if checks {
		sample = healthSample
	}
	nm, f, err := q.narrowing(sample)
	if err != nil {
		return err
	}
	v := getView()
	defer v.release()
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 {
		return v.collect(c, name, tags, checks, worst)
	})
	if err != nil {
		return err
	}
	v.finish(s.localAddr)
	if v.authorize(q.authz) {
		q.filtered = true
	}
	v.fillHeard(s.b)
	if err := v.narrow(nm, f, checks, s.b.Datacenter()); err != nil {
		return err
	}
	if near := q.nearNode(v.local); near != "" {
		v.sortNear(s, near)
	}
	buf := getBuf()
	defer putBuf(buf)
	buf.b = encode(v, buf.b, s.b.Datacenter())
	s.writeRead(w, q, index, buf.b)
	return nil
}

// localAddr is the local node's advertised address, for a local node the
// catalog has not been told about yet.
func (s *server) localAddr() string { return s.b.Self().Member.Addr }

// GET /v1/catalog/nodes: the nodes whose services are served (this agent
// always; others while memberlist holds them alive or suspect), sorted by
// name.
func (s *server) catalogNodes(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	nm, f, err := q.narrowing(nodeSample)
	if err != nil {
		return err
	}
	var (
		nodes    []catalog.Node
		local    catalog.Node
		hasLocal bool
	)
	near := ""
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 {
		nodes = nodes[:0]
		hasLocal = false
		for _, n := range c.Nodes() {
			if n.Name == c.LocalName() {
				hasLocal = true
			} else if !n.Serving() {
				continue
			}
			n.Meta = maps.Clone(n.Meta)
			nodes = append(nodes, n)
		}
		local = catalog.Node{Name: c.LocalName(), Status: catalog.StatusAlive}
		near = q.nearNode(c.LocalName())
		return c.Index()
	})
	if err != nil {
		return err
	}
	if !hasLocal {
		// The catalog does not know its own node yet, but serves its
		// services: show it, at its gossip address.
		local.Address = s.localAddr()
		nodes = insertNode(nodes, local)
	}
	if near != "" {
		s.sortNodesNear(nodes, near)
	}
	dc := s.b.Datacenter()
	out := make([]api.Node, len(nodes))
	for i, n := range nodes {
		out[i] = apiNode(n, dc)
	}
	keep := func(n *api.Node) bool {
		if !q.authz.Can(acl.Node, n.Node, acl.Read) {
			q.filtered = true
			return false
		}
		return nm == nil || nm.match(n.Meta)
	}
	if out, err = narrowSlice(out, keep, f); err != nil {
		return err
	}
	return s.writeJSON(w, q, index, out)
}

// insertNode adds n to nodes, keeping them sorted by name.
func insertNode(nodes []catalog.Node, n catalog.Node) []catalog.Node {
	i := 0
	for i < len(nodes) && nodes[i].Name < n.Name {
		i++
	}
	nodes = append(nodes, catalog.Node{})
	copy(nodes[i+1:], nodes[i:])
	nodes[i] = n
	return nodes
}

// apiNode shows a node as Consul's catalog does.
func apiNode(n catalog.Node, dc string) api.Node {
	id := catalog.NodeIDBytes(n.Name)
	return api.Node{
		ID:              string(id[:]),
		Node:            n.Name,
		Address:         n.Address,
		Datacenter:      dc,
		TaggedAddresses: taggedAddresses(n.Address),
		Meta:            nonNilMap(n.Meta),
		CreateIndex:     n.CreateIndex,
		ModifyIndex:     n.ModifyIndex,
	}
}
