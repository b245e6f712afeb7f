package localapi

import (
	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/api"
)

// Narrowing the instance lists. The hot path encodes a serviceView
// without building api values; a filtered read builds, for each instance,
// the api value its JSON shows (one reused value, its maps refilled) so
// that ?filter sees exactly the answer's fields, and drops the instances
// that fail from the view before it is encoded.

// The shapes ?filter is evaluated on, as sampleOf builds them for
// checking filters (read only).
var (
	healthSample  = sampleOf[api.ServiceEntry]()
	catalogSample = sampleOf[api.CatalogService]()
	nodeSample    = sampleOf[api.Node]()
	serviceSample = sampleOf[api.AgentService]()
	agentCheckSmp = sampleOf[api.AgentCheck]()
	checkSample   = sampleOf[api.HealthCheck]()
	memberSample  = sampleOf[api.AgentMember]()
)

// narrow drops the instances whose node lacks a pair of nm or that f
// rejects; health says whether f sees api.ServiceEntry (health/service)
// or api.CatalogService (catalog/service). It runs after finish and
// fillHeard, out of the agent's lock, and keeps the instances' order.
func (v *serviceView) narrow(nm metaFilter, f *exprFilter, health bool, dc string) error {
	if nm == nil && f == nil {
		return nil
	}
	d := instanceDatum{node: -1}
	kept := v.insts[:0]
	for i := range v.insts {
		in := v.insts[i]
		n := &v.nodes[in.node]
		if !nm.matchPairs(v.strs[n.meta.lo:n.meta.hi]) {
			continue
		}
		if f != nil {
			var datum any
			if health {
				datum = d.health(v, &in, dc)
			} else {
				datum = d.catalog(v, &in, dc)
			}
			ok, err := f.match(datum)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
		}
		kept = append(kept, in)
	}
	clear(v.insts[len(kept):])
	v.insts = kept
	return nil
}

// authorize leaves out the instances a token may not read (read on the
// service and on the node, as Consul asks) and reports whether it left
// out any.
func (v *serviceView) authorize(a *acl.Authorizer) bool {
	if a.Unrestricted() {
		return false
	}
	kept := v.insts[:0]
	// Instances of one service share its name, and runs of them a node:
	// ask once per name and once per node.
	lastName, nameOK := "", false
	lastNode, nodeOK := -1, false
	for _, in := range v.insts {
		if in.name != lastName || lastNode == -1 {
			lastName, nameOK = in.name, a.Can(acl.Service, in.name, acl.Read)
		}
		if in.node != lastNode {
			lastNode, nodeOK = in.node, a.Can(acl.Node, v.nodes[in.node].name, acl.Read)
		}
		if nameOK && nodeOK {
			kept = append(kept, in)
		}
	}
	dropped := len(kept) < len(v.insts)
	clear(v.insts[len(kept):])
	v.insts = kept
	return dropped
}

// instanceDatum is the reused value a filter is evaluated on.
type instanceDatum struct {
	node     int // the view's node that nodeInfo was built for; -1 none
	nodeInfo api.Node
	heard    *int64
	heardMs  int64

	entry   api.ServiceEntry
	svc     api.AgentService
	svcMeta map[string]string
	checks  []api.HealthCheck
	ptrs    []*api.HealthCheck

	cat api.CatalogService
}

// setNode builds nodeInfo for the view's node i, once per run of its
// instances (they come grouped by node).
func (d *instanceDatum) setNode(v *serviceView, i int, dc string) {
	if d.node == i {
		return
	}
	d.node = i
	n := &v.nodes[i]
	d.nodeInfo = api.Node{
		ID:              string(n.id[:]),
		Node:            n.name,
		Address:         n.address,
		Datacenter:      dc,
		TaggedAddresses: taggedAddresses(n.address),
		Meta:            pairsMap(nil, v.strs[n.meta.lo:n.meta.hi]),
		CreateIndex:     n.createIndex,
		ModifyIndex:     n.modifyIndex,
	}
	d.heard = nil
	if n.heard >= 0 {
		d.heardMs = n.heard.Milliseconds()
		d.heard = &d.heardMs
	}
}

