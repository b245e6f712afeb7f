package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// fakeAgent serves GET /v1/health/service/:name the way the agent does:
// ?passing (and ?warning), every ?tag must match, and blocking queries on
// one index (?index, ?wait, X-Consul-Index). It can be stopped and started
// again on the same address, as an agent restarting would be.
type fakeAgent struct {
	t    testing.TB
	addr string

	mu       sync.Mutex
	srv      *httptest.Server
	quit     chan struct{} // closed by stop: blocking queries end unanswered
	index    uint64
	services map[string][]*api.ServiceEntry
	changed  chan struct{} // closed at the next change
	queries  []url.Values
}

func newFakeAgent(t testing.TB) *fakeAgent {
	f := &fakeAgent{t: t, index: 1, services: map[string][]*api.ServiceEntry{}, changed: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.serve(ln)
	t.Cleanup(f.stop)
	return f
}

func (f *fakeAgent) serve(ln net.Listener) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(f.handle))
	srv.Listener.Close()
	srv.Listener = ln
	f.mu.Lock()
	f.srv = srv
	f.quit = make(chan struct{})
	f.mu.Unlock()
	srv.Start()
}

func (f *fakeAgent) client() *api.Client { return &api.Client{Addr: f.addr} }

// stop closes the listener, then every connection, blocking queries
// included: clients are refused until start.
func (f *fakeAgent) stop() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	if srv != nil {
		close(f.quit)
	}
	f.mu.Unlock()
	if srv != nil {
		srv.Listener.Close()
		srv.CloseClientConnections()
		srv.Close()
	}
}

// start listens again on the same address.
func (f *fakeAgent) start() {
	var ln net.Listener
	testutil.WaitFor(f.t, 5*time.Second, func() error {
		var err error
		ln, err = net.Listen("tcp", f.addr)
		return err
	})
	f.serve(ln)
}

// set replaces the instances of a service and wakes blocking queries.
func (f *fakeAgent) set(service string, entries ...*api.ServiceEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services[service] = entries
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
}

// lastQuery returns the query of the last request.
func (f *fakeAgent) lastQuery() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		return nil
	}
	return f.queries[len(f.queries)-1]
}

