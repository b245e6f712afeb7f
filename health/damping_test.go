package health

import (
	"testing"
	"time"

	"github.com/shoal-sd/shoal/catalog"
)

const (
	pass = catalog.HealthPassing
	warn = catalog.HealthWarning
	crit = catalog.HealthCritical
)

// step is one call of a damper or tracker at an offset from t0.
type step struct {
	at     time.Duration
	in     catalog.Health // 0: tick (let time pass) instead of an input
	want   catalog.Health
	damped bool
}

func TestDamper(t *testing.T) {
	cfg := Damping{Threshold: 3, Window: time.Minute, HoldDown: 30 * time.Second}
	s := time.Second
	tests := []struct {
		name  string
		cfg   Damping
		steps []step
	}{
		{"steady", cfg, []step{
			{0, pass, pass, false}, {s, pass, pass, false}, {10 * time.Minute, pass, pass, false},
		}},
		{"a few changes pass through", cfg, []step{
			{0, crit, crit, false}, {s, pass, pass, false}, {2 * s, crit, crit, false}, {3 * s, pass, pass, false},
		}},
		{"more than threshold damps at the worst", cfg, []step{
			{0, pass, pass, false}, {s, crit, crit, false}, {2 * s, pass, pass, false}, {3 * s, crit, crit, false},
			{4 * s, pass, crit, true}, // the 4th change: damped, held at critical
			{5 * s, pass, crit, true},
		}},
		{"held at the worst, even if it came later", cfg, []step{
			{0, pass, pass, false}, {s, warn, warn, false}, {2 * s, pass, pass, false}, {3 * s, warn, warn, false},
			{4 * s, pass, warn, true}, {5 * s, crit, crit, true}, {6 * s, pass, crit, true}, {7 * s, warn, crit, true},
		}},
		{"released after hold-down by a tick", cfg, []step{
			{0, pass, pass, false}, {s, crit, crit, false}, {2 * s, pass, pass, false}, {3 * s, crit, crit, false},
			{4 * s, pass, crit, true},
			{33 * s, 0, crit, true}, // 29s stable: still held
			{34 * s, 0, pass, false},
			{35 * s, crit, crit, false}, // counting starts afresh: one change
		}},
		{"a change restarts the hold-down", cfg, []step{
			{0, pass, pass, false}, {s, crit, crit, false}, {2 * s, pass, pass, false}, {3 * s, crit, crit, false},
			{4 * s, pass, crit, true}, {30 * s, crit, crit, true}, {59 * s, 0, crit, true}, {60 * s, 0, crit, false},
		}},
		{"released by the next input after hold-down", cfg, []step{
			{0, pass, pass, false}, {s, crit, crit, false}, {2 * s, pass, pass, false}, {3 * s, crit, crit, false},
			{4 * s, pass, crit, true}, {40 * s, pass, pass, false},
		}},
		{"changes leave the window", cfg, []step{
			{0, pass, pass, false}, {s, crit, crit, false}, {2 * s, pass, pass, false}, {3 * s, crit, crit, false},
			{62 * s, pass, pass, false},     // the change at 1s has left the minute: 3 in it
			{62*s + s/2, crit, crit, false}, // and the one at 2s
			{63*s + s/2, pass, pass, false}, // and the one at 3s
			{64 * s, crit, crit, true},      // 62s, 62.5s, 63.5s, 64s: four in the minute
		}},
		{"disabled", Damping{Disabled: true, Threshold: 1}, []step{
			{0, pass, pass, false}, {s, crit, crit, false}, {2 * s, pass, pass, false}, {3 * s, crit, crit, false},
		}},
		{"zero config means the defaults", Damping{}, []step{
			{0, pass, pass, false}, {s, crit, crit, false}, {2 * s, pass, pass, false}, {3 * s, crit, crit, false},
			{4 * s, pass, pass, false}, {5 * s, crit, crit, false},
			{6 * s, pass, crit, true}, // 6 > 5 changes within 2m
			{65 * s, 0, crit, true}, {66 * s, 0, pass, false},
		}},
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDamper(tt.cfg)
			for i, st := range tt.steps {
				var got catalog.Health
				var damped bool
				if st.in == 0 {
					got, damped = d.tick(t0.Add(st.at))
				} else {
					got, damped = d.observe(t0.Add(st.at), st.in)
				}
				if got != st.want || damped != st.damped {
					t.Fatalf("step %d (%s, %v): got %v damped %v, want %v damped %v",
						i, st.at, st.in, got, damped, st.want, st.damped)
				}
				if at, ok := d.releaseAt(); ok != damped || ok && !at.After(t0.Add(st.at)) {
					t.Fatalf("step %d: releaseAt() = %v, %v while damped %v", i, at, ok, damped)
				}
			}
		})
	}
}

