package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// CheckRegister adds a check to the agent, or replaces the one with the
// same ID (an empty ID means the name). A ServiceID binds the check to one
// of the agent's services. The agent refuses an invalid check, or one of a
// kind it does not run, with a 400 StatusError naming the field.
func (c *Client) CheckRegister(ctx context.Context, reg *AgentCheckRegistration) error {
	if reg == nil {
		return errors.New("check register: nil registration")
	}
	_, err := c.do(ctx, http.MethodPut, "/v1/agent/check/register", nil, reg, nil)
	return err
}

// CheckDeregister removes one of the agent's checks. An unknown ID is an
// error for which IsNotFound reports true; so is a maintenance check,
// which only the maintenance calls remove.
func (c *Client) CheckDeregister(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("check deregister: empty check ID")
	}
	_, err := c.do(ctx, http.MethodPut, "/v1/agent/check/deregister/"+segment(id), nil, nil, nil)
	return err
}

// PassTTL sets a TTL check passing, with note as its output, and starts
// its TTL again. An unknown ID is an error for which IsNotFound reports
// true; a check of another kind is a 400 StatusError.
func (c *Client) PassTTL(ctx context.Context, id, note string) error {
	return c.ttl(ctx, "pass", id, note)
}

// WarnTTL sets a TTL check warning; see PassTTL.
func (c *Client) WarnTTL(ctx context.Context, id, note string) error {
	return c.ttl(ctx, "warn", id, note)
}

// FailTTL sets a TTL check critical; see PassTTL.
func (c *Client) FailTTL(ctx context.Context, id, note string) error {
	return c.ttl(ctx, "fail", id, note)
}

// ttl sends PUT /v1/agent/check/{verb}/:id.
func (c *Client) ttl(ctx context.Context, verb, id, note string) error {
	if id == "" {
		return fmt.Errorf("check %s: empty check ID", verb)
	}
	var q url.Values
	if note != "" {
		q = url.Values{"note": {note}}
	}
	_, err := c.do(ctx, http.MethodPut, "/v1/agent/check/"+verb+"/"+segment(id), q, nil, nil)
	return err
}

// checkUpdate is the body of PUT /v1/agent/check/update/:id.
type checkUpdate struct {
	Status string
	Output string
}

// UpdateTTL sets a TTL check's status and output, as PassTTL, WarnTTL and
// FailTTL do, with the output in the request's body rather than its URL.
// The argument order is Consul's. status is passing, warning or critical;
// as in Consul's client, pass, warn and fail are taken for them.
func (c *Client) UpdateTTL(ctx context.Context, id, output, status string) error {
	if id == "" {
		return errors.New("check update: empty check ID")
	}
	switch status {
	case "pass", HealthPassing:
		status = HealthPassing
	case "warn", HealthWarning:
		status = HealthWarning
	case "fail", HealthCritical:
		status = HealthCritical
	default:
		return fmt.Errorf("check update: status %q is not one of passing, warning, critical", status)
	}
	_, err := c.do(ctx, http.MethodPut, "/v1/agent/check/update/"+segment(id), nil,
		checkUpdate{Status: status, Output: output}, nil)
	return err
}

// AgentChecks lists the checks this agent runs, maintenance checks
// included, keyed by check ID, with their latest full output.
func (c *Client) AgentChecks(ctx context.Context) (map[string]*AgentCheck, error) {
	out, _, err := get[map[string]*AgentCheck](ctx, c, "/v1/agent/checks", nil)
	return out, err
}

// EnableNodeMaintenance puts the agent's node into maintenance mode: a
// critical check, "_node_maintenance", that every instance of the node
// carries, so that none of them is served as healthy. reason becomes the
// check's notes; empty gives a default one.
func (c *Client) EnableNodeMaintenance(ctx context.Context, reason string) error {
	return c.maintenance(ctx, "/v1/agent/maintenance", true, reason)
}

// DisableNodeMaintenance takes the node out of maintenance mode.
func (c *Client) DisableNodeMaintenance(ctx context.Context) error {
	return c.maintenance(ctx, "/v1/agent/maintenance", false, "")
}

// EnableServiceMaintenance puts one of the agent's services into
// maintenance mode (the check "_service_maintenance:<id>"). An unknown ID
// is an error for which IsNotFound reports true.
func (c *Client) EnableServiceMaintenance(ctx context.Context, id, reason string) error {
	if id == "" {
		return errors.New("service maintenance: empty service ID")
	}
	return c.maintenance(ctx, "/v1/agent/service/maintenance/"+segment(id), true, reason)
}

// DisableServiceMaintenance takes a service out of maintenance mode.
func (c *Client) DisableServiceMaintenance(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("service maintenance: empty service ID")
	}
	return c.maintenance(ctx, "/v1/agent/service/maintenance/"+segment(id), false, "")
}

func (c *Client) maintenance(ctx context.Context, path string, enable bool, reason string) error {
	q := url.Values{"enable": {strconv.FormatBool(enable)}}
	if reason != "" {
		q.Set("reason", reason)
	}
	_, err := c.do(ctx, http.MethodPut, path, q, nil, nil)
	return err
}