func (f *fakeAgent) handle(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/v1/health/service/")
	if !ok || r.Method != http.MethodGet {
		http.Error(w, "not emulated", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	f.mu.Lock()
	f.queries = append(f.queries, q)
	quit := f.quit
	f.mu.Unlock()
	var index uint64
	if s := q.Get("index"); s != "" {
		var err error
		if index, err = strconv.ParseUint(s, 10, 64); err != nil {
			http.Error(w, "index: not a number", http.StatusBadRequest)
			return
		}
	}
	wait := 5 * time.Minute
	if s := q.Get("wait"); s != "" {
		var err error
		if wait, err = time.ParseDuration(s); err != nil {
			http.Error(w, "wait: not a duration", http.StatusBadRequest)
			return
		}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		f.mu.Lock()
		cur, changed, all := f.index, f.changed, f.services[name]
		f.mu.Unlock()
		if index == 0 || cur != index {
			f.answer(w, q, cur, all)
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			f.answer(w, q, cur, all)
			return
		case <-r.Context().Done():
			return
		case <-quit:
			panic(http.ErrAbortHandler) // the connection drops, unanswered
		}
	}
}

func (f *fakeAgent) answer(w http.ResponseWriter, q url.Values, index uint64, all []*api.ServiceEntry) {
	_, passing := q["passing"]
	_, warning := q["warning"]
	out := []*api.ServiceEntry{}
	for _, e := range all {
		status := api.AggregatedStatus(e.Checks)
		if passing && status != api.HealthPassing && (!warning || status != api.HealthWarning) {
			continue
		}
		if !hasAll(e.Service.Tags, q["tag"]) {
			continue
		}
		out = append(out, e)
	}
	w.Header().Set("X-Consul-Index", strconv.FormatUint(index, 10))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func hasAll(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

// inst builds an instance of "web" on a node of its own at 10.0.0.<i>.
func inst(i int, status string, w api.AgentWeights, tags ...string) *api.ServiceEntry {
	node := fmt.Sprintf("n%d", i)
	return &api.ServiceEntry{
		Node: &api.Node{Node: node, Address: fmt.Sprintf("10.0.0.%d", i)},
		Service: &api.AgentService{
			ID: fmt.Sprintf("web-%d", i), Service: "web", Port: 8000 + i, Tags: tags, Weights: w,
		},
		Checks: []*api.HealthCheck{
			{Node: node, CheckID: "serfHealth", Status: api.HealthPassing},
			{Node: node, CheckID: "service:web", Status: status},
		},
	}
}

func passingInsts(n int) []*api.ServiceEntry {
	var es []*api.ServiceEntry
	for i := 1; i <= n; i++ {
		es = append(es, inst(i, api.HealthPassing, api.AgentWeights{Passing: 1, Warning: 1}))
	}
	return es
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// startBalancer starts a balancer on f's "web" and waits for its first
// answer.
func startBalancer(t testing.TB, f *fakeAgent, cfg api.BalancerConfig) *api.Balancer {
	t.Helper()
	b, err := api.NewBalancer(context.Background(), f.client(), "web", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	select {
	case <-b.Ready():
	case <-time.After(10 * time.Second):
		t.Fatalf("no first answer: %+v", b.State())
	}
	return b
}

// pickAddr picks, reports success and returns the address picked.
func pickAddr(t testing.TB, b *api.Balancer) string {
	t.Helper()
	in, done, err := b.Pick()
	if err != nil {
		t.Fatal(err)
	}
	done(nil)
	return in.Addr
}

// countPicks picks n times, reporting success, and counts the addresses.
func countPicks(t testing.TB, b *api.Balancer, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		counts[pickAddr(t, b)]++
	}
	return counts
}

func TestBalancerInstance(t *testing.T) {
	f := newFakeAgent(t)
	withAddr := inst(1, api.HealthPassing, api.AgentWeights{Passing: 3, Warning: 1}, "v1")
	withAddr.Service.Address = "fd00::1"
	withAddr.Service.Meta = map[string]string{"zone": "a"}
	noWeights := inst(2, api.HealthPassing, api.AgentWeights{})
	noPort := inst(3, api.HealthPassing, api.AgentWeights{Passing: 1})
	noPort.Service.Port = 0
	f.set("web", withAddr, noWeights, noPort)
	b := startBalancer(t, f, api.BalancerConfig{})
	got := b.Instances()
	want := []api.Instance{
		{Addr: "[fd00::1]:8001", ID: "web-1", Service: "web", Node: "n1", Tags: []string{"v1"},
			Meta: map[string]string{"zone": "a"}, Weights: api.AgentWeights{Passing: 3, Warning: 1}, Status: api.HealthPassing},
		{Addr: "10.0.0.2:8002", ID: "web-2", Service: "web", Node: "n2",
			Weights: api.AgentWeights{Passing: 1, Warning: 1}, Status: api.HealthPassing},
	}
	if dump(got) != dump(want) {
		t.Errorf("instances\n%s\nwant\n%s", dump(got), dump(want))
	}
	st := b.State()
	if !st.Ready || st.Stale || st.Err != nil || st.Instances != 2 || st.Index != 2 || st.LastContact.IsZero() || st.Service != "web" {
		t.Errorf("state %+v", st)
	}
}

func TestBalancerConfigRefused(t *testing.T) {
	for _, tt := range []struct {
		service string
		cfg     api.BalancerConfig
		want    string
	}{
		{"", api.BalancerConfig{}, "empty service name"},
		{"web", api.BalancerConfig{Strategy: 9}, "Strategy 9"},
		{"web", api.BalancerConfig{MaxAttempts: -1}, "MaxAttempts -1"},
		{"web", api.BalancerConfig{BreakerCoolDown: -time.Second}, "BreakerCoolDown -1s"},
		{"web", api.BalancerConfig{WaitTime: -time.Second}, "WaitTime -1s"},
	} {
		_, err := api.NewBalancer(context.Background(), nil, tt.service, tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q %+v: err %v, want one naming %q", tt.service, tt.cfg, err, tt.want)
		}
	}
}

func TestBalancerRoundRobinEven(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", passingInsts(4)...)
	b := startBalancer(t, f, api.BalancerConfig{Strategy: api.StrategyRoundRobin})
	wantEven(t, countPicks(t, b, 400), 4)
}

// wantEven checks that counts spread over n instances exactly evenly.
func wantEven(t *testing.T, counts map[string]int, n int) {
	t.Helper()
	total := 0
	for _, c := range counts {
		total += c
	}
	for addr, c := range counts {
		if len(counts) != n || c != total/n {
			t.Errorf("%s picked %d of %d times, want exactly %d for each of %d: %v", addr, c, total, total/n, n, counts)
		}
	}
}

func TestBalancerRandomSpread(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", passingInsts(4)...)
	b := startBalancer(t, f, api.BalancerConfig{Strategy: api.StrategyRandom, Rand: rand.New(rand.NewPCG(1, 2))})
	const picks = 40000
	counts := countPicks(t, b, picks)
	for addr, n := range counts {
		if share := float64(n) / picks; math.Abs(share-0.25) > 0.01 {
			t.Errorf("%s got %.3f of the picks, want 0.25±0.01", addr, share)
		}
	}
	if len(counts) != 4 {
		t.Errorf("picked %v", counts)
	}
}

func TestBalancerWeighted(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web",
		inst(1, api.HealthPassing, api.AgentWeights{Passing: 1, Warning: 9}),
		inst(2, api.HealthPassing, api.AgentWeights{Passing: 2, Warning: 9}),
		inst(3, api.HealthPassing, api.AgentWeights{Passing: 5, Warning: 9}),
		inst(4, api.HealthWarning, api.AgentWeights{Passing: 9, Warning: 2}), // weighs Warning
		inst(5, api.HealthWarning, api.AgentWeights{Passing: 9, Warning: 0}), // never while others may be
		inst(6, api.HealthCritical, api.AgentWeights{Passing: 9, Warning: 9}),
	)
	b := startBalancer(t, f, api.BalancerConfig{Strategy: api.StrategyWeighted, Warning: true, Rand: rand.New(rand.NewPCG(7, 7))})
	if q := f.lastQuery(); q.Get("passing") != "1" || q.Get("warning") != "1" {
		t.Errorf("query %v, want passing=1&warning=1", q)
	}
	if n := len(b.Instances()); n != 5 {
		t.Fatalf("%d instances, want 5: the critical one left out", n)
	}
	const picks = 100000
	counts := countPicks(t, b, picks)
	want := map[string]float64{"10.0.0.1:8001": 0.1, "10.0.0.2:8002": 0.2, "10.0.0.3:8003": 0.5, "10.0.0.4:8004": 0.2}
	for addr, share := range want {
		if got := float64(counts[addr]) / picks; math.Abs(got-share) > 0.01 {
			t.Errorf("%s got %.4f of the picks, want %.2f±0.01", addr, got, share)
		}
	}
	if n := counts["10.0.0.5:8005"]; n != 0 {
		t.Errorf("the instance of weight 0 was picked %d times", n)
	}
}

func TestBalancerWeightedOnlyZeroLeft(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", inst(1, api.HealthWarning, api.AgentWeights{Passing: 1, Warning: 0}))
	b := startBalancer(t, f, api.BalancerConfig{Strategy: api.StrategyWeighted, Warning: true})
	if addr := pickAddr(t, b); addr != "10.0.0.1:8001" {
		t.Errorf("picked %s", addr)
	}
}

func TestBalancerLeastOutstanding(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", passingInsts(3)...)
	b := startBalancer(t, f, api.BalancerConfig{Strategy: api.StrategyLeastOutstanding})
	a, doneA, _ := b.Pick()
	c, doneC, _ := b.Pick()
	if a.Addr == c.Addr {
		t.Fatalf("second pick %s while it has a call in flight and others are idle", c.Addr)
	}
	idle, doneIdle, _ := b.Pick()
	if idle.Addr == a.Addr || idle.Addr == c.Addr {
		t.Fatalf("third pick %s, want the idle instance", idle.Addr)
	}
	// All have one call in flight; the one that finishes is idle again.
	doneC(nil)
	for range 5 {
		in, done, err := b.Pick()
		if err != nil || in.Addr != c.Addr {
			t.Fatalf("picked %s, %v; want the idle %s", in.Addr, err, c.Addr)
		}
		done(nil)
	}
	doneA(nil)
	doneIdle(nil)
	wantEven(t, countPicks(t, b, 30), 3) // all idle: ties go round
}

func TestBalancerNearest(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", passingInsts(3)...)
	b := startBalancer(t, f, api.BalancerConfig{Strategy: api.StrategyNearest, BreakerFailures: 1})
	if q := f.lastQuery(); q.Get("near") != "_agent" {
		t.Errorf("query %v, want near=_agent", q)
	}
	for range 5 {
		if addr := pickAddr(t, b); addr != "10.0.0.1:8001" {
			t.Fatalf("picked %s, want the first in the agent's order", addr)
		}
	}
	_, done, _ := b.Pick()
	done(errors.New("refused"))
	if addr := pickAddr(t, b); addr != "10.0.0.2:8002" {
		t.Errorf("picked %s with the nearest's breaker open, want the next nearest", addr)
	}
}

func TestBalancerBreaker(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", passingInsts(3)...)
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := startBalancer(t, f, api.BalancerConfig{BreakerFailures: 3, BreakerCoolDown: 10 * time.Second, Now: clock.Now})
	const dead = "10.0.0.2:8002"
	errDead := errors.New("connection refused")
	// call picks once and fails the call if it went to the dead instance.
	call := func() string {
		t.Helper()
		in, done, err := b.Pick()
		if err != nil {
			t.Fatal(err)
		}
		if in.Addr == dead {
			done(errDead)
		} else {
			done(nil)
		}
		return in.Addr
	}
	deadCalls := 0
	for range 9 { // round-robin: 3 calls reach the dead instance
		if call() == dead {
			deadCalls++
		}
	}
	if deadCalls != 3 || b.State().Open != 1 {
		t.Fatalf("%d calls to the dead instance, state %+v; want 3 and its breaker open", deadCalls, b.State())
	}
	for range 20 {
		if call() == dead {
			t.Fatal("picked the instance whose breaker is open")
		}
	}

	// Cool-down over: one probe only, until its result comes.
	clock.Add(10 * time.Second)
	var probe func(error)
	for range 3 {
		in, done, err := b.Pick()
		if err != nil {
			t.Fatal(err)
		}
		if in.Addr == dead {
			probe = done
			break
		}
		done(nil)
	}
	if probe == nil {
		t.Fatal("no probe call to the dead instance after the cool-down")
	}
	for range 10 {
		if call() == dead {
			t.Fatal("a second call let through while the probe is in flight")
		}
	}
	probe(errDead) // still dead: open for another cool-down
	clock.Add(9 * time.Second)
	for range 10 {
		if call() == dead {
			t.Fatal("picked the dead instance before the second cool-down ended")
		}
	}
	clock.Add(time.Second)

	// Back to life: the probe succeeds and the breaker closes.
	var sawProbe bool
	for range 3 {
		if pickAddr(t, b) == dead {
			sawProbe = true
			break
		}
	}
	if !sawProbe || b.State().Open != 0 {
		t.Fatalf("probe seen %v, state %+v; want the breaker closed", sawProbe, b.State())
	}
	counts := countPicks(t, b, 30)
	if counts[dead] != 10 {
		t.Errorf("after closing: %v, want the instance back in turn", counts)
	}
}

func TestBalancerBreakerProbeNeverReported(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", passingInsts(1)...)
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := startBalancer(t, f, api.BalancerConfig{BreakerFailures: 1, BreakerCoolDown: time.Second, Now: clock.Now})
	_, done, _ := b.Pick()
	done(errors.New("reset"))
	if _, _, err := b.Pick(); !errors.Is(err, api.ErrNoInstances) || !strings.Contains(err.Error(), "open breakers") {
		t.Fatalf("pick with the only breaker open: %v", err)
	}
	clock.Add(time.Second)
	if _, _, err := b.Pick(); err != nil { // the probe; its result never comes
		t.Fatal(err)
	}
	if _, _, err := b.Pick(); !errors.Is(err, api.ErrNoInstances) {
		t.Fatalf("second pick while the probe is in flight: %v", err)
	}
	clock.Add(time.Second)
	if _, _, err := b.Pick(); err != nil {
		t.Fatalf("the lost probe is not given up after a cool-down: %v", err)
	}
}

func TestBalancerDoRetriesOnAnotherInstance(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", passingInsts(3)...)
	b := startBalancer(t, f, api.BalancerConfig{BreakerFailures: -1})
	errDead := errors.New("connection refused")
	const dead = "10.0.0.1:8001"
	var mu sync.Mutex
	var calls []string
	call := func(_ context.Context, in api.Instance) error {
		mu.Lock()
		calls = append(calls, in.Addr)
		mu.Unlock()
		if in.Addr == dead {
			return errDead
		}
		return nil
	}
	for range 6 {
		if err := b.Do(context.Background(), call); err != nil {
			t.Fatal(err)
		}
	}
	// Every Do that reached the dead instance went on to another one.
	deadCalls := 0
	for i, a := range calls {
		if a != dead {
			continue
		}
		deadCalls++
		if i+1 == len(calls) || calls[i+1] == dead {
			t.Errorf("calls %v: a failed call was not retried on another instance", calls)
		}
	}
	if deadCalls == 0 || len(calls) != 6+deadCalls {
		t.Errorf("calls %v: want six Dos, each call to %s retried once", calls, dead)
	}

	// Every instance fails: one call to each, then the last error.
	calls = nil
	err := b.Do(context.Background(), func(_ context.Context, in api.Instance) error {
		calls = append(calls, in.Addr)
		return errDead
	})
	if !errors.Is(err, errDead) || len(calls) != 3 || len(slices.Compact(slices.Sorted(slices.Values(calls)))) != 3 {
		t.Errorf("err %v after calls %v; want errDead after one call to each instance", err, calls)
	}

	// An error the caller does not count as a failure is not retried.
	errBad := errors.New("400 bad request")
	b2 := startBalancer(t, f, api.BalancerConfig{IsFailure: func(err error) bool { return !errors.Is(err, errBad) }})
	n := 0
	err = b2.Do(context.Background(), func(context.Context, api.Instance) error { n++; return errBad })
	if err != errBad || n != 1 {
		t.Errorf("err %v after %d calls, want errBad as is after one", err, n)
	}
}

func TestBalancerDoMaxAttempts(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", passingInsts(5)...)
	b := startBalancer(t, f, api.BalancerConfig{MaxAttempts: 2})
	n := 0
	err := b.Do(context.Background(), func(context.Context, api.Instance) error { n++; return errors.New("timeout") })
	if err == nil || n != 2 {
		t.Errorf("err %v after %d calls, want an error after 2", err, n)
	}
}

func TestBalancerDoStopsWhenCallerGivesUp(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", passingInsts(3)...)
	b := startBalancer(t, f, api.BalancerConfig{BreakerFailures: 1})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := b.Do(ctx, func(ctx context.Context, _ api.Instance) error {
		n++
		cancel()
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) || n != 1 || b.State().Open != 0 {
		t.Errorf("err %v after %d calls, state %+v; want Canceled after one, no breaker opened", err, n, b.State())
	}
}

func TestBalancerAgentGoesAway(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", passingInsts(2)...)
	b := startBalancer(t, f, api.BalancerConfig{BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
	before := b.State().LastContact

	f.stop()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if st := b.State(); !st.Stale || !errors.Is(st.Err, api.ErrAgentUnreachable) {
			return fmt.Errorf("state %+v, want stale with ErrAgentUnreachable", st)
		}
		return nil
	})
	st := b.State()
	if !st.Ready || st.Instances != 2 || !st.LastContact.Equal(before) {
		t.Errorf("state %+v: want the last answer kept", st)
	}
	seen := map[string]bool{}
	for range 4 {
		seen[pickAddr(t, b)] = true
	}
	if len(seen) != 2 {
		t.Errorf("picks while the agent is away: %v", seen)
	}
	if err := b.Do(context.Background(), func(context.Context, api.Instance) error { return nil }); err != nil {
		t.Errorf("Do while the agent is away: %v", err)
	}

	// It comes back with a new set.
	f.set("web", passingInsts(3)...)
	f.start()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if st := b.State(); st.Stale || st.Err != nil || st.Instances != 3 {
			return fmt.Errorf("state %+v, want current with 3 instances", st)
		}
		return nil
	})
}

func TestBalancerAgentNeverAnswered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b, err := api.NewBalancer(context.Background(), &api.Client{Addr: addr}, "web", api.BalancerConfig{BackoffMin: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Do(context.Background(), func(context.Context, api.Instance) error {
		t.Error("called with no instance known")
		return nil
	})
	if !errors.Is(err, api.ErrNoInstances) || !errors.Is(err, api.ErrAgentUnreachable) {
		t.Errorf("Do: %v, want ErrNoInstances and ErrAgentUnreachable", err)
	}
	if _, _, err := b.Pick(); !errors.Is(err, api.ErrNoInstances) {
		t.Errorf("Pick: %v", err)
	}
	if st := b.State(); st.Ready || !st.Stale {
		t.Errorf("state %+v", st)
	}
}

func TestBalancerWatchWakesOnChange(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", inst(1, api.HealthPassing, api.AgentWeights{Passing: 1}, "v1", "eu"))
	// A wait far longer than the test: only a woken query can bring the
	// change in time.
	b := startBalancer(t, f, api.BalancerConfig{Tags: []string{"v1", "eu"}, WaitTime: time.Hour})
	testutil.WaitFor(t, 5*time.Second, func() error {
		q := f.lastQuery()
		if q.Get("index") != "2" || q.Get("wait") != "3600000ms" || q.Get("passing") != "1" ||
			!slices.Equal(q["tag"], []string{"v1", "eu"}) || q.Has("warning") {
			return fmt.Errorf("query %v, want a blocking query at index 2 with both tags, passing", q)
		}
		return nil
	})
	f.set("web",
		inst(1, api.HealthPassing, api.AgentWeights{Passing: 1}, "v1", "eu"),
		inst(2, api.HealthPassing, api.AgentWeights{Passing: 1}, "eu", "v1", "canary"),
		inst(3, api.HealthPassing, api.AgentWeights{Passing: 1}, "v1"),        // not in eu
		inst(4, api.HealthCritical, api.AgentWeights{Passing: 1}, "v1", "eu"), // not passing
	)
	testutil.WaitFor(t, 5*time.Second, func() error {
		var ids []string
		for _, in := range b.Instances() {
			ids = append(ids, in.ID)
		}
		if !slices.Equal(ids, []string{"web-1", "web-2"}) {
			return fmt.Errorf("instances %v, want web-1 web-2", ids)
		}
		return nil
	})
	if st := b.State(); st.Index != 3 {
		t.Errorf("state %+v, want index 3", st)
	}
}

func TestBalancerBreakerKeptAcrossAnswers(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", passingInsts(2)...)
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := startBalancer(t, f, api.BalancerConfig{Strategy: api.StrategyNearest, BreakerFailures: 1, Now: clock.Now})
	_, done, _ := b.Pick()
	done(errors.New("refused"))
	f.set("web", passingInsts(3)...)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if st := b.State(); st.Instances != 3 {
			return fmt.Errorf("state %+v", st)
		}
		return nil
	})
	if st := b.State(); st.Open != 1 {
		t.Errorf("state %+v: the breaker was lost with the new answer", st)
	}
	if addr := pickAddr(t, b); addr != "10.0.0.2:8002" {
		t.Errorf("picked %s", addr)
	}
}

func TestBalancerClose(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", passingInsts(1)...)
	b := startBalancer(t, f, api.BalancerConfig{WaitTime: time.Hour})
	b.Close() // ends the blocking query in flight, at once
	b.Close()
	if addr := pickAddr(t, b); addr != "10.0.0.1:8001" {
		t.Errorf("pick after Close: %s", addr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b2, err := f.client().Balancer(ctx, "web", api.BalancerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	b2.Close()
}

func TestBalancerConcurrentPicks(t *testing.T) {
	f := newFakeAgent(t)
	f.set("web", passingInsts(4)...)
	for s := api.StrategyRoundRobin; s <= api.StrategyNearest; s++ {
		b := startBalancer(t, f, api.BalancerConfig{Strategy: s, BreakerFailures: 2, Rand: rand.New(rand.NewPCG(1, 1))})
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 500 {
					err := b.Do(context.Background(), func(_ context.Context, in api.Instance) error {
						if in.Addr == "10.0.0.1:8001" && (g+i)%3 == 0 {
							return errors.New("flaky")
						}
						return nil
					})
					if err != nil {
						t.Errorf("%s: %v", s, err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.Close()
	}
}

// TestBalancerFollowsRealAgent runs a Balancer against real agents: the
// instances are registered with one agent, the Balancer watches another,
// and follows registrations, health and deregistrations by gossip.
func TestBalancerFollowsRealAgent(t *testing.T) {
	c := testutil.NewCluster(t, 2)
	origin := &api.Client{Addr: c.Node("node-0").Agent.HTTPAddr()}
	watcher := &api.Client{Addr: c.Node("node-1").Agent.HTTPAddr()}
	ctx := context.Background()
	for i, port := range []int{9001, 9002} {
		reg := &api.AgentServiceRegistration{ID: fmt.Sprintf("web-%d", i+1), Name: "web", Port: port, Address: "127.0.0.1", Tags: []string{"v1"}}
		if err := origin.Register(ctx, reg); err != nil {
			t.Fatal(err)
		}
	}
	b, err := watcher.Balancer(ctx, "web", api.BalancerConfig{Tags: []string{"v1"}, WaitTime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitIDs := func(want ...string) {
		t.Helper()
		testutil.WaitFor(t, 15*time.Second, func() error {
			var ids []string
			for _, in := range b.Instances() {
				ids = append(ids, in.ID)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, want) {
				return fmt.Errorf("instances %v, want %v (state %+v)", ids, want, b.State())
			}
			return nil
		})
	}
	waitIDs("web-1", "web-2")
	for _, in := range b.Instances() {
		if in.Node != "node-0" || !strings.HasPrefix(in.Addr, "127.0.0.1:900") || in.Weights != (api.AgentWeights{Passing: 1, Warning: 1}) {
			t.Errorf("instance %+v", in)
		}
	}

	// A new instance with a TTL check is critical until its first
	// heartbeat; one without the tag is never picked.
	ttl := &api.AgentServiceRegistration{ID: "web-3", Name: "web", Port: 9003, Address: "127.0.0.1", Tags: []string{"v1"},
		Check: &api.AgentServiceCheck{CheckID: "web-3-ttl", TTL: "1m"}}
	if err := origin.Register(ctx, ttl); err != nil {
		t.Fatal(err)
	}
	if err := origin.Register(ctx, &api.AgentServiceRegistration{ID: "web-4", Name: "web", Port: 9004, Address: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if err := origin.PassTTL(ctx, "web-3-ttl", ""); err != nil {
		t.Fatal(err)
	}
	waitIDs("web-1", "web-2", "web-3")
	if err := origin.FailTTL(ctx, "web-3-ttl", "down"); err != nil {
		t.Fatal(err)
	}
	if err := origin.Deregister(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	waitIDs("web-2")
	var got string
	if err := b.Do(ctx, func(_ context.Context, in api.Instance) error { got = in.ID; return nil }); err != nil || got != "web-2" {
		t.Errorf("Do: %v on %q, want web-2", err, got)
	}
	if st := b.State(); st.Stale || st.Err != nil || !st.Ready {
		t.Errorf("state %+v", st)
	}
}

func BenchmarkBalancerPick(b *testing.B) {
	f := newFakeAgent(b)
	var es []*api.ServiceEntry
	for i := 1; i <= 8; i++ {
		es = append(es, inst(i, api.HealthPassing, api.AgentWeights{Passing: i, Warning: 1}))
	}
	f.set("web", es...)
	for s := api.StrategyRoundRobin; s <= api.StrategyNearest; s++ {
		bal := startBalancer(b, f, api.BalancerConfig{Strategy: s})
		b.Run(s.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, done, err := bal.Pick()
				if err != nil {
					b.Fatal(err)
				}
				done(nil)
			}
		})
		b.Run(s.String()+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, done, err := bal.Pick()
					if err != nil {
						b.Error(err)
						return
					}
					done(nil)
				}
			})
		})
		bal.Close()
	}
}
