package api

import "context"

// Convergence is the body of GET /v1/shoal/convergence: this agent's view
// of the catalog summed up per origin, and whether every other serving
// member serves the same catalog now.
type Convergence struct {
	Node      string // the agent answering
	Digest    string // the summary of the catalog it serves, 16 hex digits
	Converged bool   // every serving member answered with Digest
	Origins   []OriginDigest
	Members   []MemberDigest
}

// OriginDigest sums up what the agent holds of one origin's writes.
type OriginDigest struct {
	Origin    string
	Epoch     uint64
	Known     uint64 // every write of Epoch up to this counter is held
	Watermark uint64 // tombstones up to this counter were reaped
	Entries   int    // live entries
	Digest    string // the hash of the live entries, 16 hex digits
	Served    bool   // the node's services are served (it is alive)
}

// MemberDigest is the summary another member answered with.
type MemberDigest struct {
	Node   string
	Status string
	Digest string // "" if the member did not answer in time
	Agrees bool   // Digest equals the answering agent's
}

// Convergence asks the agent whether every agent serves the same catalog
// (a Shoal addition). The agent asks every member for its summary for
// each request (a second at most); q may block (WaitIndex) until the
// agent's catalog changes.
func (c *Client) Convergence(ctx context.Context, q *QueryOptions) (*Convergence, *QueryMeta, error) {
	return get[*Convergence](ctx, c, "/v1/shoal/convergence", q.values(false, false))
}
