package health

import (
	"time"

	"github.com/shoal-sd/shoal/catalog"
)

// tracker turns a check's raw outcomes into its reported Result: the
// thresholds, then flap damping, then the decisions of when to notify and
// when to ask for deregistration. Like damper it never reads a clock.
type tracker struct {
	def         *Definition
	outputEvery time.Duration

	passes, fails int            // consecutive raw outcomes of each kind
	held          catalog.Health // the state after thresholds
	damp          damper
	res           Result // what is reported now

	notified   bool   // whether Notify has heard of this check at all
	last       Result // what Notify heard last
	notifiedAt time.Time

	criticalSince time.Time // when res turned critical; zero when it is not
	deregistered  bool      // Deregister was asked during this critical stretch
}

func newTracker(d *Definition, damping Damping, outputEvery time.Duration, now time.Time) tracker {
	t := tracker{def: d, outputEvery: outputEvery, held: d.initial(), damp: newDamper(damping)}
	t.res = Result{ID: d.ID, ServiceID: d.ServiceID}
	status, damped := t.damp.observe(now, t.held)
	t.set(now, status, damped)
	return t
}

// record takes the outcome of one run (or TTL update) made at now.
func (t *tracker) record(now time.Time, o outcome) {
	if o.status == catalog.HealthPassing {
		t.fails = 0
		t.passes++
		if t.passes >= max(1, t.def.SuccessBeforePassing) {
			t.held = catalog.HealthPassing
		}
	} else {
		t.passes = 0
		t.fails++
		switch {
		case t.fails >= max(1, t.def.FailuresBeforeCritical):
			t.held = o.status
		case t.def.FailuresBeforeWarning > 0 && t.fails >= t.def.FailuresBeforeWarning:
			// Warn early, but never report a critical check as better.
			t.held = catalog.Worse(t.held, catalog.HealthWarning)
		}
	}
	t.res.Output = o.output
	t.res.At = now
	status, damped := t.damp.observe(now, t.held)
	t.set(now, status, damped)
}

// tick lets time pass: it releases damping that has held long enough.
func (t *tracker) tick(now time.Time) {
	status, damped := t.damp.tick(now)
	if status != t.res.Status || damped != t.res.Damped {
		t.res.At = now
	}
	t.set(now, status, damped)
}

func (t *tracker) set(now time.Time, status catalog.Health, damped bool) {
	if status == catalog.HealthCritical {
		if t.res.Status != catalog.HealthCritical || t.criticalSince.IsZero() {
			t.criticalSince, t.deregistered = now, false
		}
	} else {
		t.criticalSince, t.deregistered = time.Time{}, false
	}
	if t.res.At.IsZero() {
		t.res.At = now
	}
	t.res.Status, t.res.Damped = status, damped
}

// notifyDue reports whether Notify should hear of res now: on a new
// check, a new status or damping, or an output that changed at least
// outputEvery after the last notification. Changing output alone (a
// timestamp in a body) would otherwise gossip every Interval.
func (t *tracker) notifyDue(now time.Time) bool {
	switch {
	case !t.notified:
		return true
	case t.res.Status != t.last.Status || t.res.Damped != t.last.Damped:
		return true
	case t.res.Output != t.last.Output:
		return now.Sub(t.notifiedAt) >= t.outputEvery
	}
	return false
}

func (t *tracker) markNotified(now time.Time) {
	t.notified, t.last, t.notifiedAt = true, t.res, now
}

// deregisterDue reports whether the check has been critical for its
// DeregisterCriticalServiceAfter and Deregister was not asked yet.
func (t *tracker) deregisterDue(now time.Time) bool {
	after := t.def.DeregisterCriticalServiceAfter
	return after > 0 && t.def.ServiceID != "" && !t.deregistered &&
		!t.criticalSince.IsZero() && now.Sub(t.criticalSince) >= after
}

// nextWake is the earliest time at which, with no new outcome, something
// is due: damping to release, a deferred output to notify, a service to
// deregister. ok is false when nothing is pending.
func (t *tracker) nextWake() (at time.Time, ok bool) {
	consider := func(x time.Time) {
		if !ok || x.Before(at) {
			at, ok = x, true
		}
	}
	if x, damped := t.damp.releaseAt(); damped {
		consider(x)
	}
	if t.notified && t.res.Output != t.last.Output {
		consider(t.notifiedAt.Add(t.outputEvery))
	}
	if after := t.def.DeregisterCriticalServiceAfter; after > 0 && t.def.ServiceID != "" &&
		!t.deregistered && !t.criticalSince.IsZero() {
		consider(t.criticalSince.Add(after))
	}
	return at, ok
}
