package localapi

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMonitorBadParameters(t *testing.T) {
	b, h := newTestServer(t)
	called := false
	b.onMonitor = func(context.Context, slog.Level, bool) (<-chan []byte, error) {
		called = true
		return nil, nil
	}
	for _, tc := range []struct{ query, want string }{
		{"loglevel=verbose", `loglevel: "verbose" is not one of debug, info, warn, error`},
		{"loglevel=5", "loglevel: "},
		{"logjson=maybe", "logjson: "},
	} {
		r := do(t, h, "GET", "/v1/agent/monitor?"+tc.query, "")
		mustStatus(t, r, http.StatusBadRequest)
		if !strings.Contains(r.body, tc.want) || strings.Count(r.body, "\n") != 1 {
			t.Errorf("?%s: body %q, want one line with %q", tc.query, r.body, tc.want)
		}
	}
	if r := do(t, h, "PUT", "/v1/agent/monitor", ""); r.code != http.StatusMethodNotAllowed {
		t.Errorf("PUT: status %d, want 405", r.code)
	}
	if called {
		t.Error("a refused request reached the backend")
	}
}

func TestMonitorLevels(t *testing.T) {
	for query, want := range map[string]slog.Level{
		"": slog.LevelInfo, "loglevel=": slog.LevelInfo, "loglevel=DEBUG": slog.LevelDebug,
		"loglevel=trace": slog.LevelDebug, "loglevel=info": slog.LevelInfo, "loglevel=warn": slog.LevelWarn,
		"loglevel=warning": slog.LevelWarn, "loglevel=ERR": slog.LevelError, "loglevel=error": slog.LevelError,
	} {
		got, err := parseLogLevel(strings.TrimPrefix(query, "loglevel="))
		if err != nil || got != want {
			t.Errorf("?%s: %v, %v; want %v", query, got, err, want)
		}
	}
}

// TestMonitorStreams streams through a real HTTP server: lines arrive as
// they are sent, the backend's subscription ends when the client goes,
// and the stream is not counted as a request's latency.
func TestMonitorStreams(t *testing.T) {
	b := newTestBackend()
	var (
		mu       sync.Mutex
		observed []string
	)
	srv := httptest.NewServer(New(Config{Backend: b, Logger: testLogger(t), Observe: func(method, route string, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		observed = append(observed, route)
	}}))
	defer srv.Close()

	type call struct {
		level slog.Level
		json  bool
	}
	calls := make(chan call, 1)
	lines := make(chan []byte) // unbuffered: each send waits for the handler
	ended := make(chan struct{})
	b.onMonitor = func(ctx context.Context, level slog.Level, json bool) (<-chan []byte, error) {
		calls <- call{level, json}
		context.AfterFunc(ctx, func() { close(ended) })
		return lines, nil
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/agent/monitor?loglevel=warn&logjson", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The header comes before any line.
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" ||
		len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("status %d, header %v, transfer encoding %v", resp.StatusCode, resp.Header, resp.TransferEncoding)
	}
	if c := <-calls; c != (call{slog.LevelWarn, true}) {
		t.Errorf("backend asked for %+v, want warn and JSON", c)
	}

	// Each line is flushed as it comes: the reader gets it before the
	// next is sent.
	rd := bufio.NewReader(resp.Body)
	for _, want := range []string{`{"msg":"one"}`, `{"msg":"two"}`} {
		lines <- []byte(want + "\n")
		got, err := rd.ReadString('\n')
		if err != nil || got != want+"\n" {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}

	// The client goes away: the backend's context ends.
	cancel()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend's monitor context did not end when the client went away")
	}
	// A plain request is observed; the stream never is.
	plain, err := srv.Client().Get(srv.URL + "/v1/agent/members")
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	srv.Close() // waits for every handler to return
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(observed, " ") != "agent/members" {
		t.Errorf("observed %q, want only agent/members", observed)
	}
}

// TestMonitorEndsWithTheBackend: a closed channel (the agent stopped)
// ends the answer cleanly.
func TestMonitorEndsWithTheBackend(t *testing.T) {
	b, h := newTestServer(t)
	b.onMonitor = func(ctx context.Context, level slog.Level, json bool) (<-chan []byte, error) {
		ch := make(chan []byte, 2)
		ch <- []byte("time=x level=INFO msg=last\n")
		close(ch)
		return ch, nil
	}
	r := do(t, h, "GET", "/v1/agent/monitor", "")
	mustStatus(t, r, 200)
	if r.body != "time=x level=INFO msg=last\n" || r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("body %q, header %v", r.body, r.header)
	}
}