func TestTrackerThresholds(t *testing.T) {
	tests := []struct {
		name                 string
		succ, warnAt, critAt int
		initial              catalog.Health
		in                   []catalog.Health
		want                 []catalog.Health
	}{
		{"at once", 0, 0, 0, 0,
			[]catalog.Health{pass, crit, warn, pass},
			[]catalog.Health{pass, crit, warn, pass}},
		{"one means at once", 1, 0, 1, pass,
			[]catalog.Health{crit, pass},
			[]catalog.Health{crit, pass}},
		{"three to pass, two to fail", 3, 0, 2, 0,
			[]catalog.Health{pass, pass, pass, crit, pass, crit, crit, pass, pass, warn, warn},
			[]catalog.Health{crit, crit, pass, pass, pass, pass, crit, crit, crit, crit, warn}},
		{"warn first", 0, 1, 3, pass,
			[]catalog.Health{crit, crit, crit, pass, crit},
			[]catalog.Health{warn, warn, crit, pass, warn}},
		{"warning early never betters critical", 2, 1, 3, pass,
			[]catalog.Health{crit, crit, crit, pass, crit},
			[]catalog.Health{warn, warn, crit, crit, crit}},
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Definition{ID: "c", SuccessBeforePassing: tt.succ, FailuresBeforeWarning: tt.warnAt,
				FailuresBeforeCritical: tt.critAt, Status: tt.initial}
			tr := newTracker(&d, Damping{Disabled: true}, time.Minute, t0)
			if tr.res.Status != d.initial() {
				t.Fatalf("initial status %v, want %v", tr.res.Status, d.initial())
			}
			for i, in := range tt.in {
				tr.record(t0.Add(time.Duration(i+1)*time.Second), outcome{in, "x"})
				if tr.res.Status != tt.want[i] {
					t.Fatalf("after result %d (%v): status %v, want %v", i, in, tr.res.Status, tt.want[i])
				}
			}
		})
	}
}

func TestTrackerNotifyAndDeregister(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	d := Definition{ID: "c", ServiceID: "web", DeregisterCriticalServiceAfter: time.Minute}
	tr := newTracker(&d, Damping{Disabled: true}, 5*time.Minute, t0)
	if !tr.notifyDue(t0) {
		t.Fatal("a new check is not due for Notify")
	}
	tr.markNotified(t0)
	if at, ok := tr.nextWake(); !ok || !at.Equal(t0.Add(time.Minute)) {
		t.Fatalf("nextWake() = %v, %v; want the deregistration a minute on", at, ok)
	}
	tr.record(t0.Add(time.Second), outcome{crit, "down 1"})
	if tr.notifyDue(t0.Add(time.Second)) {
		t.Error("an output change alone is due at once")
	}
	if tr.deregisterDue(t0.Add(59 * time.Second)) {
		t.Error("deregister due before the minute is up")
	}
	if !tr.deregisterDue(t0.Add(time.Minute)) {
		t.Fatal("deregister not due after a minute critical")
	}
	tr.deregistered = true
	if at, ok := tr.nextWake(); !ok || !at.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("nextWake() = %v, %v; want the deferred output at 5m", at, ok)
	}
	if !tr.notifyDue(t0.Add(5 * time.Minute)) {
		t.Error("a changed output is not due after OutputUpdateInterval")
	}
	tr.markNotified(t0.Add(5 * time.Minute))
	if _, ok := tr.nextWake(); ok {
		t.Error("something still pending after deregistration and notification")
	}
	tr.record(t0.Add(6*time.Minute), outcome{pass, "up"})
	if !tr.notifyDue(t0.Add(6*time.Minute)) || tr.deregisterDue(t0.Add(time.Hour)) {
		t.Error("a recovery is not due for Notify, or still deregisters")
	}
	tr.record(t0.Add(7*time.Minute), outcome{crit, "down again"})
	if !tr.deregisterDue(t0.Add(8 * time.Minute)) {
		t.Error("a new critical stretch does not deregister again")
	}
}
