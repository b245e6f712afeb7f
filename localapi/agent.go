package localapi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"runtime"
	"strconv"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// PUT /v1/agent/service/register
func (s *server) agentServiceRegister(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	replace, err := q.flag("replace-existing-checks")
	if err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	svc, checks, err := decodeRegistration(body)
	if err != nil {
		return err
	}
	// Write on the name, and on the name it replaces if the ID had
	// another, as Consul asks.
	if err := require(q.authz, acl.Service, svc.Name, acl.Write); err != nil {
		return err
	}
	// The ID it will have (the name when none is given), as the backend
	// normalises it.
	if old, ok := s.localServiceName(svc.Normalize().ID); ok && old != svc.Name {
		if err := require(q.authz, acl.Service, old, acl.Write); err != nil {
			return err
		}
	}
	if err := s.b.RegisterService(svc, checks, RegisterOptions{ReplaceExistingChecks: replace}); err != nil {
		return writeError(err, nil, "register service %q", svc.ID)
	}
	s.log.Debug("service registered", "name", svc.Name, "id", svc.ID, "checks", len(checks))
	writeOK(w)
	return nil
}

// PUT /v1/agent/service/deregister/:id
func (s *server) agentServiceDeregister(w http.ResponseWriter, r *http.Request, q *query, id string) error {
	if name, ok := s.localServiceName(id); ok {
		if err := require(q.authz, acl.Service, name, acl.Write); err != nil {
			return err
		}
	}
	if err := s.b.DeregisterService(id); err != nil {
		if errors.Is(err, ErrNotFound) {
			return unknownServiceID(id)
		}
		return fmt.Errorf("deregister service %q: %w", id, err)
	}
	s.log.Debug("service deregistered", "id", id)
	writeOK(w)
	return nil
}

// localServiceName is the name of this agent's service of that ID.
func (s *server) localServiceName(id string) (name string, ok bool) {
	s.b.Read(func(c *catalog.Catalog) {
		var svc catalog.Service
		if svc, ok = c.LocalService(id); ok {
			name = svc.Name
		}
	})
	return name, ok
}

// unknownServiceID is Consul's answer for a service ID the agent lacks.
func unknownServiceID(id string) error {
	return errorf(http.StatusNotFound, "Unknown service ID %q. Ensure that the service ID is passed, not the service name.", id)
}

// GET /v1/agent/services
func (s *server) agentServices(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	f, err := q.filter(serviceSample)
	if err != nil {
		return err
	}
	var svcs []catalog.Service
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 {
		svcs = cloneServices(c.LocalServices())
		return c.Index()
	})
	if err != nil {
		return err
	}
	dc := s.b.Datacenter()
	out := make(map[string]api.AgentService, len(svcs))
	for _, svc := range svcs {
		if !q.authz.Can(acl.Service, svc.Name, acl.Read) {
			q.filtered = true
			continue
		}
		out[svc.ID] = agentService(svc, dc)
	}
	if err := narrowMap(out, f); err != nil {
		return err
	}
	return s.writeJSON(w, q, index, out)
}

// GET /v1/agent/service/:id. Besides ?index it supports Consul's
// hash-based blocking: ?hash=H waits until the service's ContentHash is no
// longer H. An unknown ID answers 404 at once.
func (s *server) agentService(w http.ResponseWriter, r *http.Request, q *query, id string) error {
	var (
		svc   catalog.Service
		found bool
		hash  string
	)
	wantHash := q.values.Get("hash")
	index, err := s.readUntil(r.Context(), q, func(c *catalog.Catalog) uint64 {
		svc, found = c.LocalService(id)
		svc = svc.Clone()
		return c.Index()
	}, func(index uint64) bool {
		if !found {
			return true
		}
		hash = contentHash(svc)
		if wantHash != "" {
			return hash != wantHash
		}
		return q.index == 0 || index != q.index
	})
	if err != nil {
		return err
	}
	if !found {
		return unknownServiceID(id)
	}
	if err := require(q.authz, acl.Service, svc.Name, acl.Read); err != nil {
		return err
	}
	out := agentService(svc, s.b.Datacenter())
	out.ContentHash = hash
	w.Header().Set("X-Consul-ContentHash", hash)
	return s.writeJSON(w, q, index, &out)
}

