package localapi

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/serf/coordinate"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// testBackend is a Backend on a real catalog.Catalog, guarded the way the
// agent guards it: a read-write mutex, and a channel closed and replaced
// at every change.
type testBackend struct {
	mu      sync.RWMutex
	cat     *catalog.Catalog
	changed chan struct{}
	now     time.Time
	dc      string
	addr    string
	port    uint16

	reads atomic.Int64 // Read calls, so tests can tell a query is waiting

	joined  []string
	joinErr error
	left    bool

	// What the agent keeps beside the catalog: the definitions of local
	// checks and their full output.
	defs      map[string]api.AgentServiceCheck
	outputs   map[string]string
	counters  map[string]uint64 // the last version counter of each remote origin
	reloads   int
	reloadErr error

	// onMonitor, if set, answers Monitor; otherwise Monitor streams no
	// line and closes the channel when ctx ends.
	onMonitor func(ctx context.Context, level slog.Level, json bool) (<-chan []byte, error)

	// Network coordinates and last-heard ages by node (set under mu);
	// a node missing from heard has not been heard from.
	coords map[string]*coordinate.Coordinate
	heard  map[string]time.Duration

	// keyOps records the keyring operations asked of the backend; keyRes
	// and keyErr answer them.
	keyOps []string
	keyRes api.KeyringResponse
	keyErr error
	// summaries are what remote members answer a convergence probe with.
	summaries map[string]uint64
}

const localNode = "node-a"

func newTestBackend() *testBackend {
	b := &testBackend{
		cat:     catalog.New(localNode, 100),
		changed: make(chan struct{}),
		now:     time.Unix(1_700_000_000, 0),
		dc:      "dc1",
		addr:    "10.0.0.1",
		port:    7946,
	}
	b.defs, b.outputs, b.counters = map[string]api.AgentServiceCheck{}, map[string]string{}, map[string]uint64{}
	b.cat.SetNode(catalog.Node{
		Name: localNode, Address: b.addr, Port: int(b.port), Status: catalog.StatusAlive,
		Epoch: 100, Meta: map[string]string{"shoal-epoch": "100"},
	}, b.now)
	return b
}

// update changes the catalog under the write lock and wakes the waiters.
func (b *testBackend) update(fn func(c *catalog.Catalog)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.now = b.now.Add(time.Second)
	fn(b.cat)
	close(b.changed)
	b.changed = make(chan struct{})
}

// addRemote puts a remote node and its services into the catalog, as the
// gossip layer would.
func (b *testBackend) addRemote(node, addr string, svcs ...catalog.Service) {
	b.update(func(c *catalog.Catalog) {
		c.SetNode(catalog.Node{Name: node, Address: addr, Port: 7946, Status: catalog.StatusAlive, Epoch: 1,
			Meta: map[string]string{"rack": "r1"}}, b.now)
		for _, s := range svcs {
			c.Apply(catalog.Entry{Origin: node, Version: b.nextVersion(node), Service: s.Normalize()}, b.now)
		}
	})
}

// nextVersion is the next version of a remote origin's entries; call
// under update.
func (b *testBackend) nextVersion(node string) catalog.Version {
	b.counters[node]++
	return catalog.Version{Epoch: 1, Counter: b.counters[node]}
}

// putRemoteCheck puts a remote node's check into the catalog, as the
// gossip layer would.
func (b *testBackend) putRemoteCheck(node string, ck catalog.Check) {
	b.update(func(c *catalog.Catalog) {
		c.Apply(catalog.Entry{Origin: node, Version: b.nextVersion(node), Kind: catalog.KindCheck, Check: ck}, b.now)
	})
}

func (b *testBackend) setStatus(node string, st catalog.NodeStatus) {
	b.update(func(c *catalog.Catalog) {
		n, ok := c.Node(node)
		if !ok {
			panic("no node " + node)
		}
		n.Status = st
		c.SetNode(n, b.now)
	})
}

func (b *testBackend) index() uint64 {
	var i uint64
	b.Read(func(c *catalog.Catalog) { i = c.Index() })
	return i
}

// state is everything the catalog stores, for before/after comparisons.
func (b *testBackend) state() string {
	var s string
	b.Read(func(c *catalog.Catalog) { s = fmt.Sprintf("%d %+v", c.Index(), c.Entries()) })
	return s
}

func (b *testBackend) Self() api.Self {
	return api.Self{
		Config: api.SelfConfig{Datacenter: b.dc, PrimaryDatacenter: b.dc, NodeName: localNode, Version: "0.1.0"},
		Member: api.AgentMember{Name: localNode, Addr: b.addr, Port: b.port, Status: api.MemberAlive},
	}
}

