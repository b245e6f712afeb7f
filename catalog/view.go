package catalog

import (
	"sort"
	"time"
)

// NodeStatus is memberlist's verdict on a node.
type NodeStatus uint8

// Node states, as memberlist reports them.
const (
	StatusUnknown NodeStatus = iota
	StatusAlive
	StatusSuspect
	StatusDead
	StatusLeft
)

func (s NodeStatus) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusSuspect:
		return "suspect"
	case StatusDead:
		return "failed"
	case StatusLeft:
		return "left"
	}
	return "unknown"
}

// Node is a member of the cluster as the catalog knows it.
type Node struct {
	Name        string
	Address     string // advertised gossip IP
	Port        int    // gossip port
	Status      NodeStatus
	Epoch       uint64            // from the node's metadata
	Meta        map[string]string // node metadata (datacenter, ...)
	StatusSince time.Time         // local time of the last status change
	// Preserved: the node failed while this agent was in
	// self-preservation (preserve.go), and is served from its last
	// known state.
	Preserved   bool
	CreateIndex uint64
	ModifyIndex uint64
}

// Serving reports whether the node's services are served.
func (n Node) Serving() bool {
	return n.Status == StatusAlive || n.Status == StatusSuspect || n.Preserved
}

// SetNode records what memberlist says of a node: its address, status and
// the epoch in its metadata. Another epoch drops everything the node wrote
// in other runs, so a node that comes back shows only what it announces
// now; an epoch further ahead of now than the allowed skew is refused
// (counted in Stats) and the node keeps the epoch it had. The change index
// moves with any change of the node, and the index of each of its
// services with any change while it is or was served.
func (c *Catalog) SetNode(n Node, now time.Time) {
	old := c.nodes[n.Name]
	wasVisible := c.visible(n.Name)
	if c.future(n.Epoch, now) {
		c.stats.FutureEpoch++
		n.Epoch = 0
		if old != nil {
			n.Epoch = old.Epoch
		}
	}
	if n.Name != c.local {
		// memberlist orders a node's announcements (by incarnation), so
		// the epoch it brings is the node's current run, even one below
		// the last (a restart with a clock behind).
		o := c.getOrigin(n.Name)
		if n.Epoch > 0 {
			c.setEpoch(n.Name, o, n.Epoch)
		}
	}
	nn := n
	nn.Preserved = c.notePreserve(old, &n, now)
	if n.Meta != nil {
		nn.Meta = make(map[string]string, len(n.Meta))
		for k, v := range n.Meta {
			nn.Meta[k] = v
		}
	}
	if old != nil {
		nn.CreateIndex = old.CreateIndex
		nn.StatusSince = old.StatusSince
		if old.Status != n.Status {
			nn.StatusSince = now
		}
		if old.Name == n.Name && old.Address == n.Address && old.Port == n.Port &&
			old.Status == n.Status && old.Preserved == nn.Preserved && old.Epoch == n.Epoch && equalMeta(old.Meta, n.Meta) {
			return
		}
	} else {
		nn.StatusSince = now
	}
	c.nodes[n.Name] = &nn
	c.resum(n.Name)
	// Every instance carries its node, so a change of a node that is or
	// was served is a change of each of its services.
	var touched []string
	if wasVisible || c.visible(n.Name) {
		for k, r := range c.origins[n.Name].entries {
			if k.kind == KindService && !r.Deleted {
				touched = append(touched, r.Service.Name)
			}
		}
	}
	c.bump(touched...)
	if old == nil {
		nn.CreateIndex = c.index
	}
	nn.ModifyIndex = c.index
}

