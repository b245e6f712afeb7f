package harness

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// recorder keeps, for one node, the first time that node was seen to hold
// each observed fact ("instance c-3 is served", "node host-5 is gone").
// Facts are recorded by watchers of the node's own view (blocking queries,
// change notifications or event streams), so times are arrival times
// rather than a poller's ticks.
type recorder struct {
	mu      sync.Mutex
	seen    map[string]time.Time
	changed chan struct{} // closed and replaced on every new fact
}

func newRecorder() *recorder {
	return &recorder{seen: make(map[string]time.Time), changed: make(chan struct{})}
}

// mark records key at t unless it is already recorded.
func (r *recorder) mark(key string, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[key]; ok {
		return
	}
	r.seen[key] = t
	close(r.changed)
	r.changed = make(chan struct{})
}

// forget drops key, so that it can be recorded again.
func (r *recorder) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.seen, key)
}

func (r *recorder) at(key string) (time.Time, <-chan struct{}, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.seen[key]
	return t, r.changed, ok
}

// waitAll waits until every recorder has key and returns the recorded
// times, in the recorders' order.
func waitAll(ctx context.Context, recs []*recorder, key string) ([]time.Time, error) {
	out := make([]time.Time, len(recs))
	for i, r := range recs {
		for {
			t, ch, ok := r.at(key)
			if ok {
				out[i] = t
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				missing := 0
				for _, r := range recs[i:] {
					if _, _, ok := r.at(key); !ok {
						missing++
					}
				}
				return nil, fmt.Errorf("%q seen by %d of %d nodes: %w", key, len(recs)-missing, len(recs), ctx.Err())
			}
		}
	}
	return out, nil
}
