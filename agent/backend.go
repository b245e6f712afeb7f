package agent

import (
	"context"
	"fmt"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/gossip"
	"github.com/shoal-sd/shoal/localapi"
)

// Datacenter is the datacenter this agent serves.
func (a *Agent) Datacenter() string { return a.cfg.Datacenter }

// Read runs fn with the catalog under the read lock.
func (a *Agent) Read(fn func(c *catalog.Catalog)) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	fn(a.cat)
}

// Changed returns a channel closed at the next catalog change.
func (a *Agent) Changed() <-chan struct{} {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.changed
}

// RegisterService adds or replaces one of this agent's services and
// gossips it. Gossip happens after the lock is released: memberlist calls
// into the agent (SetNode) while holding its own locks, so the agent never
// calls memberlist while holding its own.
func (a *Agent) RegisterService(s catalog.Service) error {
	var (
		e       catalog.Entry
		changed bool
		err     error
	)
	a.write(func(c *catalog.Catalog) { e, changed, err = c.Put(s, a.now()) })
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if changed {
		a.g.Broadcast(e)
	}
	// Registered and gossiped even if the disk fails; the caller hears
	// that it would not survive a restart.
	if err := a.persistService(e.Service.ID); err != nil {
		a.log.Error("service not saved to the data dir", "id", e.Service.ID, "err", err)
		return fmt.Errorf("register: %w", err)
	}
	return nil
}

// DeregisterService removes one of this agent's services and gossips the
// tombstone.
func (a *Agent) DeregisterService(id string) error {
	var (
		e  catalog.Entry
		ok bool
	)
	a.write(func(c *catalog.Catalog) { e, ok = c.Delete(id, a.now()) })
	if !ok {
		return fmt.Errorf("service %q: %w", id, localapi.ErrNotFound)
	}
	a.g.Broadcast(e)
	if err := a.persistService(id); err != nil {
		a.log.Error("deregistration not saved to the data dir", "id", id, "err", err)
		return fmt.Errorf("deregister: %w", err)
	}
	return nil
}

// LocalServices lists this agent's own services.
func (a *Agent) LocalServices() []catalog.Service {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.cat.LocalServices()
}

// Join joins the cluster through the given agents.
func (a *Agent) Join(ctx context.Context, addrs []string) (int, error) {
	return a.g.Join(addrs)
}

// Leave leaves the cluster gracefully, then makes Run shut the agent down.
func (a *Agent) Leave(ctx context.Context) error {
	err := a.leave()
	a.stopOnce.Do(func() { close(a.stop) })
	return err
}

// Members lists the cluster's nodes as this agent knows them, failed and
// departed ones included until they are reaped.
func (a *Agent) Members() []api.AgentMember {
	a.mu.RLock()
	nodes := a.cat.Nodes()
	a.mu.RUnlock()
	out := make([]api.AgentMember, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, a.member(n))
	}
	return out
}

func (a *Agent) member(n catalog.Node) api.AgentMember {
	status := api.MemberAlive
	switch n.Status {
	case catalog.StatusDead:
		status = api.MemberFailed
	case catalog.StatusLeft:
		status = api.MemberLeft
	case catalog.StatusUnknown:
		status = api.MemberNone
	}
	return api.AgentMember{
		Name:   n.Name,
		Addr:   n.Address,
		Port:   uint16(n.Port),
		Status: status,
		Tags: map[string]string{
			"dc":    a.cfg.Datacenter,
			"role":  "node",
			"build": n.Meta["shoal-version"],
			"epoch": fmt.Sprint(n.Epoch),
		},
		ProtocolMin: memberlist.ProtocolVersionMin,
		ProtocolMax: memberlist.ProtocolVersionMax,
		ProtocolCur: memberlist.ProtocolVersion2Compatible,
		DelegateMin: gossip.ProtocolVersion,
		DelegateMax: gossip.ProtocolVersion,
		DelegateCur: gossip.ProtocolVersion,
	}
}

// Self describes this agent.
func (a *Agent) Self() api.Self {
	ln := a.g.Memberlist().LocalNode()
	a.mu.RLock()
	n, ok := a.cat.Node(a.cfg.NodeName)
	epoch := a.cat.LocalEpoch()
	a.mu.RUnlock()
	if !ok {
		n = catalog.Node{Name: a.cfg.NodeName, Status: catalog.StatusAlive,
			Meta: map[string]string{"shoal-version": Version}}
	}
	n.Address, n.Port, n.Epoch = ln.Addr.String(), int(ln.Port), epoch
	return api.Self{
		Config: api.SelfConfig{
			Datacenter:        a.cfg.Datacenter,
			PrimaryDatacenter: a.cfg.Datacenter,
			NodeName:          a.cfg.NodeName,
			NodeID:            catalog.NodeID(a.cfg.NodeName),
			Server:            false,
			Version:           Version,
		},
		Member: a.member(n),
		Meta:   map[string]string{},
	}
}
