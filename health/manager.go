package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoal-sd/shoal/catalog"
)

// Errors of UpdateTTL and Add, for callers that branch on them (wrapped:
// use errors.Is).
var (
	ErrNotFound = errors.New("no such check")
	ErrNotTTL   = errors.New("not a TTL check")
	ErrClosed   = errors.New("health checks are shut down")
)

// DefaultOutputUpdateInterval is Config.OutputUpdateInterval's default,
// Consul's check_update_interval.
const DefaultOutputUpdateInterval = 5 * time.Minute

// Result is one check's reported state.
type Result struct {
	ID        string
	ServiceID string // "" for a node check
	Status    catalog.Health
	// Output is the output of the latest run or TTL update: valid UTF-8
	// of at most MaxOutput bytes (the Definition's OutputMaxSize), cut
	// between characters.
	Output string
	Damped bool      // held at its worse state by flap damping
	At     time.Time // when the latest run finished, or the state last changed
}

// Config configures a Manager. The zero value works: nothing is told.
type Config struct {
	// Logger receives the manager's log lines, tagged component=health;
	// nil discards them.
	Logger *slog.Logger
	// Notify is told a check's Result when its Status or Damped changes,
	// when its Output changed and OutputUpdateInterval has passed since
	// the check's last Notify, and once when the check is added (its
	// initial state). It is called from the manager's goroutines, never
	// concurrently for the same check and never while the manager's lock
	// is held; it must not block for long, and must not call UpdateTTL
	// for the check it is told about. A Notify already under way when
	// Remove (or Add replacing the check) returns may still complete, so
	// a receiver should ignore checks it no longer has; a replacing check
	// is told of only after the replaced one's last Notify has returned.
	Notify func(Result)
	// Deregister is asked to remove a service whose check has reported
	// critical for longer than its DeregisterCriticalServiceAfter; once
	// for each critical stretch. Called like Notify.
	Deregister func(serviceID string)
	// Damping configures flap damping; the zero value is DefaultDamping.
	Damping Damping
	// OutputUpdateInterval is how long a change of output alone waits
	// before it is notified; 0 means DefaultOutputUpdateInterval.
	OutputUpdateInterval time.Duration
	// Now is the clock for damping, deregistration and Result.At; nil
	// means time.Now. Timers wait the real durations computed from it.
	Now func() time.Time
}

// State is a check as GET /v1/agent/checks shows it.
type State struct {
	Definition Definition
	Result     Result
}

// Manager runs health checks, one goroutine per check.
type Manager struct {
	ctx     context.Context
	cancel  context.CancelFunc
	cfg     Config
	log     *slog.Logger
	clients clients
	wg      sync.WaitGroup

	mu     sync.Mutex
	checks map[string]*runner
	// draining holds the done channels of removed checks whose goroutines
	// may still be ending, so that a check added again under the same ID
	// is told of only after the removed one's last Notify.
	draining map[string]<-chan struct{}
	closed   bool
}

// NewManager returns a Manager whose checks run until ctx ends or Close
// is called.
func NewManager(ctx context.Context, cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OutputUpdateInterval <= 0 {
		cfg.OutputUpdateInterval = DefaultOutputUpdateInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Damping = cfg.Damping.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	return &Manager{
		ctx:      ctx,
		cancel:   cancel,
		cfg:      cfg,
		log:      cfg.Logger.With("component", "health"),
		checks:   make(map[string]*runner),
		draining: make(map[string]<-chan struct{}),
	}
}

// Add validates d and starts running it, replacing the check of the same
// ID if there is one: the old runner is stopped and nothing of its state
// is kept. An HTTP, TCP or gRPC check first runs after a random stagger
// within its Interval, so that checks added together never run in
// lock-step; a TTL check's TTL starts now. Add never waits for a run.
func (m *Manager) Add(d Definition) error {
	if err := d.Validate(); err != nil {
		return err
	}
	d = d.clone()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.ctx.Err() != nil {
		return fmt.Errorf("health: add check %q: %w", d.ID, ErrClosed)
	}
	var prev <-chan struct{}
	if old := m.checks[d.ID]; old != nil {
		old.cancel()
		prev = old.done
	} else if done, ok := m.draining[d.ID]; ok {
		prev = done
		delete(m.draining, d.ID)
	}
	r := m.newRunner(d)
	m.checks[d.ID] = r
	m.wg.Add(1)
	go r.run(prev)
	return nil
}

// Remove stops the check with this ID, without waiting for a run under
// way to end; it reports whether there was one.
func (m *Manager) Remove(id string) bool {
	m.mu.Lock()
	r, ok := m.checks[id]
	delete(m.checks, id)
	if ok {
		r.cancel()
		m.draining[id] = r.done
	}
	m.mu.Unlock()
	return ok
}

// UpdateTTL sets the state of a TTL check and restarts its TTL. It
// returns once the update has taken effect (Get shows it, and Notify has
// been told if it had to be), so it must not be called from Notify. The
// errors wrap ErrNotFound and ErrNotTTL; a status that is not one of the
// three is a *catalog.FieldError for "Status".
func (m *Manager) UpdateTTL(id string, status catalog.Health, output string) error {
	if !status.Valid() {
		return &catalog.FieldError{Field: "Status", Msg: "must be passing, warning or critical"}
	}
	m.mu.Lock()
	r := m.checks[id]
	m.mu.Unlock()
	if r == nil {
		return fmt.Errorf("health: update check %q: %w", id, ErrNotFound)
	}
	if r.def.Type() != TypeTTL {
		return fmt.Errorf("health: update check %q: it is a %s check: %w", id, strings.ToUpper(r.def.Type()), ErrNotTTL)
	}
	u := ttlUpdate{outcome{status, cleanOutput(output, r.def.outputMax())}, make(chan struct{})}
	select {
	case r.updates <- u:
	case <-r.done:
		return fmt.Errorf("health: update check %q: %w", id, ErrNotFound)
	}
	<-u.done
	return nil
}

// Get returns the check with this ID.
func (m *Manager) Get(id string) (State, bool) {
	m.mu.Lock()
	r, ok := m.checks[id]
	m.mu.Unlock()
	if !ok {
		return State{}, false
	}
	return r.state(), true
}

// List returns every check, sorted by ID.
func (m *Manager) List() []State {
	m.mu.Lock()
	rs := make([]*runner, 0, len(m.checks))
	for _, r := range m.checks {
		rs = append(rs, r)
	}
	m.mu.Unlock()
	out := make([]State, len(rs))
	for i, r := range rs {
		out[i] = r.state()
	}
	slices.SortFunc(out, func(a, b State) int { return strings.Compare(a.Definition.ID, b.Definition.ID) })
	return out
}

// Close stops every check and waits for all of the manager's goroutines
// to end. It may be called more than once.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	m.clients.closeIdle()
}

