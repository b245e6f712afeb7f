package api

import "context"

// Convergence is the body of GET /v1/shoal/convergence: this agent's view
// of the catalog summed up per origin, and whether every other serving
// member announced the same whole-catalog digest.
type Convergence struct {
	Node      string // the agent answering
	Digest    string // the digest of its catalog now, 16 hex digits
	Converged bool   // every serving member announced Digest
	Origins   []OriginDigest
	Members   []MemberDigest
}

// OriginDigest sums up what the agent holds of one origin's writes.
type OriginDigest struct {
	Origin  string
	Epoch   uint64
	Counter uint64
	Entries int
	Digest  string
}

// MemberDigest is the catalog digest another member last announced.
type MemberDigest struct {
	Node   string
	Status string
	Digest string // "" until the member announces one
	Agrees bool   // Digest equals the answering agent's
}

// Convergence asks the agent whether every agent holds the same catalog
// (a Shoal addition). Members announce their digest about a second after
// their catalog settles, so right after a change it reads "not yet"; q
// may block (WaitIndex) until the agent's catalog or members change.
func (c *Client) Convergence(ctx context.Context, q *QueryOptions) (*Convergence, *QueryMeta, error) {
	return get[*Convergence](ctx, c, "/v1/shoal/convergence", q.values(false, false))
}