func (b *testBackend) Members() []api.AgentMember {
	var out []api.AgentMember
	b.Read(func(c *catalog.Catalog) {
		for _, n := range c.Nodes() {
			st := api.MemberAlive
			switch n.Status {
			case catalog.StatusDead:
				st = api.MemberFailed
			case catalog.StatusLeft:
				st = api.MemberLeft
			}
			out = append(out, api.AgentMember{Name: n.Name, Addr: n.Address, Port: uint16(n.Port), Status: st})
		}
	})
	return out
}

func (b *testBackend) Join(ctx context.Context, addrs []string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.joinErr != nil {
		return 0, b.joinErr
	}
	b.joined = append(b.joined, addrs...)
	return len(addrs), nil
}

func (b *testBackend) Leave(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.left = true
	return nil
}

// RegisterService validates the service and every check before it
// changes anything, as the agent does, then adds its checks (replacing
// the others with ReplaceExistingChecks).
func (b *testBackend) RegisterService(s catalog.Service, checks []api.AgentServiceCheck, opts ...RegisterOptions) error {
	replace := len(opts) > 0 && opts[0].ReplaceExistingChecks
	s = s.Normalize()
	if err := s.Validate(); err != nil {
		return err
	}
	cks := make([]catalog.Check, len(checks))
	for i, def := range checks {
		field := "Check"
		if len(checks) > 1 {
			field = fmt.Sprintf("Checks[%d]", i)
		}
		id := def.CheckID
		if id == "" {
			id = "service:" + s.ID
			if len(checks) > 1 {
				id += fmt.Sprintf(":%d", i+1)
			}
		}
		name := def.Name
		if name == "" {
			name = fmt.Sprintf("Service '%s' check", s.Name)
		}
		ck, err := checkOf(def, id, name, def.Notes, s.ID, field+".")
		if err != nil {
			return err
		}
		for _, prev := range cks[:i] {
			if prev.ID == ck.ID {
				return &catalog.FieldError{Field: field + ".CheckID", Msg: fmt.Sprintf("%q is used twice", ck.ID)}
			}
		}
		cks[i] = ck
	}
	b.update(func(c *catalog.Catalog) {
		if _, _, err := c.Put(s, b.now); err != nil {
			panic(err) // validated above
		}
		for _, v := range c.LocalChecks() {
			if replace && v.Check.ServiceID == s.ID && v.Check.Type != catalog.MaintenanceType {
				c.DeleteCheck(v.Check.ID, b.now)
				delete(b.defs, v.Check.ID)
			}
		}
		for i, ck := range cks {
			if _, _, err := c.PutCheck(ck, b.now); err != nil {
				panic(err)
			}
			b.defs[ck.ID] = checks[i]
		}
	})
	return nil
}

// checkOf converts a check definition as the agent does, in short: the
// first of TTL, HTTP, TCP and GRPC gives the type; the state starts as
// Status, or critical. prefix goes before the name of a bad field.
func checkOf(def api.AgentServiceCheck, id, name, notes, serviceID, prefix string) (catalog.Check, error) {
	ck := catalog.Check{ID: id, Name: name, ServiceID: serviceID, Notes: notes, Status: catalog.HealthCritical}
	switch {
	case def.TTL != "":
		ck.Type = "ttl"
	case def.HTTP != "":
		ck.Type = "http"
	case def.TCP != "":
		ck.Type = "tcp"
	case def.GRPC != "":
		ck.Type = "grpc"
	case len(def.Args) > 0:
		return ck, &catalog.FieldError{Field: prefix + "ScriptArgs", Msg: "script checks are not supported"}
	default:
		return ck, &catalog.FieldError{Field: prefix + "TTL", Msg: "one of TTL, HTTP, TCP or GRPC is required"}
	}
	if def.Status != "" {
		h, err := catalog.ParseHealth(def.Status)
		if err != nil {
			return ck, &catalog.FieldError{Field: prefix + "Status", Msg: err.Error()}
		}
		ck.Status = h
	}
	if err := ck.Validate(); err != nil {
		fe := err.(*catalog.FieldError)
		return ck, &catalog.FieldError{Field: prefix + fe.Field, Msg: fe.Msg}
	}
	return ck, nil
}

