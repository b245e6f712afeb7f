package localapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
		for i, s := range svcs {
			c.Apply(catalog.Entry{Origin: node, Version: catalog.Version{Epoch: 1, Counter: uint64(i + 1)}, Service: s.Normalize()}, b.now)
		}
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

func (b *testBackend) RegisterService(s catalog.Service) error {
	var err error
	b.update(func(c *catalog.Catalog) { _, _, err = c.Put(s, b.now) })
	return err
}

func (b *testBackend) DeregisterService(id string) error {
	var ok bool
	b.update(func(c *catalog.Catalog) { _, ok = c.Delete(id, b.now) })
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
	req := httptest.NewRequest(method, target, r)
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
