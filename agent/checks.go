package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/health"
	"github.com/shoal-sd/shoal/localapi"
)

// localCheck is one check this agent runs: the definition the health
// manager runs, and the registration it came from, kept for the data dir.
type localCheck struct {
	reg    api.AgentCheckRegistration // ID, Name and ServiceID filled in
	def    health.Definition
	config bool // defined in the config file: never persisted
}

// Default maintenance reasons, when the operator gives none.
const (
	nodeMaintenanceReason    = "Maintenance mode is enabled for this node, but no reason was provided."
	serviceMaintenanceReason = "Maintenance mode is enabled for this service, but no reason was provided."
)

// startChecks creates the health manager and starts every check known so
// far (restored from the data dir or defined in the config file). The
// manager's callbacks run on its goroutines; they take a.mu but never
// a.regMu, which registrations hold while they call the manager.
func (a *Agent) startChecks(ctx context.Context) {
	a.health = health.NewManager(ctx, health.Config{
		Logger:     a.log,
		Notify:     a.checkResult,
		Deregister: a.deregisterCritical,
		Damping:    a.cfg.Damping,
		Now:        a.now,
	})
	a.regMu.Lock()
	defer a.regMu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(a.checks)) {
		if err := a.health.Add(a.checks[id].def); err != nil {
			a.log.Error("check not started", "check", id, "err", err)
		}
	}
}

// checkResult records a check's new state in the catalog and gossips it.
func (a *Agent) checkResult(r health.Result) {
	var (
		e       catalog.Entry
		changed bool
		err     error
	)
	a.write(func(c *catalog.Catalog) {
		ck, ok := c.LocalCheck(r.ID)
		if !ok {
			return // removed while it ran
		}
		ck.Status, ck.Damped = r.Status, r.Damped
		ck.Output = catalog.TruncateOutput(r.Output, catalog.MaxOutputHead)
		e, changed, err = c.PutCheck(ck, a.now())
	})
	if err != nil {
		a.log.Error("check state not recorded", "check", r.ID, "err", err)
		return
	}
	if changed {
		a.log.Debug("check state", "check", r.ID, "status", r.Status.String(), "damped", r.Damped)
		a.broadcast(e)
		if a.metrics != nil {
			a.metrics.checkResult(r.Status)
		}
	}
}

// deregisterCritical removes a service whose check stayed critical past
// DeregisterCriticalServiceAfter. It runs on its own goroutine: the
// manager calls it from the check's runner, which deregistration stops.
func (a *Agent) deregisterCritical(serviceID string) {
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.log.Warn("deregistering a service whose check stayed critical", "service", serviceID)
		if err := a.DeregisterService(serviceID); err != nil && !errors.Is(err, localapi.ErrNotFound) {
			a.log.Error("deregistering a critical service", "service", serviceID, "err", err)
		}
	}()
}

// serviceChecks converts the checks of a service registration, all or
// none: any bad check fails the registration before anything changes.
func serviceChecks(s catalog.Service, checks []api.AgentServiceCheck) ([]*localCheck, error) {
	s = s.Normalize()
	out := make([]*localCheck, 0, len(checks))
	seen := map[string]bool{}
	for i, c := range checks {
		field := "Check"
		if len(checks) > 1 {
			field = fmt.Sprintf("Checks[%d]", i)
		}
		def, err := health.FromAPI(c, s.ID, s.Name, i, len(checks), field)
		if err != nil {
			return nil, err
		}
		if seen[def.ID] {
			return nil, &catalog.FieldError{Field: field + ".CheckID", Msg: fmt.Sprintf("%q is used twice", def.ID)}
		}
		if isMaintenance(def.ID) {
			return nil, &catalog.FieldError{Field: field + ".CheckID", Msg: fmt.Sprintf("%q is reserved for maintenance mode", def.ID)}
		}
		seen[def.ID] = true
		c.CheckID, c.Name, c.Notes = def.ID, def.Name, def.Notes
		lc := &localCheck{def: def, reg: api.AgentCheckRegistration{
			ID: def.ID, Name: def.Name, Notes: def.Notes, ServiceID: s.ID, AgentServiceCheck: c,
		}}
		if err := lc.initial().Validate(); err != nil {
			return nil, prefixField(err, field)
		}
		out = append(out, lc)
	}
	return out, nil
}