func (b *testBackend) RegisterCheck(r api.AgentCheckRegistration) error {
	name := cmp.Or(r.Name, r.AgentServiceCheck.Name)
	if name == "" {
		return &catalog.FieldError{Field: "Name", Msg: "must not be empty"}
	}
	id := cmp.Or(r.ID, r.CheckID, name)
	if id == catalog.NodeMaintenanceID || strings.HasPrefix(id, catalog.ServiceMaintenancePrefix) {
		return &catalog.FieldError{Field: "ID", Msg: "reserved for maintenance mode"}
	}
	ck, err := checkOf(r.AgentServiceCheck, id, name, cmp.Or(r.Notes, r.AgentServiceCheck.Notes), r.ServiceID, "")
	if err != nil {
		return err
	}
	b.mu.RLock() // not Read: tests count the reads of queries
	_, hasService := b.cat.LocalService(r.ServiceID)
	b.mu.RUnlock()
	if r.ServiceID != "" && !hasService {
		return &catalog.FieldError{Field: "ServiceID", Msg: fmt.Sprintf("%q is not a service of this agent", r.ServiceID)}
	}
	b.update(func(c *catalog.Catalog) {
		if _, _, err = c.PutCheck(ck, b.now); err == nil {
			b.defs[id] = r.AgentServiceCheck
			delete(b.outputs, id)
		}
	})
	return err
}

func (b *testBackend) DeregisterCheck(id string) error {
	var ok bool
	b.update(func(c *catalog.Catalog) {
		if _, ok = b.defs[id]; ok {
			c.DeleteCheck(id, b.now)
			delete(b.defs, id)
			delete(b.outputs, id)
		}
	})
	if !ok {
		return fmt.Errorf("check %q: %w", id, ErrNotFound)
	}
	return nil
}

// maxOutput is the output the agent keeps of a check, beside the head
// the catalog gossips.
const maxOutput = 4 << 10

func (b *testBackend) UpdateCheck(id string, status catalog.Health, output string) error {
	var err error
	b.update(func(c *catalog.Catalog) {
		ck, ok := c.LocalCheck(id)
		switch {
		case !ok:
			err = fmt.Errorf("check %q: %w", id, ErrNotFound)
		case ck.Type != "ttl":
			err = &catalog.FieldError{Field: "CheckID", Msg: fmt.Sprintf("%q is not a TTL check", id)}
		case !utf8.ValidString(output):
			err = &catalog.FieldError{Field: "Output", Msg: "must be UTF-8"}
		default:
			ck.Status, ck.Output = status, catalog.TruncateOutput(output, catalog.MaxOutputHead)
			if _, _, err = c.PutCheck(ck, b.now); err == nil {
				b.outputs[id] = catalog.TruncateOutput(output, maxOutput)
			}
		}
	})
	return err
}

func (b *testBackend) AgentChecks() []api.AgentCheck {
	var out []api.AgentCheck
	b.Read(func(c *catalog.Catalog) {
		for _, v := range c.LocalChecks() {
			ck := v.Check
			ac := api.AgentCheck{Node: localNode, CheckID: ck.ID, Name: ck.Name, Status: ck.Status.String(),
				Notes: ck.Notes, Output: ck.Output, ServiceID: ck.ServiceID, ServiceName: v.ServiceName,
				ServiceTags: slices.Clone(v.ServiceTags), Type: ck.Type, Damped: ck.Damped}
			if o, ok := b.outputs[ck.ID]; ok {
				ac.Output = o
			}
			if def, ok := b.defs[ck.ID]; ok {
				ac.Interval, ac.Timeout = def.Interval, def.Timeout
				ac.Definition = api.HealthCheckDefinition{HTTP: def.HTTP, TCP: def.TCP, GRPC: def.GRPC}
			}
			out = append(out, ac)
		}
	})
	slices.SortFunc(out, func(a, b api.AgentCheck) int { return strings.Compare(a.CheckID, b.CheckID) })
	return out
}

// maintenance adds or removes a maintenance check, as the agent does.
func (b *testBackend) maintenance(ck catalog.Check, enable bool, reason string) error {
	ck.Type, ck.Status, ck.Notes = catalog.MaintenanceType, catalog.HealthCritical, cmp.Or(reason, "Maintenance mode is enabled")
	if err := ck.Validate(); err != nil {
		return err
	}
	b.update(func(c *catalog.Catalog) {
		if enable {
			c.PutCheck(ck, b.now)
		} else {
			c.DeleteCheck(ck.ID, b.now)
		}
	})
	return nil
}

func (b *testBackend) NodeMaintenance(enable bool, reason string) error {
	return b.maintenance(catalog.Check{ID: catalog.NodeMaintenanceID, Name: "Node Maintenance Mode"}, enable, reason)
}