// ttlUpdate is an UpdateTTL on its way to the check's goroutine, which
// closes done once it has taken effect.
type ttlUpdate struct {
	o    outcome
	done chan struct{}
}

// runner is one check's goroutine and what it shares.
type runner struct {
	m       *Manager
	def     Definition // never changes after Add
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed when the goroutine has ended
	updates chan ttlUpdate

	mu  sync.Mutex
	res Result // the latest reported state, for Get

	t tracker // the goroutine's own
}

func (m *Manager) newRunner(d Definition) *runner {
	ctx, cancel := context.WithCancel(m.ctx)
	r := &runner{
		m:       m,
		def:     d,
		log:     m.log.With("check", d.ID),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		updates: make(chan ttlUpdate),
	}
	r.t = newTracker(&r.def, m.cfg.Damping, m.cfg.OutputUpdateInterval, m.cfg.Now())
	r.res = r.t.res
	return r
}

func (r *runner) state() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return State{Definition: r.def.clone(), Result: r.res}
}

// run is the check's goroutine. prev, when not nil, is the done channel
// of the check this one replaces: waiting for it keeps the replaced
// check's last Notify ahead of this one's first.
func (r *runner) run(prev <-chan struct{}) {
	defer r.m.wg.Done()
	defer func() {
		r.m.mu.Lock()
		if r.m.draining[r.def.ID] == r.done {
			delete(r.m.draining, r.def.ID)
		}
		r.m.mu.Unlock()
	}()
	defer close(r.done)
	defer r.cancel()
	if prev != nil {
		select {
		case <-prev:
		case <-r.ctx.Done():
			return
		}
	}
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	r.settle(wake)

	var probe, ttl <-chan time.Time
	var probeTimer, ttlTimer *time.Timer
	if r.def.Type() == TypeTTL {
		ttlTimer = time.NewTimer(r.def.TTL)
		defer ttlTimer.Stop()
		ttl = ttlTimer.C
	} else {
		probeTimer = time.NewTimer(rand.N(r.def.Interval))
		defer probeTimer.Stop()
		probe = probeTimer.C
	}
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-probe:
			start := time.Now()
			o := runProbe(r.ctx, &r.m.clients, &r.def)
			if r.ctx.Err() != nil {
				return // removed: what the cancelled run found is not the service's fault
			}
			r.t.record(r.m.cfg.Now(), o)
			r.settle(wake)
			probeTimer.Reset(max(0, r.def.Interval-time.Since(start)))
		case <-ttl:
			r.t.record(r.m.cfg.Now(), outcome{catalog.HealthCritical, "TTL expired"})
			r.settle(wake)
		case u := <-r.updates:
			ttlTimer.Reset(r.def.TTL)
			r.t.record(r.m.cfg.Now(), u.o)
			r.settle(wake)
			close(u.done)
		case <-wake.C:
			r.settle(wake)
		}
	}
}

// settle publishes the tracker's state after something happened: it lets
// time pass (damping), stores the Result for Get, tells Notify and
// Deregister what is due, and sets wake for the next thing that will be.
func (r *runner) settle(wake *time.Timer) {
	now := r.m.cfg.Now()
	prev := r.res.Status
	r.t.tick(now)
	res := r.t.res
	r.mu.Lock()
	r.res = res
	r.mu.Unlock()
	if res.Status != prev {
		r.log.Info("check changed state", "from", prev, "to", res.Status, "damped", res.Damped,
			"output", catalog.TruncateOutput(res.Output, catalog.MaxOutputHead))
	}
	if r.t.notifyDue(now) {
		r.t.markNotified(now)
		if r.m.cfg.Notify != nil && r.ctx.Err() == nil {
			r.m.cfg.Notify(res)
		}
	}
	if r.t.deregisterDue(now) {
		r.t.deregistered = true
		r.log.Warn("check critical too long: deregistering its service", "service", r.def.ServiceID,
			"after", r.def.DeregisterCriticalServiceAfter)
		if r.m.cfg.Deregister != nil && r.ctx.Err() == nil {
			r.m.cfg.Deregister(r.def.ServiceID)
		}
	}
	if at, ok := r.t.nextWake(); ok {
		wake.Reset(max(0, at.Sub(now)))
	} else {
		wake.Stop()
	}
}
