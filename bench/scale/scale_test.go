package scale

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A small run of the whole harness: every figure comes out, and what it
// measures happened (a registration reached every agent, a new agent
// fetched the catalog), and the cluster stops.
func TestScaleQuick(t *testing.T) {
	t.Run("gossiped", func(t *testing.T) { quick(t, false) })
	// Preloaded catalogs must be what the protocol makes: the harness
	// fails the run if any agent's catalog summary differs right after.
	t.Run("preloaded", func(t *testing.T) { quick(t, true) })
}

func quick(t *testing.T, preload bool) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	rs, err := Run(context.Background(), Options{Sizes: []int{8}, Changes: 3, Window: time.Second, ChurnRate: 20,
		Instances: []int{500}, Fetch: 2000, Preload: preload, Latency: time.Millisecond, Jitter: time.Millisecond, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, r := range rs {
		got[r.Figure] = r.Value
	}
	for _, f := range []string{"form", "change p50", "change p99", "bytes idle", "bytes churn", "bytes per change", "heap, 500 instances", "bytes idle, 500 instances", "fetch"} {
		v, ok := got[f]
		if !ok || v <= 0 {
			t.Errorf("%s: %v (present %v)", f, v, ok)
		}
	}
	// With a millisecond each way a change takes at least one hop.
	if p50 := got["change p50"]; p50 < 1 {
		t.Errorf("change p50 %v ms: faster than the network's latency", p50)
	}
	if t.Failed() {
		var b strings.Builder
		for _, r := range rs {
			b.WriteString(r.Figure + " ")
		}
		t.Logf("figures: %s", b.String())
	}
}
