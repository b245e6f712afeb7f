package localapi

import (
	"net/http"

	"github.com/shoal-sd/shoal/catalog"
)

// convergence is the body of GET /v1/shoal/convergence.
type convergence struct {
	Node      string
	Digest    string // the summary of the catalog this agent serves now
	Converged bool   // every serving member answered with Digest
	Origins   []originDigest
	Members   []memberDigest
}

type originDigest struct {
	Origin    string
	Epoch     uint64
	Known     uint64 // every write up to this counter is held
	Watermark uint64 // tombstones reaped up to this counter
	Entries   int    // live entries
	Digest    string // the hash of the live entries
	Served    bool   // the node's services are served here
}

type memberDigest struct {
	Node   string
	Status string
	Digest string // the summary the member answered with; "" if it did not answer
	Agrees bool
}

// GET /v1/shoal/convergence: this agent's per-origin versions and content
// hashes, the summary of the catalog it serves, and the summary every
// other serving member answers with now: Converged says that every one
// answered, and with this agent's. The answer is fresh (the members are
// asked for each request, about a second at most), so it is never true
// while an agent serves a catalog that differs. With ?index it waits for
// a change of the catalog first.
func (s *server) shoalConvergence(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 { return c.Index() })
	if err != nil {
		return err
	}
	peers := s.b.Summaries(r.Context())
	var out convergence
	s.b.Read(func(c *catalog.Catalog) {
		sum := c.Summary()
		out = convergence{Node: c.LocalName(), Digest: catalog.FormatDigest(sum), Converged: true}
		for _, d := range c.Digest() {
			out.Origins = append(out.Origins, originDigest{Origin: d.Origin, Epoch: d.Epoch, Known: d.Known, Watermark: d.Watermark,
				Entries: d.Entries, Digest: catalog.FormatDigest(d.Hash), Served: d.Served})
		}
		for _, n := range c.Nodes() {
			if n.Name == c.LocalName() || !n.Serving() {
				continue
			}
			m := memberDigest{Node: n.Name, Status: n.Status.String()}
			if ps, ok := peers[n.Name]; ok {
				m.Digest, m.Agrees = catalog.FormatDigest(ps), ps == sum
			}
			out.Converged = out.Converged && m.Agrees
			out.Members = append(out.Members, m)
		}
	})
	return s.writeJSON(w, q, index, out)
}
