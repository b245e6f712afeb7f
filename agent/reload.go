package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// registerConfigServices makes the services the config file defines the
// ones the agent runs: it registers (or re-registers) each, and
// deregisters those an earlier version of the file defined and this one
// does not. Services registered over the API are left alone unless the
// file defines the same ID, which then becomes the file's.
func (a *Agent) registerConfigServices(regs []api.AgentServiceRegistration) error {
	a.regMu.Lock()
	defer a.regMu.Unlock()
	// Everything that could fail is checked before anything changes: a
	// file that cannot be applied whole leaves the running services as
	// they are.
	for i, r := range regs {
		s, checks := registrationService(r)
		s = s.Normalize()
		lcs, err := serviceChecks(s, checks)
		if err == nil {
			err = a.checkConflicts(s.ID, lcs)
		}
		if err != nil {
			return fmt.Errorf("services[%d]: %w", i, err)
		}
	}
	defined := map[string]bool{}
	var errs error
	for i, r := range regs {
		s, checks := registrationService(r)
		defined[s.Normalize().ID] = true // kept even if it fails below
		if err := a.registerService(s, checks, true, false); err != nil {
			errs = errors.Join(errs, fmt.Errorf("services[%d]: %w", i, err))
		}
	}
	for id := range a.configServices {
		if defined[id] {
			continue
		}
		if err := a.deregisterService(id); err != nil {
			errs = errors.Join(errs, err)
		}
		a.log.Info("service removed from the config file: deregistered", "service", id)
	}
	return errs
}

// validateServices checks config-file services and their checks the way a
// registration would, so that a bad one stops the agent at start (or a
// reload) with its place in the file.
func validateServices(regs []api.AgentServiceRegistration) error {
	for i, r := range regs {
		s, checks := registrationService(r)
		s = s.Normalize()
		if err := s.Validate(); err != nil {
			return fmt.Errorf("services[%d]: %w", i, err)
		}
		if _, err := serviceChecks(s, checks); err != nil {
			return fmt.Errorf("services[%d]: %w", i, err)
		}
	}
	return nil
}

// registrationService splits a Consul-shaped registration into the
// service and its checks.
func registrationService(r api.AgentServiceRegistration) (catalog.Service, []api.AgentServiceCheck) {
	s := catalog.Service{ID: r.ID, Name: r.Name, Tags: r.Tags, Address: r.Address, Port: r.Port, Meta: r.Meta}
	if r.Weights != nil {
		s.Weights = catalog.Weights{Passing: r.Weights.Passing, Warning: r.Weights.Warning}
	}
	var checks []api.AgentServiceCheck
	if r.Check != nil {
		checks = append(checks, *r.Check)
	}
	for _, c := range r.Checks {
		if c != nil {
			checks = append(checks, *c)
		}
	}
	return s, checks
}

// Reload reads the config file again and applies its service definitions
// and ACLs, and reads the HTTPS certificate files again (SIGHUP, `shoal
// reload`, PUT /v1/agent/reload). A file that does not load changes
// nothing. Other settings take effect at the next start.
func (a *Agent) Reload(ctx context.Context) error {
	// Certificates: the files the agent started with, read again (a
	// renewed certificate); a file that does not load keeps the old.
	if a.cfg.HTTPSAddr != "" {
		m, err := loadTLS(a.cfg.TLS)
		if err != nil {
			return fmt.Errorf("reload: %w", err)
		}
		a.tls.Store(m)
	}
	if a.cfg.ConfigFile == "" {
		if a.cfg.HTTPSAddr != "" {
			a.log.Info("reloaded the HTTPS certificates")
			return nil
		}
		return errors.New("reload: the agent was started without --config")
	}
	f, err := LoadConfigFile(a.cfg.ConfigFile)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	// Check the whole file before changing anything: a bad service (or
	// check) must leave the running ones as they are.
	if err := validateServices(f.Services); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	res := acl.Disabled()
	if f.ACL != nil {
		if res, err = acl.NewResolver(*f.ACL); err != nil {
			return fmt.Errorf("reload: %w", err)
		}
	}
	// The tokens are put in force first: a file whose services fail to
	// apply must not keep a token it removed alive.
	if a.acl.Load().Enabled() && !res.Enabled() {
		a.log.Warn("the reloaded config file turns ACLs off: every request may now do anything")
	}
	a.acl.Store(res)
	if err := a.registerConfigServices(f.Services); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	a.log.Info("reloaded the config file's services and ACLs; other settings apply at the next start", "file", a.cfg.ConfigFile, "services", len(f.Services), "acl", res.Enabled())
	return nil
}