func prefixField(err error, prefix string) error {
	var fe *catalog.FieldError
	if errors.As(err, &fe) {
		fe.Field = prefix + "." + fe.Field
	}
	return err
}

// initial is the check's catalog state before its first result.
func (lc *localCheck) initial() catalog.Check {
	st := lc.def.Status
	if st == 0 {
		st = catalog.HealthCritical
	}
	return catalog.Check{
		ID:        lc.def.ID,
		Name:      lc.def.Name,
		ServiceID: lc.def.ServiceID,
		Type:      lc.def.Type(),
		Status:    st,
		Notes:     catalog.TruncateOutput(lc.def.Notes, catalog.MaxNotesLen),
	}
}

// checkConflicts refuses checks of a registration of serviceID whose IDs
// another service or the node already uses; call with regMu held.
func (a *Agent) checkConflicts(serviceID string, lcs []*localCheck) error {
	for i, lc := range lcs {
		if old := a.checks[lc.def.ID]; old != nil && old.def.ServiceID != serviceID {
			field := "Check.CheckID"
			if len(lcs) > 1 {
				field = fmt.Sprintf("Checks[%d].CheckID", i)
			}
			return &catalog.FieldError{Field: field, Msg: fmt.Sprintf("%q is already a check of another service or of the node", lc.def.ID)}
		}
	}
	return nil
}

// addChecks puts checks in the catalog in their initial state, starts
// them, and returns the entries to gossip. A check registered again with
// the same definition keeps running, and keeps its state: apps and
// registrators re-register what they have. Call with regMu held.
func (a *Agent) addChecks(checks []*localCheck) []catalog.Entry {
	var out []catalog.Entry
	for _, lc := range checks {
		if old := a.checks[lc.def.ID]; old != nil && reflect.DeepEqual(old.def, lc.def) {
			a.checks[lc.def.ID] = lc // the registration may differ (config or API)
			continue
		}
		var (
			e       catalog.Entry
			changed bool
			err     error
		)
		a.write(func(c *catalog.Catalog) { e, changed, err = c.PutCheck(lc.initial(), a.now()) })
		if err != nil {
			a.log.Error("check not recorded", "check", lc.def.ID, "err", err) // validated before
			continue
		}
		if changed {
			out = append(out, e)
		}
		a.checks[lc.def.ID] = lc
		if a.health != nil {
			if err := a.health.Add(lc.def); err != nil {
				a.log.Error("check not started", "check", lc.def.ID, "err", err)
			}
		}
	}
	return out
}

// removeCheck stops a check and tombstones it; call with regMu held.
func (a *Agent) removeCheck(id string) (catalog.Entry, bool) {
	delete(a.checks, id)
	if a.health != nil {
		a.health.Remove(id)
	}
	var (
		e  catalog.Entry
		ok bool
	)
	a.write(func(c *catalog.Catalog) { e, ok = c.DeleteCheck(id, a.now()) })
	return e, ok
}

// checksOf lists the IDs of the checks bound to a service, maintenance
// included; call with regMu held.
func (a *Agent) checksOf(serviceID string) []string {
	var ids []string
	for id, lc := range a.checks {
		if lc.def.ServiceID == serviceID {
			ids = append(ids, id)
		}
	}
	a.Read(func(c *catalog.Catalog) {
		if _, ok := c.LocalCheck(catalog.ServiceMaintenanceID(serviceID)); ok {
			ids = append(ids, catalog.ServiceMaintenanceID(serviceID))
		}
	})
	sort.Strings(ids)
	return ids
}

// RegisterCheck adds or replaces a check of this agent.
func (a *Agent) RegisterCheck(r api.AgentCheckRegistration) error {
	def, err := health.FromCheckRegistration(r)
	if err != nil {
		return fmt.Errorf("register check: %w", err)
	}
	r.ID, r.Name, r.Notes = def.ID, def.Name, def.Notes
	lc := &localCheck{reg: r, def: def}
	if err := lc.initial().Validate(); err != nil {
		return fmt.Errorf("register check: %w", err)
	}
	if isMaintenance(def.ID) {
		return fmt.Errorf("register check: %w", &catalog.FieldError{Field: "ID", Msg: fmt.Sprintf("%q is reserved for maintenance mode", def.ID)})
	}
	a.regMu.Lock()
	defer a.regMu.Unlock()
	if def.ServiceID != "" {
		var ok bool
		a.Read(func(c *catalog.Catalog) { _, ok = c.LocalService(def.ServiceID) })
		if !ok {
			return fmt.Errorf("register check: %w", &catalog.FieldError{Field: "ServiceID", Msg: fmt.Sprintf("%q is not a service of this agent", def.ServiceID)})
		}
	}
	if old := a.checks[def.ID]; old != nil && old.config {
		lc.config = false // the API takes it over, as Consul's last write wins
	}
	data, err := checkData(lc)
	if err == nil {
		err = a.newTx().write(a.hashedFile(checksDir, def.ID), data)
	}
	if err != nil {
		return fmt.Errorf("register check: not registered: %w", err)
	}
	a.broadcast(a.addChecks([]*localCheck{lc})...)
	return nil
}

