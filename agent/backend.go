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

// RegisterService adds or replaces one of this agent's services, with its
// checks, and gossips it. Gossip happens after the catalog lock is
// released: memberlist calls into the agent (SetNode) while holding its
// own locks, so the agent never calls memberlist while holding a.mu.
func (a *Agent) RegisterService(s catalog.Service, checks []api.AgentServiceCheck, opts ...localapi.RegisterOptions) error {
	replace := len(opts) > 0 && opts[0].ReplaceExistingChecks
	a.regMu.Lock()
	defer a.regMu.Unlock()
	return a.registerService(s, checks, false, replace)
}

// registerService registers a service from the API or (config) from the
// config file; call with regMu held. Everything is validated before
// anything changes. With replace, the service's checks the registration
// does not list are dropped; a config registration always drops those
// an earlier version of the file defined.
func (a *Agent) registerService(s catalog.Service, checks []api.AgentServiceCheck, config, replace bool) error {
	s = s.Normalize()
	if err := s.Validate(); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	lcs, err := serviceChecks(s, checks)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	keep := map[string]bool{}
	for _, lc := range lcs {
		lc.config = config
		keep[lc.def.ID] = true
	}
	if err := a.checkConflicts(s.ID, lcs); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	// Which of the service's checks this registration drops.
	var dropped []string
	for _, id := range a.checksOf(s.ID) {
		if keep[id] || isMaintenance(id) {
			continue
		}
		if lc := a.checks[id]; !replace && !(config && lc != nil && lc.config) {
			continue
		}
		dropped = append(dropped, id)
	}
	// Kept first, then applied (persist_tx.go). The service before its
	// checks: a crash in between leaves a service without (some of) its
	// checks, or checks of a service it replaced, which the next start
	// drops; never a corrupt state.
	tx := a.newTx()
	data, err := serviceData(&s, config)
	if err == nil {
		err = tx.write(a.serviceFile(s.ID), data)
	}
	for _, id := range dropped {
		if err == nil {
			err = tx.write(a.hashedFile(checksDir, id), nil)
		}
	}
	for _, lc := range lcs {
		if err == nil {
			if data, err = checkData(lc); err == nil {
				err = tx.write(a.hashedFile(checksDir, lc.def.ID), data)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("register: not registered: %w", err)
	}

	var (
		e       catalog.Entry
		changed bool
	)
	a.write(func(c *catalog.Catalog) { e, changed, err = c.Put(s, a.now()) })
	if err != nil {
		return fmt.Errorf("register: %w", err) // validated above: not reached
	}
	var out []catalog.Entry
	if changed {
		out = append(out, e)
	}
	for _, id := range dropped {
		if t, ok := a.removeCheck(id); ok {
			out = append(out, t)
		}
	}
	out = append(out, a.addChecks(lcs)...)
	if config {
		a.configServices[s.ID] = true
	} else {
		delete(a.configServices, s.ID)
	}
	a.broadcast(out...)
	return nil
}

// DeregisterService removes one of this agent's services, its checks and
// its maintenance mode, and gossips the tombstones.
func (a *Agent) DeregisterService(id string) error {
	a.regMu.Lock()
	defer a.regMu.Unlock()
	return a.deregisterService(id)
}

func (a *Agent) deregisterService(id string) error {
	var known bool
	a.Read(func(c *catalog.Catalog) { _, known = c.LocalService(id) })
	if !known {
		return fmt.Errorf("service %q: %w", id, localapi.ErrNotFound)
	}
	checks := a.checksOf(id)
	// Kept first, then applied: the maintenance file, then the service's,
	// then its checks'. A crash in between leaves checks of no service,
	// which the next start drops, never a maintenance mode a later
	// registration of the ID would find.
	tx := a.newTx()
	var err error
	if tx != nil {
		m := a.maintenance()
		delete(m.Services, id)
		var data []byte
		if data, err = maintenanceData(m); err == nil {
			err = tx.write(a.maintenancePath(), data)
		}
		if err == nil {
			err = tx.write(a.serviceFile(id), nil)
		}
		for _, cid := range checks {
			if err == nil {
				err = tx.write(a.hashedFile(checksDir, cid), nil)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("deregister: still registered: %w", err)
	}
	var (
		e  catalog.Entry
		ok bool
	)
	a.write(func(c *catalog.Catalog) { e, ok = c.Delete(id, a.now()) })
	if !ok {
		return fmt.Errorf("service %q: %w", id, localapi.ErrNotFound)
	}
	out := []catalog.Entry{e}
	for _, cid := range checks {
		if t, ok := a.removeCheck(cid); ok {
			out = append(out, t)
		}
	}
	delete(a.configServices, id)
	a.broadcast(out...)
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
		m := a.member(n)
		m.ShoalLastHeardMs = a.lastHeardMs(n.Name)
		out = append(out, m)
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
	lo, hi := uint8(gossip.ProtocolMin), uint8(gossip.ProtocolMax)
	if n.Name != a.cfg.NodeName && a.g != nil {
		if l, h, ok := a.g.Protocols(n.Name); ok {
			lo, hi = l, h
		}
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
		DelegateMin: lo,
		DelegateMax: hi,
		DelegateCur: min(hi, gossip.ProtocolMax),
	}
}

// Self describes this agent.
func (a *Agent) Self() api.Self {
	ip, port := a.g.Advertised()
	a.mu.RLock()
	n, ok := a.cat.Node(a.cfg.NodeName)
	epoch := a.cat.LocalEpoch()
	a.mu.RUnlock()
	if !ok {
		n = catalog.Node{Name: a.cfg.NodeName, Status: catalog.StatusAlive, Meta: a.nodeMeta()}
	}
	n.Address, n.Port, n.Epoch = ip.String(), int(port), epoch
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
		Meta:   a.nodeMeta(), // Consul's agent/self shows the node's metadata
	}
}