// Nodes lists every known node, sorted by name.
func (c *Catalog) Nodes() []Node {
	out := make([]Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CountNodes counts the known nodes by status, without copying them.
func (c *Catalog) CountNodes() map[NodeStatus]int {
	out := make(map[NodeStatus]int, 4)
	for _, n := range c.nodes {
		out[n.Status]++
	}
	return out
}

// Node returns the named node.
func (c *Catalog) Node(name string) (Node, bool) {
	n := c.nodes[name]
	if n == nil {
		return Node{}, false
	}
	return *n, true
}

// Instance is a live service instance on a serving node.
type Instance struct {
	Node        Node
	Service     Service // shared with the catalog: read only
	Version     Version
	CreateIndex uint64
	ModifyIndex uint64
	// Checks are the node's checks, then the instance's own, each sorted
	// by ID; nil when there are none.
	Checks []CheckView
	// Status is the worst state among Checks, passing when there are none.
	Status Health
	// Damped is set when any of Checks is held by flap damping.
	Damped bool
}

// Instances lists the served instances of the named service, sorted by
// node name, then service ID. Their Service values share tags and meta
// with the catalog and must not be modified.
func (c *Catalog) Instances(name string) []Instance {
	m := c.byName[name]
	out := make([]Instance, 0, len(m))
	var checks []CheckView
	for k, r := range m {
		if !c.visible(k.origin) {
			continue
		}
		in := Instance{
			Node:        c.nodeOf(k.origin),
			Service:     r.Service,
			Version:     r.Version,
			CreateIndex: r.createIndex,
			ModifyIndex: r.modifyIndex,
			Status:      HealthPassing,
		}
		// The instances' checks share one growing array: a few
		// allocations per answer rather than one per instance.
		o := c.origins[k.origin]
		start := len(checks)
		checks = c.appendChecks(checks, o, k.origin, "", nil)
		checks = c.appendChecks(checks, o, k.origin, k.id, &r.Service)
		if len(checks) > start {
			in.Checks = checks[start:len(checks):len(checks)]
		}
		for _, ck := range in.Checks {
			in.Status = Worse(in.Status, ck.Check.Status)
			in.Damped = in.Damped || ck.Check.Damped
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node.Name != out[j].Node.Name {
			return out[i].Node.Name < out[j].Node.Name
		}
		return out[i].Service.ID < out[j].Service.ID
	})
	return out
}

func (c *Catalog) nodeOf(name string) Node {
	if n := c.nodes[name]; n != nil {
		return *n
	}
	return Node{Name: name, Status: StatusAlive}
}

// Services maps every served service name to the union of its instances'
// tags, each list sorted.
func (c *Catalog) Services() map[string][]string {
	out := make(map[string][]string, len(c.byName))
	for name, m := range c.byName {
		seen := map[string]bool{}
		served := false
		for k, r := range m {
			if !c.visible(k.origin) {
				continue
			}
			served = true
			for _, t := range r.Service.Tags {
				seen[t] = true
			}
		}
		if !served {
			continue
		}
		tags := make([]string, 0, len(seen))
		for t := range seen {
			tags = append(tags, t)
		}
		sort.Strings(tags)
		out[name] = tags
	}
	return out
}

// LocalServices lists this agent's own live services, sorted by ID.
func (c *Catalog) LocalServices() []Service {
	var out []Service
	for _, e := range sortedEntries(c.origins[c.local]) {
		if !e.Deleted && e.Kind == KindService {
			out = append(out, e.Service)
		}
	}
	return out
}

// LocalService returns one of this agent's own live services.
func (c *Catalog) LocalService(id string) (Service, bool) {
	r := c.origins[c.local].entries[entryKey{KindService, id}]
	if r == nil || r.Deleted {
		return Service{}, false
	}
	return r.Service, true
}

func equalMeta(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// NodeServices lists the live services of the named node, sorted by
// service ID, with their indexes (Instance without Checks or Status); nil
// when the node's services are not served (a dead node shows none). Their
// Service values share tags and meta with the catalog: read only.
func (c *Catalog) NodeServices(node string) []Instance {
	o := c.origins[node]
	if o == nil || !c.visible(node) {
		return nil
	}
	var out []Instance
	for k, r := range o.entries {
		if k.kind != KindService || r.Deleted {
			continue
		}
		out = append(out, Instance{
			Node:        c.nodeOf(node),
			Service:     r.Service,
			Version:     r.Version,
			CreateIndex: r.createIndex,
			ModifyIndex: r.modifyIndex,
			Status:      HealthPassing,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service.ID < out[j].Service.ID })
	return out
}
