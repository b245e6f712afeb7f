package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/shoal-sd/shoal/api"
)

func ms(v int64) *int64 { return &v }

func TestCoordinateAndNearRequests(t *testing.T) {
	runRequestCases(t, []requestCase{
		{
			name:   "coordinate nodes",
			header: map[string]string{"X-Consul-Index": "9"},
			answer: `[{"Node": "n1", "Segment": "", "Coord": {"Vec": [0.001, -0.002], "Error": 0.4, "Adjustment": 0.0001, "Height": 0.00002}}]`,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return withMeta(c.CoordinateNodes(ctx, &api.QueryOptions{WaitIndex: 8}))
			},
			want: request{Method: "GET", Path: "/v1/coordinate/nodes", Query: "index=8"},
			result: metaResult{V: []*api.CoordinateEntry{{Node: "n1", Coord: &api.Coordinate{
				Vec: []float64{0.001, -0.002}, Error: 0.4, Adjustment: 0.0001, Height: 0.00002}}}, Meta: &api.QueryMeta{LastIndex: 9}},
		},
		{
			name:   "coordinate node, escaped",
			answer: `[{"Node": "a b", "Segment": "", "Coord": {"Vec": [0], "Error": 1.5, "Adjustment": 0, "Height": 0.00001}}]`,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				es, _, err := c.CoordinateNode(ctx, "a b", nil)
				return es, err
			},
			want: request{Method: "GET", Path: "/v1/coordinate/node/a%20b"},
		},
		{
			name: "health service near the agent, with ages",
			answer: `[{"Node": {"Node": "n1"}, "Service": {"ID": "web-1"}, "Checks": [], "ShoalLastHeardMs": 1234},
			          {"Node": {"Node": "n2"}, "Service": {"ID": "web-2"}, "Checks": []}]`,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				es, _, err := c.HealthService(ctx, "web", &api.QueryOptions{Near: "_agent"})
				return es, err
			},
			want: request{Method: "GET", Path: "/v1/health/service/web", Query: "near=_agent"},
			result: []*api.ServiceEntry{
				{Node: &api.Node{Node: "n1"}, Service: &api.AgentService{ID: "web-1"}, Checks: []*api.HealthCheck{}, ShoalLastHeardMs: ms(1234)},
				{Node: &api.Node{Node: "n2"}, Service: &api.AgentService{ID: "web-2"}, Checks: []*api.HealthCheck{}},
			},
		},
		{
			name:   "catalog nodes near a node",
			answer: `[]`,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				ns, _, err := c.CatalogNodes(ctx, &api.QueryOptions{Near: "n2"})
				return ns, err
			},
			want: request{Method: "GET", Path: "/v1/catalog/nodes", Query: "near=n2"},
		},
	})

	c, _ := canned(t, http.StatusNotFound, nil, `node "x": no coordinate`)
	if _, _, err := c.CoordinateNode(context.Background(), "x", nil); !api.IsNotFound(err) {
		t.Errorf("a node without a coordinate: %v, want IsNotFound", err)
	}
	if _, _, err := c.CoordinateNode(context.Background(), "", nil); err == nil {
		t.Error("an empty node name was sent")
	}
}
