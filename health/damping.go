package health

import (
	"time"

	"github.com/shoal-sd/shoal/catalog"
)

// Damping configures flap damping, which Consul does not have: a check
// that changes state too often is held at the worst state it showed, so
// that a flapping instance neither churns gossip nor keeps coming back
// into DNS answers. Zero fields take the defaults of DefaultDamping.
type Damping struct {
	// Disabled turns damping off: every reported state passes through.
	Disabled bool
	// Threshold: more than this many state changes within Window damp
	// the check. Default 5.
	Threshold int
	// Window is the sliding window the changes are counted in. Default 2m.
	Window time.Duration
	// HoldDown is how long the state must stay unchanged before a damped
	// check is released. Default 1m.
	HoldDown time.Duration
}

// DefaultDamping returns the damping a zero Damping stands for.
func DefaultDamping() Damping {
	return Damping{Threshold: 5, Window: 2 * time.Minute, HoldDown: time.Minute}
}

func (d Damping) withDefaults() Damping {
	def := DefaultDamping()
	if d.Threshold <= 0 {
		d.Threshold = def.Threshold
	}
	if d.Window <= 0 {
		d.Window = def.Window
	}
	if d.HoldDown <= 0 {
		d.HoldDown = def.HoldDown
	}
	return d
}

// damper is flap damping as a pure state machine: it never reads a clock,
// every call says what time it is, and times must not go backwards.
type damper struct {
	cfg     Damping
	cur     catalog.Health // the latest input
	since   time.Time      // when cur became the input
	changes []change       // input changes within Window, oldest first; only while not damped
	damped  bool
	worst   catalog.Health // while damped: the worst input since damping began
}

// change is one change of the input: at when, to which state.
type change struct {
	at time.Time
	to catalog.Health
}

func newDamper(cfg Damping) damper { return damper{cfg: cfg.withDefaults()} }

// observe feeds the input state in force at now and returns the state to
// report and whether it is damped.
func (d *damper) observe(now time.Time, s catalog.Health) (catalog.Health, bool) {
	if d.cfg.Disabled {
		d.cur = s
		return s, false
	}
	d.release(now)
	switch {
	case d.cur == 0:
		d.cur, d.since = s, now
	case s != d.cur:
		prev := d.cur
		d.cur, d.since = s, now
		if d.damped {
			d.worst = catalog.Worse(d.worst, s)
			break
		}
		d.changes = append(d.changes, change{now, s})
		d.prune(now)
		if len(d.changes) > d.cfg.Threshold {
			// The states the flapping went through count too: a check
			// flipping passing→critical→passing is held at critical.
			worst := prev
			for _, c := range d.changes {
				worst = catalog.Worse(worst, c.to)
			}
			d.damped, d.worst, d.changes = true, worst, nil
		}
	}
	return d.state()
}

// tick releases the damping if the input has been stable for HoldDown by
// now, and returns the state to report.
func (d *damper) tick(now time.Time) (catalog.Health, bool) {
	d.release(now)
	return d.state()
}

// releaseAt is when a damped check will be released if its input stays
// as it is; ok is false when it is not damped.
func (d *damper) releaseAt() (at time.Time, ok bool) {
	if !d.damped {
		return time.Time{}, false
	}
	return d.since.Add(d.cfg.HoldDown), true
}

func (d *damper) release(now time.Time) {
	if d.damped && now.Sub(d.since) >= d.cfg.HoldDown {
		// Start counting afresh: changes from before the hold-down are
		// the flapping already paid for.
		d.damped, d.worst, d.changes = false, 0, nil
	}
}

// prune drops the changes that have left the window (older than Window).
func (d *damper) prune(now time.Time) {
	i := 0
	for i < len(d.changes) && now.Sub(d.changes[i].at) > d.cfg.Window {
		i++
	}
	d.changes = d.changes[i:]
}

func (d *damper) state() (catalog.Health, bool) {
	if d.damped {
		return d.worst, true
	}
	return d.cur, false
}
