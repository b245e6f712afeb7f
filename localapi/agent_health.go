package localapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// The agent's local health of its own services, as load balancers and
// schedulers probe it: GET /v1/agent/health/service/id/:id and
// /v1/agent/health/service/name/:name. As in Consul, the status code is
// the health (200 passing, 429 warning, 503 critical; 404 for a service
// the agent does not have), and the body the service with its checks (the
// node's checks, maintenance included, then its own), or with
// ?format=text the status alone.

// serviceChecksInfo is Consul's AgentServiceChecksInfo.
type serviceChecksInfo struct {
	AggregatedStatus string
	Service          api.AgentService
	Checks           []api.HealthCheck
}

// localHealth reads the health of this agent's services that keep
// selects; none if the token may not read them.
func (s *server) localHealth(r *http.Request, q *query, keep func(catalog.Service) bool) ([]serviceChecksInfo, catalog.Health, error) {
	var insts []catalog.Instance
	_, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 {
		insts = insts[:0]
		names := map[string]bool{}
		for _, svc := range c.LocalServices() {
			if keep(svc) {
				names[svc.Name] = true
			}
		}
		for name := range names {
			for _, in := range c.Instances(name) {
				if in.Node.Name == c.LocalName() && keep(in.Service) {
					in.Service = in.Service.Clone()
					insts = append(insts, in)
				}
			}
		}
		return c.Index()
	})
	if err != nil {
		return nil, 0, err
	}
	dc := s.b.Datacenter()
	worst := catalog.HealthPassing
	var out []serviceChecksInfo
	for _, in := range insts {
		if err := require(q.authz, acl.Service, in.Service.Name, acl.Read); err != nil {
			return nil, 0, err
		}
		info := serviceChecksInfo{AggregatedStatus: in.Status.String(), Service: agentService(in.Service, dc), Checks: []api.HealthCheck{}}
		for _, ck := range in.Checks {
			info.Checks = append(info.Checks, healthCheck(ck))
		}
		worst = catalog.Worse(worst, in.Status)
		out = append(out, info)
	}
	return out, worst, nil
}

// healthCode is the status code of a health: Consul's.
func healthCode(h catalog.Health) int {
	switch h {
	case catalog.HealthPassing:
		return http.StatusOK
	case catalog.HealthWarning:
		return http.StatusTooManyRequests
	}
	return http.StatusServiceUnavailable
}

// healthFormat reads ?format: json (the default) or text.
func healthFormat(q *query) (text bool, err error) {
	switch f := q.values.Get("format"); f {
	case "", "json":
		return false, nil
	case "text":
		return true, nil
	default:
		return false, errorf(http.StatusBadRequest, "format: %q is not supported; use format=json or format=text", f)
	}
}

// GET /v1/agent/health/service/id/:id
func (s *server) agentHealthByID(w http.ResponseWriter, r *http.Request, q *query, id string) error {
	text, err := healthFormat(q)
	if err != nil {
		return err
	}
	infos, worst, err := s.localHealth(r, q, func(svc catalog.Service) bool { return svc.ID == id })
	if err != nil {
		return err
	}
	if len(infos) == 0 {
		return errorf(http.StatusNotFound, "ServiceId %s not found", id)
	}
	return s.writeHealth(w, q, worst, text, &infos[0])
}

// GET /v1/agent/health/service/name/:name
func (s *server) agentHealthByName(w http.ResponseWriter, r *http.Request, q *query, name string) error {
	text, err := healthFormat(q)
	if err != nil {
		return err
	}
	infos, worst, err := s.localHealth(r, q, func(svc catalog.Service) bool { return svc.Name == name })
	if err != nil {
		return err
	}
	if len(infos) == 0 {
		return errorf(http.StatusNotFound, "ServiceName %s Not Found", name)
	}
	return s.writeHealth(w, q, worst, text, infos)
}

// writeHealth answers with the health as the status code, and v or, as
// text, the health alone.
func (s *server) writeHealth(w http.ResponseWriter, q *query, h catalog.Health, text bool, v any) error {
	code := healthCode(h)
	if text {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(h.String()))
		return nil
	}
	var body []byte
	var err error
	if q.pretty {
		body, err = json.MarshalIndent(v, "", "    ")
	} else {
		body, err = json.Marshal(v)
	}
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(code)
	_, _ = w.Write(body)
	return nil
}
