package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Register adds a service instance to the agent, or replaces the one with
// the same ID (an empty ID means the name). The agent refuses an invalid
// registration with a 400 StatusError naming the field, and then keeps
// what it had.
func (c *Client) Register(ctx context.Context, reg *AgentServiceRegistration) error {
	if reg == nil {
		return errors.New("register: nil registration")
	}
	_, err := c.do(ctx, http.MethodPut, "/v1/agent/service/register", nil, reg, nil)
	return err
}

// Deregister removes one of the agent's own service instances. An unknown
// ID is an error for which IsNotFound reports true.
func (c *Client) Deregister(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("deregister: empty service ID")
	}
	_, err := c.do(ctx, http.MethodPut, "/v1/agent/service/deregister/"+segment(id), nil, nil, nil)
	return err
}

// AgentServices lists the services registered with this agent, keyed by
// service ID.
func (c *Client) AgentServices(ctx context.Context) (map[string]*AgentService, error) {
	out, _, err := get[map[string]*AgentService](ctx, c, "/v1/agent/services", nil)
	return out, err
}

// AgentService returns one of this agent's services by ID. An unknown ID is
// an error for which IsNotFound reports true.
func (c *Client) AgentService(ctx context.Context, id string) (*AgentService, error) {
	if id == "" {
		return nil, errors.New("agent service: empty service ID")
	}
	out, _, err := get[*AgentService](ctx, c, "/v1/agent/service/"+segment(id), nil)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, fmt.Errorf("agent service %q: agent answered null", id)
	}
	return out, nil
}

// Members lists the cluster's members as this agent sees them, itself
// included.
func (c *Client) Members(ctx context.Context) ([]*AgentMember, error) {
	out, _, err := get[[]*AgentMember](ctx, c, "/v1/agent/members", nil)
	return out, err
}

// Join asks the agent to join the cluster through another agent's gossip
// address, "host" or "host:port".
func (c *Client) Join(ctx context.Context, addr string) error {
	if addr == "" {
		return errors.New("join: empty address")
	}
	_, err := c.do(ctx, http.MethodPut, "/v1/agent/join/"+segment(addr), nil, nil, nil)
	return err
}

// Leave asks the agent to leave the cluster gracefully and shut down.
func (c *Client) Leave(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodPut, "/v1/agent/leave", nil, nil, nil)
	return err
}

// Self describes the agent: its configuration and its own member entry.
func (c *Client) Self(ctx context.Context) (*Self, error) {
	out, _, err := get[*Self](ctx, c, "/v1/agent/self", nil)
	if err == nil && out == nil {
		return nil, errors.New("agent self: agent answered null")
	}
	return out, err
}

// Reload makes the agent read its config file again and apply the
// services it defines. An agent started without a config file, or whose
// file does not load, answers with a StatusError and keeps running as it
// was.
func (c *Client) Reload(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodPut, "/v1/agent/reload", nil, nil, nil)
	return err
}
