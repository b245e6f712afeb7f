package harness

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestMeasureMemory(t *testing.T) {
	bin := testShoalBin(t)
	const k = 500
	o := &Options{
		Instances: []int{k},
		WorkDir:   t.TempDir(),
		Timeout:   time.Minute,
		Log:       testLogger(t),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rs, err := measureMemory(ctx, o, bin, freePortPlan(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 7 {
		t.Errorf("%d results, want 7", len(rs))
	}
	for _, r := range rs {
		t.Logf("%s %s: %.3f %s (%s)", r.Scenario, r.Stat, r.Value, r.Unit, r.Note)
		if r.System != "shoal" || r.N != k || r.Samples != 1 || r.Value <= 0 {
			t.Errorf("result %+v", r)
		}
	}
	total := findResult(t, rs, "catalog-memory", "total")
	per := findResult(t, rs, "catalog-memory", "per-instance")
	if total.Mode != ModeInProcess || total.Unit != "MiB" || per.Unit != "B" {
		t.Errorf("catalog memory results %+v, %+v", total, per)
	}
	if per.Value < 50 || per.Value > 20<<10 {
		t.Errorf("catalog takes %.0f B per instance, want 50 B to 20 KiB", per.Value)
	}
	if got := total.Value * (1 << 20) / k; got < per.Value*0.99 || got > per.Value*1.01 {
		t.Errorf("total %.3f MiB over %d instances is %.0f B each, per-instance says %.0f", total.Value, k, got, per.Value)
	}
	idle := findResult(t, rs, "catalog-rss", "idle")
	origin := findResult(t, rs, "catalog-rss", "origin")
	replica := findResult(t, rs, "catalog-rss", "replica")
	originPeak := findResult(t, rs, "catalog-rss", "origin-peak")
	replicaPeak := findResult(t, rs, "catalog-rss", "replica-peak")
	// The kernel's RSS counters are per-CPU and approximate: the two
	// reads may disagree by a few pages.
	if originPeak.Value < origin.Value*0.99 || replicaPeak.Value < replica.Value*0.99 {
		t.Errorf("peak RSS below RSS: origin %.1f, peak %.1f; replica %.1f, peak %.1f MiB",
			origin.Value, originPeak.Value, replica.Value, replicaPeak.Value)
	}
	for _, r := range []Result{idle, origin, replica, originPeak, replicaPeak} {
		// A Go agent takes some MiB; more than a GiB is a unit error.
		if r.Mode != ModeProcesses || r.Unit != "MiB" || r.Value < 1 || r.Value > 1024 {
			t.Errorf("rss %s: %.1f %s in mode %s", r.Stat, r.Value, r.Unit, r.Mode)
		}
	}
	if strings.Contains(replica.Note, "only") {
		t.Errorf("replica did not get every instance: %s", replica.Note)
	}
	if pids := runningAgents(t, bin); len(pids) > 0 {
		t.Errorf("agents still running: pids %v", pids)
	}
}

// TestAPIProcStartAndStop checks the agent processes the memory and API
// measurements start: one that cannot listen is reported and reaped, not
// mistaken for the agent already on its port; a graceful stop ends one.
func TestAPIProcStartAndStop(t *testing.T) {
	bin := testShoalBin(t)
	ports := freePortPlan(t)
	o := &Options{WorkDir: t.TempDir(), Timeout: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := startShoalProc(ctx, o, bin, "first", ports.Gossip, ports.API, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Kill()
	// The same HTTP port: the second agent cannot start, and must not
	// be left behind.
	_, err = startShoalProc(ctx, o, bin, "second", ports.Gossip+1, ports.API, nil)
	if err == nil {
		t.Fatal("a second agent on a taken HTTP port started")
	}
	t.Logf("refused as expected: %v", err)
	rss, err := a.RSS()
	if err != nil || rss == 0 {
		t.Errorf("rss %d, %v", rss, err)
	}
	start := time.Now()
	if err := a.Stop(ctx); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
	if _, err := a.RSS(); err == nil {
		t.Error("rss of a stopped agent")
	}
	if pids := runningAgents(t, bin); len(pids) > 0 {
		t.Errorf("agents still running: pids %v", pids)
	}
}
