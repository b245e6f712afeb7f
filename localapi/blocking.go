package localapi

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/shoal-sd/shoal/catalog"
)

// read runs fill with the catalog, under the backend's read lock, and
// returns the index fill reports for what it copied out. For a blocking
// query (?index=N) it repeats until that index differs from N, the wait
// ends (then the last copy is current and is answered as is) or ctx ends
// (then it returns ctx's error).
//
// fill must copy out what the handler needs and return at once; it runs
// under the agent's lock and must not call the Backend. It may run many
// times, so it must overwrite, not append to, what it fills.
func (s *server) read(ctx context.Context, q *query, fill func(c *catalog.Catalog) uint64) (uint64, error) {
	return s.readUntil(ctx, q, fill, nil)
}

// readUntil is read with a custom end to the wait: ready, if not nil,
// decides after each fill (outside the lock) whether to answer now.
//
// Unlike Consul, an index smaller than N also answers at once: the index
// only grows, so a smaller one means the agent restarted with a fresh
// catalog, and the client should have the new data now rather than after
// a full wait.
func (s *server) readUntil(ctx context.Context, q *query, fill func(c *catalog.Catalog) uint64, ready func(index uint64) bool) (uint64, error) {
	if ready == nil {
		ready = func(index uint64) bool { return q.index == 0 || index != q.index }
	}
	var timer *time.Timer
	for {
		// Take the channel before reading: a change after the read closes
		// it, so none is missed.
		changed := s.b.Changed()
		var index uint64
		s.b.Read(func(c *catalog.Catalog) { index = fill(c) })
		index = max(index, 1)
		if ready(index) {
			return index, nil
		}
		if timer == nil {
			done, err := s.startWaiting()
			if err != nil {
				return 0, err
			}
			defer done()
			timer = time.NewTimer(q.blockFor())
			defer timer.Stop()
		}
		select {
		case <-changed:
		case <-timer.C:
			return index, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// blockFor is how long a blocking query waits: ?wait, 5 minutes by
// default, at most 10, plus up to 1/16 of it at random so that many
// clients watching the same data do not all come back at once.
func (q *query) blockFor() time.Duration {
	d := q.wait
	if d <= 0 {
		d = defaultWait
	}
	d = min(d, maxWait)
	if j := d / jitterDiv; j > 0 {
		d += rand.N(j)
	}
	return d
}
