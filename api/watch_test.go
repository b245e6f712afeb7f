package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWatchServiceReadsEvents(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/shoal/watch/service/web" || r.URL.Query().Get("tag") != "v1" || r.URL.Query().Get("passing") == "" {
			http.Error(w, "bad request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": keepalive\n\n")
		fmt.Fprint(w, "event: instances\nid: 7\ndata: [{\"Service\":{\"ID\":\"web-1\"}}]\n\n")
		fmt.Fprint(w, "event: instances\nid: 9\ndata: []\n\n")
	}))
	defer srv.Close()
	c := &Client{Addr: strings.TrimPrefix(srv.URL, "http://")}
	var got []string
	err := c.WatchService(context.Background(), "web", &QueryOptions{Tags: []string{"v1"}, Passing: true, WaitIndex: 3},
		func(index uint64, entries []*ServiceEntry) error {
			got = append(got, fmt.Sprintf("%d:%d", index, len(entries)))
			return nil
		})
	if !errors.Is(err, ErrStreamEnded) {
		t.Fatalf("end of stream: %v", err)
	}
	if strings.Join(got, ",") != "7:1,9:0" {
		t.Fatalf("events %v", got)
	}
	stop := errors.New("stop")
	err = c.WatchService(context.Background(), "web", &QueryOptions{Tags: []string{"v1"}, Passing: true},
		func(uint64, []*ServiceEntry) error { return stop })
	if err != stop {
		t.Fatalf("fn's error: %v", err)
	}
	if err := c.WatchService(context.Background(), "web", nil, func(uint64, []*ServiceEntry) error { return nil }); err == nil || IsNotFound(err) {
		t.Fatalf("a 400: %v", err)
	}
}

// FuzzReadEvents feeds arbitrary bytes as an event stream: no panic, and
// every event's data is a line's remainder.
func FuzzReadEvents(f *testing.F) {
	f.Add([]byte("event: instances\nid: 7\ndata: []\n\n"))
	f.Add([]byte(": keepalive\n\nid: x\ndata: \n\n\n"))
	f.Add([]byte("data: {\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = readEvents(strings.NewReader(string(b)), func(index uint64, data []byte) error {
			if strings.Contains(string(data), "\n") {
				t.Fatalf("data with a newline: %q", data)
			}
			return nil
		})
	})
}