func (b *testBackend) ServiceMaintenance(id string, enable bool, reason string) error {
	b.mu.RLock() // not Read: tests count the reads of queries
	_, ok := b.cat.LocalService(id)
	b.mu.RUnlock()
	if !ok {
		return fmt.Errorf("service %q: %w", id, ErrNotFound)
	}
	return b.maintenance(catalog.Check{ID: catalog.ServiceMaintenanceID(id), Name: "Service Maintenance Mode", ServiceID: id}, enable, reason)
}

func (b *testBackend) Reload(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reloads++
	return b.reloadErr
}

func (b *testBackend) DeregisterService(id string) error {
	var ok bool
	b.update(func(c *catalog.Catalog) {
		if _, ok = c.Delete(id, b.now); ok {
			for _, v := range c.LocalChecks() {
				if v.Check.ServiceID == id {
					c.DeleteCheck(v.Check.ID, b.now)
					delete(b.defs, v.Check.ID)
					delete(b.outputs, v.Check.ID)
				}
			}
		}
	})
	if !ok {
		return fmt.Errorf("service %q: %w", id, ErrNotFound)
	}
	return nil
}

func (b *testBackend) LocalServices() []catalog.Service {
	var out []catalog.Service
	b.Read(func(c *catalog.Catalog) {
		for _, s := range c.LocalServices() {
			out = append(out, s.Clone())
		}
	})
	return out
}

func (b *testBackend) Datacenter() string { return b.dc }

func (b *testBackend) Read(fn func(c *catalog.Catalog)) {
	b.reads.Add(1)
	b.mu.RLock()
	defer b.mu.RUnlock()
	fn(b.cat)
}

func (b *testBackend) Changed() <-chan struct{} {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.changed
}

func (b *testBackend) Monitor(ctx context.Context, level slog.Level, json bool) (<-chan []byte, error) {
	if b.onMonitor != nil {
		return b.onMonitor(ctx, level, json)
	}
	ch := make(chan []byte)
	context.AfterFunc(ctx, func() { close(ch) })
	return ch, nil
}

func (b *testBackend) Coordinates() []api.CoordinateEntry {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := []api.CoordinateEntry{}
	for _, n := range slices.Sorted(maps.Keys(b.coords)) {
		c := b.coords[n]
		out = append(out, api.CoordinateEntry{Node: n, Coord: &api.Coordinate{
			Vec: slices.Clone(c.Vec), Error: c.Error, Adjustment: c.Adjustment, Height: c.Height}})
	}
	return out
}

func (b *testBackend) RTT(from, to string) (time.Duration, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	cf, ct := b.coords[from], b.coords[to]
	switch {
	case cf == nil || ct == nil:
		return 0, false
	case from == to:
		return 0, true
	}
	return cf.DistanceTo(ct), true
}

func (b *testBackend) LastHeard(nodes []string, ago []time.Duration) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for i, n := range nodes {
		d, ok := b.heard[n]
		if !ok {
			d = -1
		}
		ago[i] = d
	}
}

// Summaries answers with the summaries tests set for the remote nodes.
func (b *testBackend) Summaries(ctx context.Context) map[string]uint64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make(map[string]uint64, len(b.summaries))
	for n, s := range b.summaries {
		out[n] = s
	}
	return out
}

func (b *testBackend) Keyring(_ context.Context, op string, key []byte, localOnly bool) (api.KeyringResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.keyOps = append(b.keyOps, fmt.Sprintf("%s %x local=%t", op, key, localOnly))
	return b.keyRes, b.keyErr
}

var _ Backend = (*testBackend)(nil)

// testLogger sends the handler's logs to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// newTestServer returns a backend and the handler on it.
func newTestServer(t testing.TB) (*testBackend, http.Handler) {
	b := newTestBackend()
	return b, New(Config{Backend: b, Logger: testLogger(t)})
}

// response is a finished request.
type response struct {
	code   int
	header http.Header
	body   string
}

// do sends one request to h. Headers are given as "Key: value" strings.
func do(t testing.TB, h http.Handler, method, target, body string, headers ...string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := localRequest(method, target, r)
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ": ")
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{code: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		case <-tick.C:
		}
	}
}

// localRequest is httptest.NewRequest as a local client sends it, with
// Host 127.0.0.1:8500 (the API refuses hosts that do not name the agent).
func localRequest(method, target string, body io.Reader) *http.Request {
	req := httptest.NewRequest(method, target, body)
	req.Host = "127.0.0.1:8500"
	return req
}

func (b *testBackend) Stats() map[string]map[string]string {
	return map[string]map[string]string{"agent": {"services": "0"}}
}
