package localapi

import (
	"net/http"

	"github.com/shoal-sd/shoal/catalog"
)

// convergence is the body of GET /v1/shoal/convergence.
type convergence struct {
	Node      string
	Digest    string // this agent's catalog now
	Converged bool   // every serving member announced Digest
	Origins   []originDigest
	Members   []memberDigest
}

type originDigest struct {
	Origin  string
	Epoch   uint64
	Counter uint64
	Entries int
	Digest  string
}

type memberDigest struct {
	Node   string
	Status string
	Digest string // as the member last announced it; "" if not yet
	Agrees bool
}

// GET /v1/shoal/convergence: this agent's view digest per origin (the
// writes it holds of each), the digest of its whole catalog, and the
// digest every other serving member last announced in its metadata, so
// that an operator can see whether all agents agree. Announcements lag a
// change by a second or so: after a change, Converged turns true once
// every agent has it and has said so.
func (s *server) shoalConvergence(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	var out convergence
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 {
		ds := c.Digests()
		out = convergence{Node: c.LocalName(), Digest: catalog.FormatDigest(catalog.CombineDigests(ds)), Converged: true}
		out.Origins = make([]originDigest, len(ds))
		for i, d := range ds {
			out.Origins[i] = originDigest{Origin: d.Origin, Epoch: d.Epoch, Counter: d.Counter, Entries: d.Entries, Digest: catalog.FormatDigest(d.Digest)}
		}
		out.Members = out.Members[:0]
		for _, n := range c.Nodes() {
			if n.Name == c.LocalName() || !n.Serving() {
				continue
			}
			m := memberDigest{Node: n.Name, Status: n.Status.String(), Digest: n.Meta[catalog.DigestMetaKey]}
			m.Agrees = m.Digest == out.Digest
			out.Converged = out.Converged && m.Agrees
			out.Members = append(out.Members, m)
		}
		return c.Index()
	})
	if err != nil {
		return err
	}
	return s.writeJSON(w, q, index, out)
}
