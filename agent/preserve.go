package agent

import (
	"time"

	"github.com/shoal-sd/shoal/catalog"
)

// notePreservation logs a change of self-preservation (see
// catalog.PreserveConfig). The flag that marks reads with
// X-Shoal-Self-Preservation is set under the catalog's lock, where the
// change happens, so that concurrent changes set it in their order.
func (a *Agent) notePreservation(before, after catalog.Preservation) {
	switch {
	case after.Active && !before.Active:
		a.log.Warn("self-preservation: many members failed at once, so this agent is more likely cut off than they are gone; serving their instances from the last known state",
			"members_kept", after.Nodes, "max", a.cfg.SelfPreservation.Max)
	case before.Active && !after.Active:
		a.log.Warn("self-preservation ended; serving what failure detection says",
			"lasted", a.now().Sub(before.Since).Round(time.Second), "members_hidden", after.Hidden)
	}
}

// tickPreservation ends self-preservation when it is due.
func (a *Agent) tickPreservation() {
	var before, after catalog.Preservation
	a.write(func(c *catalog.Catalog) {
		before = c.Preservation()
		if before.Active {
			c.TickPreserve(a.now())
		}
		after = c.Preservation()
		a.preserving.Store(after.Active)
	})
	a.notePreservation(before, after)
}

// SelfPreserving reports whether the agent is in self-preservation.
func (a *Agent) SelfPreserving() bool { return a.preserving.Load() }
