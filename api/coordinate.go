package api

import (
	"context"
	"errors"
)

// Coordinate is a node's network coordinate (Vivaldi, as Serf computes
// it), in seconds: the estimated round trip between two nodes is the
// distance between their Vec, plus both Heights, plus both Adjustments
// when that sum is positive. github.com/hashicorp/serf/coordinate has the
// arithmetic; this package keeps to the standard library.
type Coordinate struct {
	Vec        []float64
	Error      float64
	Adjustment float64
	Height     float64
}

// CoordinateEntry is one node's coordinate as /v1/coordinate/nodes shows
// it. Segment is always empty: Shoal has one gossip pool.
type CoordinateEntry struct {
	Node      string
	Segment   string
	Partition string `json:",omitempty"`
	Coord     *Coordinate
}

// CoordinateNodes lists the network coordinates the agent holds: its own
// and those of the live nodes it has pinged, sorted by node name. q may
// block; its other fields do not apply.
func (c *Client) CoordinateNodes(ctx context.Context, q *QueryOptions) ([]*CoordinateEntry, *QueryMeta, error) {
	return get[[]*CoordinateEntry](ctx, c, "/v1/coordinate/nodes", q.values(false, false))
}

// CoordinateNode returns the named node's coordinate as a list of one
// entry, as Consul does; an unknown node, or one without a coordinate, is
// an error for which IsNotFound reports true.
func (c *Client) CoordinateNode(ctx context.Context, node string, q *QueryOptions) ([]*CoordinateEntry, *QueryMeta, error) {
	if node == "" {
		return nil, nil, errors.New("coordinate node: empty node name")
	}
	return get[[]*CoordinateEntry](ctx, c, "/v1/coordinate/node/"+segment(node), q.values(false, false))
}
