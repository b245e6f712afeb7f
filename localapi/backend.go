package localapi

import (
	"context"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// Backend is everything the HTTP API needs from the agent. Handlers call
// only these methods and never lock anything themselves; the agent
// implements Backend (it is safe for concurrent use).
//
// Values returned share nothing mutable with the agent except Service tags
// and meta inside catalog.Instance, which are read only.
type Backend interface {
	// Self describes this agent: its node name, datacenter, gossip address.
	Self() api.Self

	// Members lists the gossip members as memberlist sees them, this agent
	// included, sorted by name.
	Members() []api.AgentMember

	// Join asks the agent to join the cluster through the given addresses
	// ("host" or "host:port"); it returns how many it reached.
	Join(ctx context.Context, addrs []string) (int, error)

	// Leave makes the agent leave the cluster gracefully and then shut down.
	Leave(ctx context.Context) error

	// RegisterService adds or replaces one of this agent's services. The
	// service is validated; an invalid one returns a *catalog.FieldError
	// and changes nothing.
	RegisterService(s catalog.Service) error

	// DeregisterService removes one of this agent's services; it returns
	// ErrNotFound (wrapped) if there is no such service.
	DeregisterService(id string) error

	// LocalServices lists this agent's own services, sorted by ID.
	LocalServices() []catalog.Service

	// Datacenter is the single datacenter this agent serves.
	Datacenter() string

	// Read runs fn with the agent's current catalog, under its read lock.
	// fn must not keep the catalog nor anything returned from it that the
	// catalog documents as shared, and must not block.
	Read(fn func(c *catalog.Catalog))

	// Changed returns a channel that is closed at the next change of the
	// catalog (any change). Take it before reading, then read, then wait:
	// no change can be missed.
	Changed() <-chan struct{}
}
