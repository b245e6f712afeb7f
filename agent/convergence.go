package agent

import (
	"context"
	"time"

	"github.com/shoal-sd/shoal/catalog"
)

// The agent announces the digest of its catalog in its node metadata once
// the catalog has been quiet for digestQuiet, and at least every
// digestMaxDelay while it keeps changing: each announcement is a
// memberlist broadcast, so it must not follow every change.
const (
	digestQuiet    = time.Second
	digestMaxDelay = 10 * time.Second
)

// announceDigest keeps the digest in this node's metadata current until
// ctx ends (see GET /v1/shoal/convergence and `shoal members --converged`).
// It also checks every digestMaxDelay that memberlist still announces it.
func (a *Agent) announceDigest(ctx context.Context) {
	timer := time.NewTimer(0) // announce at start
	defer timer.Stop()
	check := time.NewTicker(digestMaxDelay)
	defer check.Stop()
	var pending bool
	var first time.Time
	for {
		changed := a.Changed()
		select {
		case <-ctx.Done():
			return
		case <-changed:
			now := time.Now()
			if !pending {
				pending, first = true, now
			}
			timer.Reset(min(digestQuiet, first.Add(digestMaxDelay).Sub(now)))
		case <-check.C:
			if pending {
				continue
			}
			timer.Reset(0)
		case <-timer.C:
			pending = false
			var d uint64
			a.Read(func(c *catalog.Catalog) { d = c.Digest() })
			if err := a.g.SetDigest(d, 5*time.Second); err != nil {
				a.log.Debug("announcing the catalog digest", "err", err)
			}
		}
	}
}