// health is the instance as api.ServiceEntry; see appendHealth.
func (d *instanceDatum) health(v *serviceView, in *instanceView, dc string) *api.ServiceEntry {
	d.setNode(v, in.node, dc)
	n := &v.nodes[in.node]
	d.svcMeta = pairsMap(d.svcMeta, v.strs[in.meta.lo:in.meta.hi])
	d.svc = api.AgentService{
		ID:          in.id,
		Service:     in.name,
		Tags:        v.strings(in.tags),
		Meta:        d.svcMeta,
		Port:        in.port,
		Address:     in.address,
		Weights:     api.AgentWeights{Passing: in.weights.Passing, Warning: in.weights.Warning},
		CreateIndex: in.createIndex,
		ModifyIndex: in.modifyIndex,
	}
	status, output := serfStatus(n.serving, n.preserved)
	d.checks = append(d.checks[:0], api.HealthCheck{
		Node: n.name, CheckID: serfCheckID, Name: serfCheckName, Status: status, Output: output,
		ServiceTags: []string{}, CreateIndex: n.createIndex, ModifyIndex: n.modifyIndex,
	})
	for j := in.checks.lo; j < in.checks.hi; j++ {
		c := &v.checks[j]
		d.checks = append(d.checks, api.HealthCheck{
			Node: n.name, CheckID: c.id, Name: c.name, Status: c.status.String(), Notes: c.notes,
			Output: c.output, ServiceID: c.serviceID, ServiceName: c.serviceName, ServiceTags: v.strings(c.tags),
			Type: c.typ, CreateIndex: c.createIndex, ModifyIndex: c.modifyIndex, Damped: c.damped,
		})
	}
	d.ptrs = d.ptrs[:0]
	for j := range d.checks {
		d.ptrs = append(d.ptrs, &d.checks[j])
	}
	d.entry = api.ServiceEntry{Node: &d.nodeInfo, Service: &d.svc, Checks: d.ptrs, ShoalLastHeardMs: d.heard}
	return &d.entry
}

// catalog is the instance as api.CatalogService; see appendCatalog.
func (d *instanceDatum) catalog(v *serviceView, in *instanceView, dc string) *api.CatalogService {
	d.setNode(v, in.node, dc)
	d.svcMeta = pairsMap(d.svcMeta, v.strs[in.meta.lo:in.meta.hi])
	n := &d.nodeInfo
	d.cat = api.CatalogService{
		ID:               n.ID,
		Node:             n.Node,
		Address:          n.Address,
		Datacenter:       dc,
		TaggedAddresses:  n.TaggedAddresses,
		NodeMeta:         n.Meta,
		ServiceID:        in.id,
		ServiceName:      in.name,
		ServiceAddress:   in.address,
		ServiceTags:      v.strings(in.tags),
		ServiceMeta:      d.svcMeta,
		ServicePort:      in.port,
		ServiceWeights:   api.AgentWeights{Passing: in.weights.Passing, Warning: in.weights.Warning},
		CreateIndex:      in.createIndex,
		ModifyIndex:      in.modifyIndex,
		ShoalLastHeardMs: d.heard,
	}
	return &d.cat
}

// strings is a span of the view's strings as a slice (shared: read only),
// never nil, as the answer shows it.
func (v *serviceView) strings(s span) []string {
	if s.lo == s.hi {
		return []string{}
	}
	return v.strs[s.lo:s.hi:s.hi]
}

// pairsMap fills m (a new map if nil) with key, value pairs, after
// clearing it.
func pairsMap(m map[string]string, kv []string) map[string]string {
	if m == nil {
		m = make(map[string]string, len(kv)/2)
	}
	clear(m)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}
