package health_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/health"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// hang as a status code makes flipServer stall until the test ends.
const hang = -1

// flipServer answers with the status code the test last set.
func flipServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var code atomic.Int32
	code.Store(http.StatusOK)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := int(code.Load())
		if c == hang {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.WriteHeader(c)
		fmt.Fprintf(w, "answer %d", c)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv, &code
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	srv, code := flipServer(t)
	m, rec := newManager(t, health.Config{})
	url := srv.URL + "/health"
	mustAdd(t, m, health.Definition{ID: "web", Name: "web", ServiceID: "web-1", HTTP: url,
		Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond})
	st, _ := m.Get("web")
	if st.Result.Status != catalog.HealthCritical || st.Definition.HTTP != url {
		t.Fatalf("right after Add: %+v, want critical", st)
	}

	st = waitStatus(t, m, "web", catalog.HealthPassing)
	if want := "HTTP GET " + url + ": 200 OK Output: answer 200"; st.Result.Output != want {
		t.Errorf("output %q, want %q", st.Result.Output, want)
	}
	code.Store(http.StatusTooManyRequests)
	st = waitStatus(t, m, "web", catalog.HealthWarning)
	if !strings.Contains(st.Result.Output, "429 Too Many Requests Output: answer 429") {
		t.Errorf("output %q", st.Result.Output)
	}
	code.Store(http.StatusInternalServerError)
	waitStatus(t, m, "web", catalog.HealthCritical)
	code.Store(http.StatusNoContent)
	waitStatus(t, m, "web", catalog.HealthPassing)

	// A server that never answers turns the check critical after its
	// Timeout, with the error as output.
	code.Store(hang)
	waitOutput(t, m, "web", catalog.HealthCritical, "context deadline exceeded")
	code.Store(http.StatusOK)
	waitStatus(t, m, "web", catalog.HealthPassing)

	// Notify heard every change, each once, starting with the initial state.
	var got []catalog.Health
	for _, r := range rec.of("web") {
		if r.ServiceID != "web-1" || r.At.IsZero() {
			t.Errorf("result %+v", r)
		}
		got = append(got, r.Status)
	}
	if got[0] != catalog.HealthCritical {
		t.Errorf("first Notify %v, want the initial critical", got[0])
	}
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Errorf("Notify told %v twice in a row (output updates are deferred 5m): %v", got[i], got)
		}
	}
	if c := slices.Compact(slices.Clone(got)); !slices.Contains(c, catalog.HealthWarning) {
		t.Errorf("Notify never heard of the warning: %v", got)
	}
}

func TestHTTPRequest(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, host, body, ua string
		header                 []string
	}
	reqs := make(chan seen, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case reqs <- seen{r.Method, r.Host, string(b), r.UserAgent(), r.Header.Values("X-Check")}:
		default:
		}
		io.WriteString(w, strings.Repeat("é", health.MaxOutput)) // more than MaxOutput, in 2-byte runes
	}))
	t.Cleanup(srv.Close)
	m, _ := newManager(t, health.Config{})
	mustAdd(t, m, health.Definition{ID: "post", Name: "post", HTTP: srv.URL + "/ping", Method: "POST",
		Header: map[string][]string{"X-Check": {"a", "b"}, "Host": {"example.test"}}, Body: `{"ping":1}`,
		Interval: 50 * time.Millisecond})
	var got seen
	select {
	case got = <-reqs:
	case <-time.After(10 * time.Second):
		t.Fatal("the check never reached the server")
	}
	want := seen{"POST", "example.test", `{"ping":1}`, "Shoal Health Check", []string{"a", "b"}}
	if !slices.Equal(got.header, want.header) || got.method != want.method || got.host != want.host ||
		got.body != want.body || got.ua != want.ua {
		t.Errorf("server saw %+v, want %+v", got, want)
	}
	st := waitStatus(t, m, "post", catalog.HealthPassing)
	out := st.Result.Output
	if len(out) > health.MaxOutput || len(out) < health.MaxOutput-1 || !strings.HasSuffix(out, "é") {
		t.Errorf("output of a long body is %d bytes ending %q; want at most %d, cut between characters",
			len(out), out[len(out)-4:], health.MaxOutput)
	}
}

