package localapi

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// sseEvent is one event read from a stream.
type sseEvent struct {
	name, id string
	entries  []api.ServiceEntry
}

// readEvents reads the events of an SSE stream onto a channel until the
// stream ends; comments are skipped.
func readEvents(t *testing.T, resp *http.Response) <-chan sseEvent {
	out := make(chan sseEvent, 16)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.entries); err != nil {
					t.Errorf("event data: %v", err)
				}
			}
		}
	}()
	return out
}

func nextEvent(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sseEvent{}
}

func ids(ev sseEvent) []string {
	var out []string
	for _, e := range ev.entries {
		out = append(out, e.Node.Node+"/"+e.Service.ID)
	}
	return out
}

// The watch stream sends the current set, then one event per change of
// the (filtered) set, nothing for changes that leave it as it was, and
// nothing again to a client that resumes at the current index.
func TestWatchServiceStream(t *testing.T) {
	b := newTestBackend()
	srv := httptest.NewServer(New(Config{Backend: b, Logger: testLogger(t)}))
	defer srv.Close()
	b.addRemote("node-b", "10.0.0.2", catalog.Service{ID: "web-1", Name: "web", Port: 80})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/shoal/watch/service/web?passing", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, ct)
	}
	events := readEvents(t, resp)
	first := nextEvent(t, events)
	if first.name != "instances" || strings.Join(ids(first), ",") != "node-b/web-1" || first.id == "" {
		t.Fatalf("first event %+v", first)
	}

	// Another service registered on a new node sends nothing here;
	// a second instance does.
	b.addRemote("node-c", "10.0.0.3", catalog.Service{ID: "db-1", Name: "db", Port: 5432})
	b.addRemote("node-c", "10.0.0.3", catalog.Service{ID: "web-2", Name: "web", Port: 80})
	ev := nextEvent(t, events)
	if strings.Join(ids(ev), ",") != "node-b/web-1,node-c/web-2" {
		t.Fatalf("after a registration: %v", ids(ev))
	}
	// web-2 turning critical leaves the passing set without it.
	b.putRemoteCheck("node-c", catalog.Check{ID: "c", Name: "c", ServiceID: "web-2", Type: "http", Status: catalog.HealthCritical})
	ev = nextEvent(t, events)
	if strings.Join(ids(ev), ",") != "node-b/web-1" {
		t.Fatalf("after web-2 failed: %v", ids(ev))
	}
	// Its output changing while it stays critical changes the service's
	// index but not the passing set: no event; the next real change is
	// the next event.
	b.putRemoteCheck("node-c", catalog.Check{ID: "c", Name: "c", ServiceID: "web-2", Type: "http", Status: catalog.HealthCritical, Output: "still down"})
	b.putRemoteCheck("node-c", catalog.Check{ID: "c", Name: "c", ServiceID: "web-2", Type: "http", Status: catalog.HealthPassing})
	ev = nextEvent(t, events)
	if strings.Join(ids(ev), ",") != "node-b/web-1,node-c/web-2" {
		t.Fatalf("after web-2 recovered: %v", ids(ev))
	}
	cancel()

	// Resuming at the current index sends nothing until a change.
	req, _ = http.NewRequest("GET", srv.URL+"/v1/shoal/watch/service/web?passing", nil)
	req.Header.Set("Last-Event-ID", ev.id)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	resp2, err := http.DefaultClient.Do(req.WithContext(ctx2))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	events2 := readEvents(t, resp2)
	b.addRemote("node-d", "10.0.0.5", catalog.Service{ID: "web-3", Name: "web", Port: 80})
	if ev := nextEvent(t, events2); len(ev.entries) != 3 {
		t.Fatalf("resumed stream's first event: %v", ids(ev))
	}
}

func TestWatchServiceBadRequests(t *testing.T) {
	_, h := newTestServer(t)
	for _, tc := range []struct {
		target, header, want string
	}{
		{"/v1/shoal/watch/service/web?warning", "", "warning: "},
		{"/v1/shoal/watch/service/web?passing=maybe", "", "passing: "},
		{"/v1/shoal/watch/service/web", "x", "Last-Event-ID: "},
	} {
		var r response
		if tc.header != "" {
			r = do(t, h, "GET", tc.target, "", "Last-Event-ID: "+tc.header)
		} else {
			r = do(t, h, "GET", tc.target, "")
		}
		if r.code != http.StatusBadRequest || !strings.Contains(r.body, tc.want) {
			t.Errorf("%s: %d %q, want 400 naming %q", tc.target, r.code, r.body, tc.want)
		}
	}
}