// DeregisterCheck removes a check of this agent.
func (a *Agent) DeregisterCheck(id string) error {
	if isMaintenance(id) {
		return fmt.Errorf("check %q: use the maintenance endpoints: %w", id, localapi.ErrNotFound)
	}
	a.regMu.Lock()
	defer a.regMu.Unlock()
	if a.checks[id] == nil {
		return fmt.Errorf("check %q: %w", id, localapi.ErrNotFound)
	}
	if err := a.newTx().write(a.hashedFile(checksDir, id), nil); err != nil {
		return fmt.Errorf("deregister check: still registered: %w", err)
	}
	if e, ok := a.removeCheck(id); ok {
		a.broadcast(e)
	}
	return nil
}

// UpdateCheck reports a TTL check's state.
func (a *Agent) UpdateCheck(id string, status catalog.Health, output string) error {
	if a.health == nil {
		return fmt.Errorf("check %q: the agent is not running: %w", id, localapi.ErrNotFound)
	}
	err := a.health.UpdateTTL(id, status, output)
	switch {
	case errors.Is(err, health.ErrNotFound):
		return fmt.Errorf("check %q: %w", id, localapi.ErrNotFound)
	case errors.Is(err, health.ErrNotTTL):
		return &catalog.FieldError{Field: "CheckID", Msg: fmt.Sprintf("%q is not a TTL check", id)}
	}
	return err
}

// AgentChecks lists this agent's checks as GET /v1/agent/checks shows
// them: the catalog's state with the full output the manager keeps.
func (a *Agent) AgentChecks() []api.AgentCheck {
	var views []catalog.CheckView
	a.Read(func(c *catalog.Catalog) { views = c.LocalChecks() })
	out := make([]api.AgentCheck, 0, len(views))
	for _, v := range views {
		ck := v.Check
		ac := api.AgentCheck{
			Node:        a.cfg.NodeName,
			CheckID:     ck.ID,
			Name:        ck.Name,
			Status:      ck.Status.String(),
			Notes:       ck.Notes,
			Output:      ck.Output,
			ServiceID:   ck.ServiceID,
			ServiceName: v.ServiceName,
			ServiceTags: v.ServiceTags,
			Type:        ck.Type,
			Damped:      ck.Damped,
		}
		if ac.ServiceTags == nil {
			ac.ServiceTags = []string{}
		}
		if a.health != nil {
			if st, ok := a.health.Get(ck.ID); ok {
				ac.Notes = st.Definition.Notes
				if !st.Result.At.IsZero() {
					ac.Output = st.Result.Output
				}
				if st.Definition.Interval > 0 {
					ac.Interval = st.Definition.Interval.String()
				}
				if st.Definition.Timeout > 0 {
					ac.Timeout = st.Definition.Timeout.String()
				}
				ac.Definition = definitionOf(st.Definition)
			}
		}
		out = append(out, ac)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CheckID < out[j].CheckID })
	return out
}

func definitionOf(d health.Definition) api.HealthCheckDefinition {
	hd := api.HealthCheckDefinition{
		HTTP: health.RedactURL(d.HTTP), Header: health.RedactHeader(d.Header), Method: d.Method, Body: d.Body,
		TLSSkipVerify: d.TLSSkipVerify, TCP: d.TCP, GRPC: d.GRPC, GRPCUseTLS: d.GRPCUseTLS,
	}
	if d.Interval > 0 {
		hd.IntervalDuration = d.Interval.String()
	}
	if d.Timeout > 0 {
		hd.TimeoutDuration = d.Timeout.String()
	}
	if d.TTL > 0 {
		hd.TTLDuration = d.TTL.String()
	}
	if d.DeregisterCriticalServiceAfter > 0 {
		hd.DeregisterCriticalServiceAfterDuration = d.DeregisterCriticalServiceAfter.String()
	}
	return hd
}