func TestHTTPTLSSkipVerify(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	m, _ := newManager(t, health.Config{})
	// Handshakes are slow under the race detector: a long Timeout keeps
	// the verification error from turning into a timeout.
	const interval = 500 * time.Millisecond
	mustAdd(t, m, health.Definition{ID: "skip", Name: "skip", HTTP: srv.URL, TLSSkipVerify: true, Interval: interval})
	mustAdd(t, m, health.Definition{ID: "verify", Name: "verify", HTTP: srv.URL, Interval: interval,
		Status: catalog.HealthPassing})
	waitStatus(t, m, "skip", catalog.HealthPassing)
	waitOutput(t, m, "verify", catalog.HealthCritical, "certificate")
}

// tcpServer listens on addr and accepts (and drops) connections until it
// is stopped; stop waits for its goroutine.
func tcpServer(t *testing.T, addr string) (stop func()) {
	var ln net.Listener
	testutil.WaitFor(t, 5*time.Second, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ln.Close()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestTCP(t *testing.T) {
	t.Parallel()
	addr := testutil.FreeAddr(t)
	stop := tcpServer(t, addr)
	m, _ := newManager(t, health.Config{})
	mustAdd(t, m, health.Definition{ID: "tcp", Name: "tcp", TCP: addr, Interval: 50 * time.Millisecond})
	st := waitStatus(t, m, "tcp", catalog.HealthPassing)
	if st.Result.Output != "TCP connect "+addr+": Success" {
		t.Errorf("output %q", st.Result.Output)
	}
	stop()
	waitOutput(t, m, "tcp", catalog.HealthCritical, "connection refused")
	tcpServer(t, addr) // the same port again
	waitStatus(t, m, "tcp", catalog.HealthPassing)
}

func TestGRPC(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := grpchealth.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ln) })
	t.Cleanup(func() { srv.Stop(); wg.Wait() })
	hs.SetServingStatus("web", healthpb.HealthCheckResponse_SERVING)

	m, _ := newManager(t, health.Config{})
	addr := ln.Addr().String()
	for id, target := range map[string]string{"server": addr, "web": addr + "/web", "unknown": addr + "/nope"} {
		mustAdd(t, m, health.Definition{ID: id, Name: id, GRPC: target, Interval: 100 * time.Millisecond,
			Status: catalog.HealthWarning})
	}
	waitStatus(t, m, "server", catalog.HealthPassing)
	waitOutput(t, m, "web", catalog.HealthPassing, addr+"/web: SERVING")
	waitOutput(t, m, "unknown", catalog.HealthCritical, "NotFound")
	hs.SetServingStatus("web", healthpb.HealthCheckResponse_NOT_SERVING)
	waitOutput(t, m, "web", catalog.HealthCritical, "NOT_SERVING")
	hs.SetServingStatus("web", healthpb.HealthCheckResponse_SERVING)
	waitStatus(t, m, "web", catalog.HealthPassing)
	srv.Stop()
	waitStatus(t, m, "server", catalog.HealthCritical)
}

