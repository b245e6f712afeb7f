package health_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/health"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// Tests run checks every few tens of milliseconds.
func TestMain(m *testing.M) {
	health.MinInterval = time.Millisecond
	os.Exit(m.Run())
}

// recorder keeps what a Manager tells its callbacks.
type recorder struct {
	mu      sync.Mutex
	results []health.Result
	deregs  []string
	onNote  func(health.Result) // called under mu, for tests that sample state at Notify time
}

func (r *recorder) notify(res health.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.onNote != nil {
		r.onNote(res)
	}
	r.results = append(r.results, res)
}

func (r *recorder) deregister(serviceID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deregs = append(r.deregs, serviceID)
}

// of returns the results told about check id, in order.
func (r *recorder) of(id string) []health.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []health.Result
	for _, res := range r.results {
		if res.ID == id {
			out = append(out, res)
		}
	}
	return out
}

func (r *recorder) deregistered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.deregs...)
}

// newManager starts a Manager whose callbacks go to a recorder, with flap
// damping off unless cfg sets it, and closes it when the test ends.
func newManager(t testing.TB, cfg health.Config) (*health.Manager, *recorder) {
	t.Helper()
	rec := &recorder{}
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger(t)
	}
	cfg.Notify = rec.notify
	cfg.Deregister = rec.deregister
	if cfg.Damping == (health.Damping{}) {
		cfg.Damping.Disabled = true
	}
	m := health.NewManager(context.Background(), cfg)
	t.Cleanup(m.Close)
	return m, rec
}

func mustAdd(t testing.TB, m *health.Manager, d health.Definition) {
	t.Helper()
	if err := m.Add(d); err != nil {
		t.Fatalf("Add(%+v) = %v", d, err)
	}
}

// waitStatus waits until check id reports want (not damped) and returns
// its state.
func waitStatus(t testing.TB, m *health.Manager, id string, want catalog.Health) health.State {
	t.Helper()
	return waitOutput(t, m, id, want, "")
}

// waitOutput waits until check id reports want (not damped) with an
// output that contains substr: a run that timed out on a loaded machine
// may come first, with another output.
func waitOutput(t testing.TB, m *health.Manager, id string, want catalog.Health, substr string) health.State {
	t.Helper()
	var st health.State
	testutil.WaitFor(t, 10*time.Second, func() error {
		var ok bool
		st, ok = m.Get(id)
		if !ok {
			return fmt.Errorf("check %q is gone", id)
		}
		if st.Result.Status != want || st.Result.Damped || !strings.Contains(st.Result.Output, substr) {
			return fmt.Errorf("check %q is %v (damped %v, output %q), want %v with %q",
				id, st.Result.Status, st.Result.Damped, st.Result.Output, want, substr)
		}
		return nil
	})
	return st
}

// fakeClock is a Config.Now that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