func isMaintenance(id string) bool {
	return id == catalog.NodeMaintenanceID || len(id) > len(catalog.ServiceMaintenancePrefix) && id[:len(catalog.ServiceMaintenancePrefix)] == catalog.ServiceMaintenancePrefix
}

// NodeMaintenance puts the node into maintenance mode or takes it out.
func (a *Agent) NodeMaintenance(enable bool, reason string) error {
	if reason == "" {
		reason = nodeMaintenanceReason
	}
	a.regMu.Lock()
	defer a.regMu.Unlock()
	if err := a.keepMaintenance("", enable, reason); err != nil {
		return err
	}
	return a.setMaintenance("", enable, reason)
}

// ServiceMaintenance puts one local service into maintenance mode or
// takes it out.
func (a *Agent) ServiceMaintenance(id string, enable bool, reason string) error {
	if reason == "" {
		reason = serviceMaintenanceReason
	}
	a.regMu.Lock()
	defer a.regMu.Unlock()
	var ok bool
	a.Read(func(c *catalog.Catalog) { _, ok = c.LocalService(id) })
	if !ok {
		return fmt.Errorf("service %q: %w", id, localapi.ErrNotFound)
	}
	if err := a.keepMaintenance(id, enable, reason); err != nil {
		return err
	}
	return a.setMaintenance(id, enable, reason)
}

// keepMaintenance writes the maintenance file as it will be once the
// node's (serviceID "") or a service's mode is set, before it is set;
// call with regMu held.
func (a *Agent) keepMaintenance(serviceID string, enable bool, reason string) error {
	tx := a.newTx()
	if tx == nil {
		return nil
	}
	ck := maintenanceCheck(serviceID, reason)
	if err := ck.Validate(); enable && err != nil {
		return fmt.Errorf("maintenance: %w", err)
	}
	m := a.maintenance()
	switch {
	case serviceID == "" && enable:
		m.Node = &ck.Notes
	case serviceID == "":
		m.Node = nil
	case enable:
		m.Services[serviceID] = ck.Notes
	default:
		delete(m.Services, serviceID)
	}
	data, err := maintenanceData(m)
	if err == nil {
		err = tx.write(a.maintenancePath(), data)
	}
	if err != nil {
		return fmt.Errorf("maintenance: not changed: %w", err)
	}
	return nil
}

// setMaintenance adds or removes the maintenance check of the node
// (serviceID "") or of a service, and gossips it; call with regMu held.
func (a *Agent) setMaintenance(serviceID string, enable bool, reason string) error {
	ck := maintenanceCheck(serviceID, reason)
	var (
		e       catalog.Entry
		changed bool
		err     error
	)
	a.write(func(c *catalog.Catalog) {
		if enable {
			e, changed, err = c.PutCheck(ck, a.now())
		} else {
			e, changed = c.DeleteCheck(ck.ID, a.now())
		}
	})
	if err != nil {
		return fmt.Errorf("maintenance: %w", err)
	}
	if changed {
		a.log.Info("maintenance mode", "service", serviceID, "enabled", enable, "reason", reason)
		a.broadcast(e)
	}
	return nil
}

// maintenanceCheck is the check that puts the node (serviceID "") or a
// service in maintenance.
func maintenanceCheck(serviceID, reason string) catalog.Check {
	ck := catalog.Check{
		ID:     catalog.NodeMaintenanceID,
		Name:   "Node Maintenance Mode",
		Type:   catalog.MaintenanceType,
		Status: catalog.HealthCritical,
		Notes:  catalog.TruncateOutput(reason, catalog.MaxNotesLen),
	}
	if serviceID != "" {
		ck.ID, ck.Name, ck.ServiceID = catalog.ServiceMaintenanceID(serviceID), "Service Maintenance Mode", serviceID
	}
	return ck
}

// broadcast gossips entries once gossip runs (restoring the data dir
// happens before; Run broadcasts everything restored).
func (a *Agent) broadcast(es ...catalog.Entry) {
	if a.g != nil && len(es) > 0 {
		a.g.Broadcast(es...)
	}
}

// Waiting for the checks to stop at shutdown is bounded by the manager:
// every run has a timeout.
func (a *Agent) stopChecks() {
	if a.health != nil {
		a.health.Close()
	}
	a.bg.Wait()
}
