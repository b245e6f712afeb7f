package agent

import (
	"context"
	"slices"
	"time"

	"github.com/hashicorp/serf/coordinate"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// Network coordinates and staleness, as the gossip layer measures them,
// for ?near, /v1/coordinate/nodes and every instance's ShoalLastHeardMs.

// Coordinates lists the coordinates of this agent and of the served nodes
// it holds one for, sorted by node name. Nodes that failed or left are
// not listed, as their services are not served.
func (a *Agent) Coordinates() []api.CoordinateEntry {
	var names []string
	a.Read(func(c *catalog.Catalog) {
		for _, n := range c.Nodes() {
			if n.Serving() || n.Name == c.LocalName() {
				names = append(names, n.Name)
			}
		}
	})
	if !slices.Contains(names, a.cfg.NodeName) {
		// Not in the catalog yet; its services are served all the same.
		names = append(names, a.cfg.NodeName)
		slices.Sort(names)
	}
	out := make([]api.CoordinateEntry, 0, len(names))
	for _, n := range names {
		if c, ok := a.g.Coordinate(n); ok {
			out = append(out, api.CoordinateEntry{Node: n, Coord: apiCoordinate(c)})
		}
	}
	return out
}

// RTT estimates the round trip between two nodes from their coordinates;
// a node is 0 away from itself.
func (a *Agent) RTT(from, to string) (time.Duration, bool) {
	cf, ok := a.g.Coordinate(from)
	if !ok {
		return 0, false
	}
	if from == to {
		return 0, true
	}
	ct, ok := a.g.Coordinate(to)
	if !ok {
		return 0, false
	}
	return cf.DistanceTo(ct), true // the gossip layer keeps only compatible ones
}

// LastHeard reports how long ago the agent last heard from each node.
func (a *Agent) LastHeard(nodes []string, ago []time.Duration) { a.g.LastHeard(nodes, ago) }

// lastHeardMs is a node's age as the API shows it: nil if never heard.
func (a *Agent) lastHeardMs(node string) *int64 {
	var ago [1]time.Duration
	a.g.LastHeard([]string{node}, ago[:])
	if ago[0] < 0 {
		return nil
	}
	ms := ago[0].Milliseconds()
	return &ms
}

// forgetReaped drops the coordinates and last-heard times of nodes the
// catalog no longer holds.
func (a *Agent) forgetReaped() {
	known := map[string]bool{}
	a.Read(func(c *catalog.Catalog) {
		for _, n := range c.Nodes() {
			known[n.Name] = true
		}
	})
	a.g.ForgetExcept(func(node string) bool { return known[node] })
}

func apiCoordinate(c *coordinate.Coordinate) *api.Coordinate {
	return &api.Coordinate{Vec: c.Vec, Error: c.Error, Adjustment: c.Adjustment, Height: c.Height}
}

// Summaries asks every alive member for the summary of the catalog it
// serves now.
func (a *Agent) Summaries(ctx context.Context) map[string]uint64 {
	return a.g.Probe(ctx, summaryTimeout)
}

// summaryTimeout bounds how long GET /v1/shoal/convergence waits for the
// members' answers.
const summaryTimeout = time.Second