func TestTTL(t *testing.T) {
	t.Parallel()
	m, rec := newManager(t, health.Config{})
	mustAdd(t, m, health.Definition{ID: "long", Name: "long", TTL: time.Hour})
	mustAdd(t, m, health.Definition{ID: "short", Name: "short", ServiceID: "api", TTL: 50 * time.Millisecond,
		Status: catalog.HealthPassing})
	mustAdd(t, m, health.Definition{ID: "tcp", Name: "tcp", TCP: "127.0.0.1:1", Interval: time.Hour})

	// UpdateTTL has taken effect when it returns.
	if err := m.UpdateTTL("long", catalog.HealthWarning, "slow disk"); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.Get("long"); st.Result.Status != catalog.HealthWarning || st.Result.Output != "slow disk" {
		t.Errorf("after UpdateTTL(warning): %+v", st.Result)
	}
	if r := rec.of("long"); len(r) != 2 || r[1].Status != catalog.HealthWarning {
		t.Errorf("Notify heard %+v, want the initial state and the warning", r)
	}
	if err := m.UpdateTTL("long", catalog.HealthPassing, strings.Repeat("é\xff", 2000)); err != nil {
		t.Fatal(err)
	}
	// Invalid bytes become U+FFFD, and the output is cut between characters.
	if st, _ := m.Get("long"); st.Result.Status != catalog.HealthPassing || len(st.Result.Output) > health.MaxOutput ||
		len(st.Result.Output) < health.MaxOutput-4 || !utf8.ValidString(st.Result.Output) {
		t.Errorf("after UpdateTTL(passing, 4000 bytes, half invalid): %v, %d bytes, valid UTF-8 %v",
			st.Result.Status, len(st.Result.Output), utf8.ValidString(st.Result.Output))
	}

	// Without updates a TTL check expires; an update revives it.
	st := waitStatus(t, m, "short", catalog.HealthCritical)
	if st.Result.Output != "TTL expired" {
		t.Errorf("expired output %q", st.Result.Output)
	}
	if err := m.UpdateTTL("short", catalog.HealthPassing, "back"); err != nil {
		t.Fatal(err)
	}
	// It expires again; Notify hears of it just after Get can see it.
	want := []string{"passing ", "critical TTL expired", "passing back", "critical TTL expired"}
	testutil.WaitFor(t, 10*time.Second, func() error {
		var got []string
		for _, r := range rec.of("short") {
			got = append(got, r.Status.String()+" "+r.Output)
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("Notify heard %q, want %q", got, want)
		}
		return nil
	})

	for _, tt := range []struct {
		id     string
		status catalog.Health
		want   error
	}{
		{"nope", catalog.HealthPassing, health.ErrNotFound},
		{"tcp", catalog.HealthPassing, health.ErrNotTTL},
		{"long", 0, catalog.ErrInvalid},
		{"long", 7, catalog.ErrInvalid},
	} {
		if err := m.UpdateTTL(tt.id, tt.status, ""); !errors.Is(err, tt.want) {
			t.Errorf("UpdateTTL(%q, %v) = %v, want %v", tt.id, tt.status, err, tt.want)
		}
	}
	m.Remove("long")
	if err := m.UpdateTTL("long", catalog.HealthPassing, ""); !errors.Is(err, health.ErrNotFound) {
		t.Errorf("UpdateTTL of a removed check = %v, want ErrNotFound", err)
	}
}

// TestThresholds counts results through the manager: UpdateTTL returns
// once its result has taken effect, so each step sees exactly one more.
func TestThresholds(t *testing.T) {
	t.Parallel()
	m, rec := newManager(t, health.Config{})
	mustAdd(t, m, health.Definition{ID: "t", Name: "t", TTL: time.Hour, SuccessBeforePassing: 3, FailuresBeforeCritical: 2})
	steps := []struct {
		in, want catalog.Health
	}{
		{catalog.HealthPassing, catalog.HealthCritical},
		{catalog.HealthPassing, catalog.HealthCritical},
		{catalog.HealthPassing, catalog.HealthPassing}, // the third pass
		{catalog.HealthCritical, catalog.HealthPassing},
		{catalog.HealthPassing, catalog.HealthPassing}, // resets the failures
		{catalog.HealthCritical, catalog.HealthPassing},
		{catalog.HealthWarning, catalog.HealthWarning}, // the second failure: its own state
		{catalog.HealthCritical, catalog.HealthCritical},
		{catalog.HealthPassing, catalog.HealthCritical},
		{catalog.HealthCritical, catalog.HealthCritical}, // resets the passes
		{catalog.HealthPassing, catalog.HealthCritical},
		{catalog.HealthPassing, catalog.HealthCritical},
		{catalog.HealthPassing, catalog.HealthPassing},
	}
	for i, s := range steps {
		if err := m.UpdateTTL("t", s.in, fmt.Sprint("result ", i)); err != nil {
			t.Fatal(err)
		}
		st, _ := m.Get("t")
		if st.Result.Status != s.want || st.Result.Output != fmt.Sprint("result ", i) {
			t.Fatalf("after result %d (%v): %v %q, want %v", i, s.in, st.Result.Status, st.Result.Output, s.want)
		}
	}
	var got []catalog.Health
	for _, r := range rec.of("t") {
		got = append(got, r.Status)
	}
	want := []catalog.Health{catalog.HealthCritical, catalog.HealthPassing, catalog.HealthWarning,
		catalog.HealthCritical, catalog.HealthPassing}
	if !slices.Equal(got, want) {
		t.Errorf("Notify heard %v, want %v", got, want)
	}
}

