package api

import (
	"context"
	"errors"
	"fmt"
)

// AggregatedStatus folds checks into one state the way Consul does: any
// critical check makes it critical, else any warning makes it warning,
// else it is passing — an instance with no checks included. A status this
// client does not know counts as critical, so that it is never taken for
// healthy.
func AggregatedStatus(checks []*HealthCheck) string {
	status := HealthPassing
	for _, c := range checks {
		switch c.Status {
		case HealthPassing:
		case HealthWarning:
			status = HealthWarning
		default:
			return HealthCritical
		}
	}
	return status
}

// HealthChecks lists the checks of every instance of the named service
// (not the node checks). q may block; its Tags and Passing do not apply.
// An unknown service has no checks: an empty list, not an error.
func (c *Client) HealthChecks(ctx context.Context, service string, q *QueryOptions) ([]*HealthCheck, *QueryMeta, error) {
	if service == "" {
		return nil, nil, errors.New("health checks: empty service name")
	}
	return get[[]*HealthCheck](ctx, c, "/v1/health/checks/"+segment(service), q.values(false, false))
}

// HealthNode lists the checks of the named node: its serfHealth first,
// then its node checks, then its services' checks. q may block; its Tags
// and Passing do not apply. An unknown node has no checks.
func (c *Client) HealthNode(ctx context.Context, node string, q *QueryOptions) ([]*HealthCheck, *QueryMeta, error) {
	if node == "" {
		return nil, nil, errors.New("health node: empty node name")
	}
	return get[[]*HealthCheck](ctx, c, "/v1/health/node/"+segment(node), q.values(false, false))
}

// HealthState lists every check of the cluster in the state given:
// HealthAny, HealthPassing, HealthWarning or HealthCritical. q may block;
// its Tags and Passing do not apply.
func (c *Client) HealthState(ctx context.Context, state string, q *QueryOptions) ([]*HealthCheck, *QueryMeta, error) {
	switch state {
	case HealthAny, HealthPassing, HealthWarning, HealthCritical:
	default:
		return nil, nil, fmt.Errorf("health state: %q is not one of any, passing, warning, critical", state)
	}
	return get[[]*HealthCheck](ctx, c, "/v1/health/state/"+state, q.values(false, false))
}