func cloneServices(svcs []catalog.Service) []catalog.Service {
	for i := range svcs {
		svcs[i] = svcs[i].Clone()
	}
	return svcs
}

// agentService shows one of this agent's services as Consul's agent
// endpoints do: Address is the registered one (empty means the node's),
// Tags and Meta are never null.
func agentService(svc catalog.Service, dc string) api.AgentService {
	return api.AgentService{
		ID:         svc.ID,
		Service:    svc.Name,
		Tags:       nonNilSlice(svc.Tags),
		Meta:       nonNilMap(svc.Meta),
		Port:       svc.Port,
		Address:    svc.Address,
		Weights:    api.AgentWeights{Passing: svc.Weights.Passing, Warning: svc.Weights.Warning},
		Datacenter: dc,
	}
}

// contentHash is a short hash (16 hex digits) of everything a client sees of a service, as
// the ContentHash of /v1/agent/service/:id. Each string is length-prefixed
// so that different services cannot run together into the same bytes.
func contentHash(svc catalog.Service) string {
	h := fnv.New64a()
	var n [8]byte
	num := func(v int) {
		binary.LittleEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	str := func(s string) {
		num(len(s))
		h.Write([]byte(s))
	}
	str(svc.ID)
	str(svc.Name)
	str(svc.Address)
	num(svc.Port)
	num(svc.Weights.Passing)
	num(svc.Weights.Warning)
	num(len(svc.Tags))
	for _, t := range svc.Tags {
		str(t)
	}
	meta := sortedPairs(svc.Meta)
	num(len(meta))
	for _, kv := range meta {
		str(kv)
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// GET /v1/agent/members, with ?filter on the members' fields as Consul
// takes it (Tags["dc"] == "dc1", Status == 1, …).
func (s *server) agentMembers(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	f, err := q.filter(memberSample)
	if err != nil {
		return err
	}
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 { return c.Index() })
	if err != nil {
		return err
	}
	// Read the index first and the members after: a change in between
	// makes the next blocking query return at once, never miss it.
	members := s.b.Members()
	if members == nil {
		members = []api.AgentMember{}
	}
	kept := members[:0]
	for _, m := range members {
		if !q.authz.Can(acl.Node, m.Name, acl.Read) {
			q.filtered = true
			continue
		}
		m.Tags = nonNilMap(m.Tags)
		kept = append(kept, m)
	}
	if members, err = narrowSlice(kept, nil, f); err != nil {
		return err
	}
	return s.writeJSON(w, q, index, members)
}

// PUT /v1/agent/join/:address
func (s *server) agentJoin(w http.ResponseWriter, r *http.Request, q *query, addr string) error {
	wan, err := q.flag("wan")
	if err != nil {
		return err
	}
	if wan {
		return errorf(http.StatusBadRequest, "wan: not supported; Shoal has a single gossip pool")
	}
	n, err := s.b.Join(r.Context(), []string{addr})
	if err != nil {
		return fmt.Errorf("join %q: %w", addr, err)
	}
	if n == 0 {
		return fmt.Errorf("join %q: no agent reached", addr)
	}
	s.log.Info("joined", "address", addr)
	writeOK(w)
	return nil
}

// PUT /v1/agent/leave
func (s *server) agentLeave(w http.ResponseWriter, r *http.Request, _ *query, _ string) error {
	if err := s.b.Leave(r.Context()); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	s.log.Info("left the cluster on request")
	writeOK(w)
	return nil
}

// selfBody is the body of /v1/agent/self: api.Self and the sections
// Consul's tools read beside it. `consul info` prints Stats and fails
// without it.
type selfBody struct {
	api.Self
	// Coord is this agent's network coordinate; null until it has one.
	Coord *api.Coordinate
	// DebugConfig holds the settings Consul's tools look up there.
	DebugConfig map[string]any
	Stats       map[string]map[string]string
	// XDS says that no proxy is served: Shoal has no Connect.
	XDS xdsSelf `json:"xDS"`
}

// xdsSelf is Consul's xDS section with every port off (-1).
type xdsSelf struct {
	SupportedProxies map[string][]string
	Port             int
	Ports            struct{ Plaintext, TLS int }
}

// GET /v1/agent/self
func (s *server) agentSelf(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 { return c.Index() })
	if err != nil {
		return err
	}
	out := selfBody{Self: s.b.Self()}
	out.Meta = nonNilMap(out.Meta)
	out.Member.Tags = nonNilMap(out.Member.Tags)
	for _, c := range s.b.Coordinates() {
		if c.Node == out.Config.NodeName {
			out.Coord = c.Coord
		}
	}
	cfg := out.Config
	out.DebugConfig = map[string]any{
		"Datacenter":        cfg.Datacenter,
		"PrimaryDatacenter": cfg.PrimaryDatacenter,
		"NodeName":          cfg.NodeName,
		"NodeID":            cfg.NodeID,
		"NodeMeta":          out.Meta,
		"ServerMode":        false,
		"ConnectEnabled":    false,
		"ACLsEnabled":       s.acl != nil && s.acl().Enabled(),
		"GRPCPort":          -1,
		"GRPCTLSPort":       -1,
		"Version":           cfg.Version,
	}
	out.Stats = s.b.Stats()
	if out.Stats == nil {
		out.Stats = map[string]map[string]string{}
	}
	out.Stats["runtime"] = map[string]string{
		"os":         runtime.GOOS,
		"arch":       runtime.GOARCH,
		"version":    runtime.Version(),
		"cpu_count":  strconv.Itoa(runtime.NumCPU()),
		"max_procs":  strconv.Itoa(runtime.GOMAXPROCS(0)),
		"goroutines": strconv.Itoa(runtime.NumGoroutine()),
	}
	out.Stats["build"] = map[string]string{"version": cfg.Version, "revision": cfg.Revision, "prerelease": ""}
	out.XDS = xdsSelf{SupportedProxies: map[string][]string{}, Port: -1}
	out.XDS.Ports.Plaintext, out.XDS.Ports.TLS = -1, -1
	return s.writeJSON(w, q, index, &out)
}

// GET /v1/agent/version (Consul 1.16+): the agent's version.
func (s *server) agentVersion(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	cfg := s.b.Self().Config
	return s.writeJSON(w, q, 0, map[string]string{
		"SHA":          cfg.Revision,
		"BuildDate":    "",
		"HumanVersion": cfg.Version,
		"FIPS":         "",
	})
}

// GET /v1/status/leader. Shoal has no leader; the local agent answers with
// its own gossip address so that clients probing for a leader keep
// working (an empty answer means "no leader" to them).
func (s *server) statusLeader(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 { return c.Index() })
	if err != nil {
		return err
	}
	return s.writeJSON(w, q, index, s.gossipAddr())
}

// GET /v1/status/peers: the local agent only, as for the leader.
func (s *server) statusPeers(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	index, err := s.read(r.Context(), q, func(c *catalog.Catalog) uint64 { return c.Index() })
	if err != nil {
		return err
	}
	return s.writeJSON(w, q, index, []string{s.gossipAddr()})
}

// gossipAddr is this agent's advertised gossip address, "ip:port".
func (s *server) gossipAddr() string {
	m := s.b.Self().Member
	return net.JoinHostPort(m.Addr, strconv.Itoa(int(m.Port)))
}

func nonNilSlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
