package api_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/shoal-sd/shoal/api"
)

// Filter and NodeMeta go out as Consul's filter and repeated node-meta,
// on every read (the agent refuses them where they do not apply).
func TestQueryFilterAndNodeMeta(t *testing.T) {
	c, seen := canned(t, 200, map[string]string{"X-Consul-Index": "7"}, "[]")
	q := &api.QueryOptions{Filter: `Service.Meta.version == "2" and "a&b" in Service.Tags`,
		NodeMeta: map[string]string{"rack": "r:1", "env": "prod"}, Tags: []string{"v2"}}
	if _, _, err := c.HealthService(context.Background(), "web", q); err != nil {
		t.Fatal(err)
	}
	got, err := url.ParseQuery(only(t, seen).Query)
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{"filter": {q.Filter}, "node-meta": {"env:prod", "rack:r:1"}, "tag": {"v2"}}
	if got.Encode() != want.Encode() {
		t.Errorf("query %v, want %v", got, want)
	}
	if _, _, err := c.CatalogNodes(context.Background(), &api.QueryOptions{Filter: "Meta.env == prod"}); err != nil {
		t.Fatal(err)
	}
	if got := only(t, seen).Query; got != "filter=Meta.env+%3D%3D+prod" {
		t.Errorf("catalog/nodes query %q", got)
	}
}
