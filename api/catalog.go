package api

import (
	"context"
	"errors"
)

// CatalogServices lists every service of the cluster, mapping its name to
// the tags its instances carry. q may block (WaitIndex, WaitTime); its
// Tags and Passing do not apply.
func (c *Client) CatalogServices(ctx context.Context, q *QueryOptions) (map[string][]string, *QueryMeta, error) {
	return get[map[string][]string](ctx, c, "/v1/catalog/services", q.values(false, false))
}

// CatalogService lists the instances of the named service, whatever their
// health; q.Tags filters them, and q may block. q.Passing does not apply:
// use HealthService for healthy instances.
func (c *Client) CatalogService(ctx context.Context, name string, q *QueryOptions) ([]*CatalogService, *QueryMeta, error) {
	if name == "" {
		return nil, nil, errors.New("catalog service: empty service name")
	}
	return get[[]*CatalogService](ctx, c, "/v1/catalog/service/"+segment(name), q.values(true, false))
}

// CatalogNodes lists the nodes of the cluster that this agent serves. q may
// block; its Tags and Passing do not apply.
func (c *Client) CatalogNodes(ctx context.Context, q *QueryOptions) ([]*Node, *QueryMeta, error) {
	return get[[]*Node](ctx, c, "/v1/catalog/nodes", q.values(false, false))
}

// HealthService lists the instances of the named service with their node
// and checks. q.Tags, q.Passing and q.Warning filter them, and q may
// block. An unknown service is an empty list, not an error.
func (c *Client) HealthService(ctx context.Context, name string, q *QueryOptions) ([]*ServiceEntry, *QueryMeta, error) {
	if name == "" {
		return nil, nil, errors.New("health service: empty service name")
	}
	return get[[]*ServiceEntry](ctx, c, "/v1/health/service/"+segment(name), q.values(true, true))
}