func TestDeregisterCriticalServiceAfter(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	m, rec := newManager(t, health.Config{})
	mustAdd(t, m, health.Definition{ID: "web", Name: "web", ServiceID: "web-1", HTTP: srv.URL,
		Interval: 10 * time.Millisecond, Status: catalog.HealthPassing, DeregisterCriticalServiceAfter: 100 * time.Millisecond})
	// A TTL check gets no results after it expires: a timer must do it.
	mustAdd(t, m, health.Definition{ID: "ttl", Name: "ttl", ServiceID: "db-1", TTL: time.Hour,
		DeregisterCriticalServiceAfter: 50 * time.Millisecond})
	testutil.WaitFor(t, 10*time.Second, func() error {
		if d := rec.deregistered(); len(d) != 2 {
			return fmt.Errorf("Deregister asked for %q", d)
		}
		return nil
	})
	// Many more failing runs later, still once.
	h := hits.Load()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if n := hits.Load(); n < h+10 {
			return fmt.Errorf("%d runs since the deregistration", n-h)
		}
		return nil
	})
	d := rec.deregistered()
	slices.Sort(d)
	if !slices.Equal(d, []string{"db-1", "web-1"}) {
		t.Errorf("Deregister asked for %q, want db-1 and web-1 once each", d)
	}
}

// TestDamping flips a TTL check faster than damping allows, on a clock
// the test moves: it is held at critical, then released after HoldDown.
func TestDamping(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	m, rec := newManager(t, health.Config{Now: clock.Now,
		Damping: health.Damping{Threshold: 3, Window: time.Minute, HoldDown: 20 * time.Millisecond}})
	mustAdd(t, m, health.Definition{ID: "flap", Name: "flap", TTL: time.Hour, Status: catalog.HealthPassing})
	for _, s := range []catalog.Health{catalog.HealthCritical, catalog.HealthPassing, catalog.HealthCritical,
		catalog.HealthPassing, catalog.HealthPassing, catalog.HealthWarning, catalog.HealthPassing} {
		clock.Advance(time.Millisecond)
		if err := m.UpdateTTL("flap", s, s.String()); err != nil {
			t.Fatal(err)
		}
	}
	// The fake clock stands still, so however long this takes, the
	// hold-down cannot pass.
	st, _ := m.Get("flap")
	if !st.Result.Damped || st.Result.Status != catalog.HealthCritical || st.Result.Output != "passing" {
		t.Fatalf("after flapping: %+v, want damped at critical with the latest output", st.Result)
	}
	// Once it has, with no further update, a timer releases the check.
	clock.Advance(20 * time.Millisecond)
	waitStatus(t, m, "flap", catalog.HealthPassing)

	want := []string{"passing/false", "critical/false", "passing/false", "critical/false", "critical/true", "passing/false"}
	testutil.WaitFor(t, 10*time.Second, func() error {
		var got []string
		for _, r := range rec.of("flap") {
			got = append(got, fmt.Sprintf("%v/%v", r.Status, r.Damped))
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("Notify heard %v, want %v", got, want)
		}
		return nil
	})
}

// TestStagger adds many checks at once: their first runs spread over the
// interval rather than coming together.
func TestStagger(t *testing.T) {
	t.Parallel()
	const n, interval = 40, time.Second
	var mu sync.Mutex
	first := map[string]time.Time{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := first[r.URL.Path]; !ok {
			first[r.URL.Path] = time.Now()
		}
	}))
	t.Cleanup(srv.Close)
	m, _ := newManager(t, health.Config{})
	for i := range n {
		mustAdd(t, m, health.Definition{ID: fmt.Sprint("c", i), Name: "c", HTTP: fmt.Sprintf("%s/%d", srv.URL, i),
			Interval: interval})
	}
	var times []time.Time
	testutil.WaitFor(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(first) < n {
			return fmt.Errorf("%d of %d checks have run", len(first), n)
		}
		times = slices.Collect(maps.Values(first))
		return nil
	})
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	// 40 uniform draws from [0, 1s) spread over less than 250ms with
	// probability about 40·0.25^39: never, unless they ran in lock-step.
	if spread := times[n-1].Sub(times[0]); spread < interval/4 {
		t.Errorf("first runs of %d checks spread over %s only", n, spread)
	}
}

