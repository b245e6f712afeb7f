package agent

import (
	"time"

	"github.com/shoal-sd/shoal/catalog"
)

// Preload runs fn on the agent's catalog under its write lock, with the
// agent's clock, and tells no one: nothing is gossiped, nothing is written
// to the data dir. Blocking queries wake if the catalog's index moves.
//
// It exists for the scale harness (bench/scale), which holds catalogs of
// tens of thousands of instances on hundreds of agents in one process.
// Gossiping them there would be tens of millions of deliveries through
// one machine's two cores; instead the origin writes its instances with
// catalog.Put and every other agent applies the origin's catalog.Deltas,
// which is the state anti-entropy leaves them in (the harness checks that
// every agent's catalog summary then agrees). Shoal never calls it.
func (a *Agent) Preload(fn func(c *catalog.Catalog, now time.Time)) {
	a.write(func(c *catalog.Catalog) { fn(c, a.now()) })
}
