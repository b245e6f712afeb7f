package localapi

import (
	"context"
	"log/slog"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// RegisterOptions modify a service registration.
type RegisterOptions struct {
	// ReplaceExistingChecks drops the service's checks that the
	// registration does not list.
	ReplaceExistingChecks bool
}

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

	// RegisterService adds or replaces one of this agent's services and
	// the checks registered with it (a registration's Check and Checks),
	// replacing the checks it had. The service and its checks are
	// validated first; an invalid one returns a *catalog.FieldError and
	// changes nothing.
	//
	// The service's other checks stay, as in Consul, unless opts say
	// ReplaceExistingChecks (Consul's ?replace-existing-checks).
	RegisterService(s catalog.Service, checks []api.AgentServiceCheck, opts ...RegisterOptions) error

	// RegisterCheck adds or replaces one of this agent's checks. An invalid
	// one, or one naming a service the agent does not have, returns a
	// *catalog.FieldError and changes nothing.
	RegisterCheck(r api.AgentCheckRegistration) error

	// DeregisterCheck removes one of this agent's checks; ErrNotFound
	// (wrapped) if there is none of that ID.
	DeregisterCheck(id string) error

	// UpdateCheck reports the state of a TTL check (the heartbeat of
	// PUT /v1/agent/check/pass|warn|fail|update). ErrNotFound (wrapped) if
	// there is no such check; a *catalog.FieldError naming CheckID if it
	// is not a TTL check, or Output if the output is not UTF-8.
	UpdateCheck(id string, status catalog.Health, output string) error

	// AgentChecks lists this agent's checks with their latest full output,
	// sorted by check ID.
	AgentChecks() []api.AgentCheck

	// NodeMaintenance puts the whole node into maintenance mode (a critical
	// check every instance of the node carries) or takes it out.
	NodeMaintenance(enable bool, reason string) error

	// ServiceMaintenance does the same for one local service; ErrNotFound
	// (wrapped) if there is no such service.
	ServiceMaintenance(id string, enable bool, reason string) error

	// Reload re-reads the agent's config file and applies its service
	// definitions; on any error the running configuration stays.
	Reload(ctx context.Context) error

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

	// Coordinates lists the network coordinates the agent holds: its own
	// and those of the nodes whose services it serves that it has pinged,
	// sorted by node name.
	Coordinates() []api.CoordinateEntry

	// RTT estimates the round trip time between two nodes from their
	// network coordinates (0 from a node to itself); false if either has
	// none.
	RTT(from, to string) (time.Duration, bool)

	// LastHeard sets ago[i] to how long ago the agent last heard from
	// nodes[i] (an answered ping, news the node wrote, a push/pull with
	// it): 0 for the agent itself, -1 for a node not heard from. ago is
	// as long as nodes. It must be cheap: every instance list calls it.
	LastHeard(nodes []string, ago []time.Duration)

	// Summaries asks every alive member for the summary of the catalog it
	// serves now (catalog.Summary) and returns the answers that came
	// within about a second, by node; a member that did not answer is
	// missing.
	Summaries(ctx context.Context) map[string]uint64

	// Keyring runs a gossip keyring operation ("list", "install", "use"
	// or "remove"; key is ignored by "list") on every member and this
	// agent, and returns the results by key and node. With localOnly,
	// "list" reads only this agent's keyring. It fails only when the
	// operation could not start (gossip encryption is off); a node's
	// failure is in Messages.
	Keyring(ctx context.Context, op string, key []byte, localOnly bool) (api.KeyringResponse, error)

	// Stats returns figures the agent keeps about itself, by section and
	// name, for the Stats of /v1/agent/self (Consul's `consul info`
	// prints them): "agent", "serf_lan" (memberlist's view), and Shoal's
	// own sections. The handler adds "runtime" and "build".
	Stats() map[string]map[string]string

	// Monitor streams the agent's log lines at level and above, as slog
	// text lines or, with json, JSON lines, each ending in '\n', until ctx
	// ends; the channel is closed then. Lines are read only. A reader
	// that falls behind loses lines; the agent never waits for it.
	Monitor(ctx context.Context, level slog.Level, json bool) (<-chan []byte, error)
}
