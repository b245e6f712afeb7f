package localapi

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// Network coordinates and staleness: /v1/coordinate/nodes, ?near on the
// instance and node lists, and the ShoalLastHeardMs of every instance.
// The agent measures; these handlers only read what the Backend reports.

// agentNode is the ?near value that names the agent answering, as in
// Consul.
const agentNode = "_agent"

// GET /v1/coordinate/nodes: the coordinates the agent holds, sorted by
// node name. It blocks on the catalog's index: coordinates move with
// every ping and would wake a waiting query every second for nothing.
func (s *server) coordinateNodes(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 { return c.Index() })
	if err != nil {
		return err
	}
	out := []api.CoordinateEntry{}
	for _, e := range s.b.Coordinates() {
		if q.authz.Can(acl.Node, e.Node, acl.Read) {
			out = append(out, e)
		} else {
			q.filtered = true
		}
	}
	return s.writeJSON(w, q, index, out)
}

// GET /v1/coordinate/node/:node: that node's coordinate as a list of one,
// or 404 if the agent holds none for it.
func (s *server) coordinateNode(w http.ResponseWriter, r *http.Request, q *query, node string) error {
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 { return c.Index() })
	if err != nil {
		return err
	}
	if err := require(q.authz, acl.Node, node, acl.Read); err != nil {
		return err
	}
	for _, e := range s.b.Coordinates() {
		if e.Node == node {
			return s.writeJSON(w, q, index, []api.CoordinateEntry{e})
		}
	}
	return errorf(http.StatusNotFound, "node %q: no coordinate (unknown node, or not pinged yet)", node)
}

// nearNode resolves ?near: "" for none, the local node for _agent.
func (q *query) nearNode(local string) string {
	near := q.values.Get("near")
	if near == agentNode {
		return local
	}
	return near
}

// rtt is a node's estimated round trip from the ?near node; unknown
// ones sort after every known one.
type rtt struct {
	d     time.Duration
	known bool
}

func (a rtt) compare(b rtt) int {
	if a.known != b.known {
		if a.known {
			return -1
		}
		return 1
	}
	return cmp.Compare(a.d, b.d)
}

func (s *server) rttFrom(from, to string) rtt {
	d, ok := s.b.RTT(from, to)
	return rtt{d, ok}
}

// sortNear orders the instances by their node's estimated round trip
// from the node near, nearest first; instances of nodes without a
// coordinate go last, and ties keep the catalog's order, as in Consul.
// If near has no coordinate nothing moves.
func (v *serviceView) sortNear(s *server, near string) {
	for i := range v.nodes {
		v.nodes[i].rtt = s.rttFrom(near, v.nodes[i].name)
	}
	slices.SortStableFunc(v.insts, func(a, b instanceView) int {
		return v.nodes[a.node].rtt.compare(v.nodes[b.node].rtt)
	})
}

// sortNodesNear orders nodes as sortNear orders instances.
func (s *server) sortNodesNear(nodes []catalog.Node, near string) {
	rtts := make(map[string]rtt, len(nodes))
	for _, n := range nodes {
		rtts[n.Name] = s.rttFrom(near, n.Name)
	}
	slices.SortStableFunc(nodes, func(a, b catalog.Node) int { return rtts[a.Name].compare(rtts[b.Name]) })
}

// sortChecksNear orders checks by their node's estimated round trip
// from near, as sortNear orders instances (health/checks and
// health/state take ?near in Consul).
func (s *server) sortChecksNear(checks []api.HealthCheck, near string) {
	rtts := make(map[string]rtt)
	for _, c := range checks {
		if _, ok := rtts[c.Node]; !ok {
			rtts[c.Node] = s.rttFrom(near, c.Node)
		}
	}
	slices.SortStableFunc(checks, func(a, b api.HealthCheck) int { return rtts[a.Node].compare(rtts[b.Node]) })
}

// fillHeard sets every node's last-heard age, in one call to the Backend.
func (v *serviceView) fillHeard(b Backend) {
	v.names = v.names[:0]
	for i := range v.nodes {
		v.names = append(v.names, v.nodes[i].name)
	}
	v.ago = slices.Grow(v.ago[:0], len(v.names))[:len(v.names)]
	b.LastHeard(v.names, v.ago)
	for i := range v.nodes {
		v.nodes[i].heard = v.ago[i]
	}
}

// appendLastHeard appends the ShoalLastHeardMs field of a node's
// instance, if the agent has heard from the node.
func appendLastHeard(b []byte, n *nodeView) []byte {
	if n.heard < 0 {
		return b
	}
	b = append(b, `,"ShoalLastHeardMs":`...)
	return strconv.AppendInt(b, n.heard.Milliseconds(), 10)
}