// TestReplaceAndRemove: a re-added check starts afresh; a removed one is
// gone and its runs stop.
func TestReplaceAndRemove(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	m, rec := newManager(t, health.Config{})
	mustAdd(t, m, health.Definition{ID: "c", Name: "c", TTL: time.Hour})
	if err := m.UpdateTTL("c", catalog.HealthPassing, "ok"); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, m, health.Definition{ID: "c", Name: "c", HTTP: srv.URL, Interval: 10 * time.Millisecond, Notes: "v2"})
	st, ok := m.Get("c")
	if !ok || st.Definition.Notes != "v2" || st.Result.Status != catalog.HealthCritical || st.Result.Output != "" {
		t.Fatalf("replaced check: %+v, want v2 in its initial state", st)
	}
	if err := m.UpdateTTL("c", catalog.HealthPassing, ""); !errors.Is(err, health.ErrNotTTL) {
		t.Errorf("UpdateTTL of the replacing HTTP check = %v", err)
	}
	waitStatus(t, m, "c", catalog.HealthPassing)
	mustAdd(t, m, health.Definition{ID: "a", Name: "a", TTL: time.Hour})
	if l := m.List(); len(l) != 2 || l[0].Definition.ID != "a" || l[1].Definition.ID != "c" {
		t.Errorf("List() = %+v", l)
	}
	if !m.Remove("c") || m.Remove("c") {
		t.Error("Remove does not report whether the check was there")
	}
	if _, ok := m.Get("c"); ok {
		t.Error("Get finds a removed check")
	}
	n := len(rec.of("c"))
	// Runs of the removed check stop: count them against a live check's.
	mustAdd(t, m, health.Definition{ID: "b", Name: "b", HTTP: srv.URL + "/b", Interval: 10 * time.Millisecond})
	h := hits.Load()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if got := hits.Load(); got < h+20 {
			return fmt.Errorf("%d runs", got-h)
		}
		return nil
	})
	if got := hits.Load() - h; got > 35 {
		t.Errorf("%d runs where the live check alone makes about 20: the removed one still runs", got)
	}
	if len(rec.of("c")) > n+1 { // at most a Notify already under way
		t.Errorf("Notify heard of the removed check afterwards: %+v", rec.of("c")[n:])
	}
	// Get hands out copies.
	mustAdd(t, m, health.Definition{ID: "h", Name: "h", HTTP: srv.URL, Interval: time.Hour, Header: map[string][]string{"A": {"1"}}})
	st, _ = m.Get("h")
	st.Definition.Header["A"][0] = "2"
	if st, _ = m.Get("h"); st.Definition.Header["A"][0] != "1" {
		t.Error("Get shares the Definition's header with the caller")
	}
}

// TestClose ends a run under way: Close does not wait out its Timeout.
func TestClose(t *testing.T) {
	t.Parallel()
	started := make(chan time.Time, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case started <- time.Now():
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	m, _ := newManager(t, health.Config{})
	const timeout = 2 * time.Second
	mustAdd(t, m, health.Definition{ID: "hang", Name: "hang", HTTP: srv.URL, Interval: timeout, Timeout: timeout})
	mustAdd(t, m, health.Definition{ID: "ttl", Name: "ttl", TTL: time.Hour})
	var at time.Time
	select {
	case at = <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the check never reached the server")
	}
	m.Close()
	if d := time.Since(at); d >= timeout {
		t.Errorf("Close returned %s after the run began: it waited for the run's Timeout", d)
	}
	m.Close()
	if err := m.Add(health.Definition{ID: "x", Name: "x", TTL: time.Second}); !errors.Is(err, health.ErrClosed) {
		t.Errorf("Add after Close = %v, want ErrClosed", err)
	}
	if err := m.UpdateTTL("ttl", catalog.HealthPassing, ""); !errors.Is(err, health.ErrNotFound) {
		t.Errorf("UpdateTTL after Close = %v, want ErrNotFound", err)
	}
}
