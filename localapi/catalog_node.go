package localapi

import (
	"maps"
	"net/http"
	"slices"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// The catalog routes that show one node, the datacenters, the service
// names narrowed by ?filter and ?node-meta, and the Connect routes that
// tools call and that Shoal, without Connect, answers with nothing.

// catalogNode is the body of GET /v1/catalog/node/:node (Consul's
// CatalogNode): the node and its services by ID.
type catalogNode struct {
	Node     *api.Node
	Services map[string]api.AgentService
}

// nodeServiceList is the body of GET /v1/catalog/node-services/:node
// (Consul's CatalogNodeServiceList): the node and its services in a list
// sorted by ID.
type nodeServiceList struct {
	Node     *api.Node
	Services []api.AgentService
}

// nodeServices reads a node and its services for the catalog/node
// routes, blocking on the catalog's index. node is nil for a node that
// is unknown, not served, or that the token may not read; the services
// are those the token may read and ?filter keeps.
func (s *server) nodeServices(r *http.Request, q *query, name string) (uint64, *api.Node, []api.AgentService, error) {
	f, err := q.filter(serviceSample)
	if err != nil {
		return 0, nil, nil, err
	}
	var (
		node  catalog.Node
		found bool
		insts []catalog.Instance
	)
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 {
		insts, found = nil, false
		n, ok := c.Node(name)
		switch {
		case ok && (n.Serving() || name == c.LocalName()):
			node, found = n, true
		case !ok && name == c.LocalName():
			node, found = localNodeOf(c), true
		}
		if found {
			node.Meta = maps.Clone(node.Meta)
			insts = c.NodeServices(name)
			for i := range insts {
				insts[i].Service = insts[i].Service.Clone()
			}
		}
		return c.Index()
	})
	if err != nil || !found {
		return index, nil, nil, err
	}
	if !q.authz.Can(acl.Node, node.Name, acl.Read) {
		q.filtered = true
		return index, nil, nil, nil
	}
	if node.Address == "" && node.Name == s.b.Self().Config.NodeName {
		node.Address = s.localAddr()
	}
	dc := s.b.Datacenter()
	out := make([]api.AgentService, 0, len(insts))
	for _, in := range insts {
		if !q.authz.Can(acl.Service, in.Service.Name, acl.Read) {
			q.filtered = true
			continue
		}
		svc := agentService(in.Service, "")
		svc.CreateIndex, svc.ModifyIndex = in.CreateIndex, in.ModifyIndex
		out = append(out, svc)
	}
	out, err = narrowSlice(out, nil, f)
	if err != nil {
		return 0, nil, nil, err
	}
	n := apiNode(node, dc)
	return index, &n, out, nil
}

// GET /v1/catalog/node/:node: the node and its services keyed by ID, or
// null for a node the agent does not serve, as Consul answers.
func (s *server) catalogNode(w http.ResponseWriter, r *http.Request, q *query, name string) error {
	index, node, svcs, err := s.nodeServices(r, q, name)
	if err != nil {
		return err
	}
	if node == nil {
		return s.writeJSON(w, q, index, nil)
	}
	out := catalogNode{Node: node, Services: make(map[string]api.AgentService, len(svcs))}
	for _, svc := range svcs {
		out.Services[svc.ID] = svc
	}
	return s.writeJSON(w, q, index, &out)
}

// GET /v1/catalog/node-services/:node (Consul 1.7+): the same as a list;
// an unknown node has a null Node and no services.
func (s *server) catalogNodeServices(w http.ResponseWriter, r *http.Request, q *query, name string) error {
	index, node, svcs, err := s.nodeServices(r, q, name)
	if err != nil {
		return err
	}
	if svcs == nil {
		svcs = []api.AgentService{}
	}
	return s.writeJSON(w, q, index, &nodeServiceList{Node: node, Services: svcs})
}

// GET /v1/catalog/datacenters: the one datacenter of the cluster. Consul
// sorts them by distance; there is only this one.
func (s *server) catalogDatacenters(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 { return c.Index() })
	if err != nil {
		return err
	}
	return s.writeJSON(w, q, index, []string{s.b.Datacenter()})
}

// catalogServicesNarrowed answers GET /v1/catalog/services with
// ?node-meta or ?filter, as Consul does: the filter is evaluated on each
// instance as /v1/catalog/service shows it, and a name is listed, with
// the union of the tags of its instances that match, if any does.
func (s *server) catalogServicesNarrowed(w http.ResponseWriter, r *http.Request, q *query, nm metaFilter, f *exprFilter) error {
	var names []string
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 {
		names = names[:0]
		for name := range c.Services() {
			names = append(names, name)
		}
		return c.Index()
	})
	if err != nil {
		return err
	}
	// The index first, then each name's instances out of one read each,
	// so that the lock is never held for the whole catalog: a change in
	// between moves the index, and the next blocking query sees it.
	slices.Sort(names)
	dc := s.b.Datacenter()
	out := make(map[string][]string)
	v := getView()
	defer v.release()
	for _, name := range names {
		if !q.authz.Can(acl.Service, name, acl.Read) {
			q.filtered = true
			continue
		}
		s.b.Read(func(c *catalog.Catalog) { v.collect(c, name, nil, false, 0) })
		v.finish(s.localAddr)
		if v.authorize(q.authz) {
			q.filtered = true
		}
		if f != nil {
			v.fillHeard(s.b)
		}
		if err := v.narrow(nm, f, false, dc); err != nil {
			return err
		}
		if len(v.insts) == 0 {
			continue
		}
		var tags []string
		for _, in := range v.insts {
			tags = append(tags, v.strs[in.tags.lo:in.tags.hi]...)
		}
		slices.Sort(tags)
		out[name] = nonNilSlice(slices.Compact(tags))
	}
	return s.writeJSON(w, q, index, out)
}

// GET /v1/catalog/connect/:service, /v1/health/connect/:service and
// /v1/health/ingress/:service: Shoal has no Connect, so no instance is
// Connect-capable and no gateway fronts any: always [], as Consul
// answers for a service without them. The parameters Consul takes there
// are still checked, so that a bad one is refused as on the other
// routes, and the query blocks on the service's index.
func (s *server) catalogConnect(w http.ResponseWriter, r *http.Request, q *query, name string) error {
	return s.noConnect(w, r, q, name, catalogSample)
}

func (s *server) healthConnect(w http.ResponseWriter, r *http.Request, q *query, name string) error {
	if _, err := healthFilter(q); err != nil {
		return err
	}
	return s.noConnect(w, r, q, name, healthSample)
}

func (s *server) noConnect(w http.ResponseWriter, r *http.Request, q *query, name string, sample any) error {
	if tags := q.values["tag"]; len(tags) > catalog.MaxTags {
		return errorf(http.StatusBadRequest, "tag: %d tags given; an instance has at most %d", len(tags), catalog.MaxTags)
	}
	if _, _, err := q.narrowing(sample); err != nil {
		return err
	}
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 { return c.ServiceIndex(name) })
	if err != nil {
		return err
	}
	s.writeRead(w, q, index, []byte("[]"))
	return nil
}
