package harness

import (
	"context"
	"fmt"
)

// cluster is N running agents of one system, started by a harness mode.
// Every method may be called from one goroutine at a time.
type cluster interface {
	// System is "shoal" or "serf"; Mode is "in-process" or "processes".
	System() string
	Mode() string
	// Size is the number of agents started (crashed and departed ones
	// included).
	Size() int
	// GossipPorts is the range of gossip ports (TCP and UDP) the agents
	// listen on, inclusive, for counting their traffic.
	GossipPorts() (lo, hi int)
	// Change makes change k at agent origin — a new service instance for
	// Shoal, a tag value for Serf — and returns the key every agent's
	// recorder marks when it sees the change. Change returns once the
	// origin has accepted it.
	Change(ctx context.Context, origin, k int) (key string, err error)
	// Churn makes one change at agent i that nobody waits for (the load
	// for gossip bytes under churn): Shoal registers or deregisters an
	// instance, Serf sets a tag.
	Churn(ctx context.Context, i, k int) error
	// Crash kills agent i without a goodbye; Leave stops it gracefully.
	Crash(ctx context.Context, i int) error
	Leave(ctx context.Context, i int) error
	// GoneKey is the key a recorder marks once its agent no longer
	// serves agent i's instances (Shoal) or sees it failed or left (Serf).
	GoneKey(i int) string
	// Recorder is agent i's recorder.
	Recorder(i int) *recorder
	// Close stops every agent still running and frees what the cluster
	// holds.
	Close() error
}

// burster is a cluster that can take a burst of registrations.
type burster interface {
	// Burst registers total instances spread over the live agents, as
	// fast as they accept them, and returns the key each recorder marks
	// once its agent serves all of them. A cluster takes one burst.
	Burst(ctx context.Context, total int) (key string, err error)
}

// Keys recorders mark. Change numbers are unique over a cluster's life.
func convKey(k int) string       { return fmt.Sprintf("conv/%d", k) }
func goneKey(node string) string { return "gone/" + node }
func hereKey(node string) string { return "here/" + node }

// portPlan is where a cluster's agents listen: agent i on Gossip+i and,
// where the system has one, its API on API+i. Ranges stay below Linux's
// ephemeral ports (32768 and up), so counted traffic is only gossip.
type portPlan struct {
	Gossip int
	API    int
}
