// Package agent wires a Shoal agent together: configuration, the catalog,
// the gossip layer and the local HTTP API, with an ordered lifecycle.
// New starts nothing; Run owns every goroutine and returns after an
// orderly shutdown.
package agent

import (
	"context"
	"errors"
	"log/slog"
)

// Version is Shoal's version.
const Version = "0.1.0"

// Agent is one Shoal agent.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	ready chan struct{}
}

// New validates cfg and builds an agent. It binds nothing.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, log: log, ready: make(chan struct{})}, nil
}

// Run starts the agent and blocks until ctx ends or the agent is told to
// leave; it then leaves the cluster gracefully and shuts down.
func (a *Agent) Run(ctx context.Context) error { return errors.New("not implemented yet") }

// Ready is closed once the agent listens and has joined its Join peers.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// HTTPAddr is the address the HTTP API listens on (valid after Ready).
func (a *Agent) HTTPAddr() string { return "" }

// GossipAddr is the advertised gossip address, host:port (after Ready).
func (a *Agent) GossipAddr() string { return "" }
