package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// stream is one Monitor call run in the background.
type stream struct {
	mu    sync.Mutex
	lines []string
	done  chan error
}

func monitor(ctx context.Context, c *api.Client, level string, asJSON bool) *stream {
	s := &stream{done: make(chan error, 1)}
	go func() {
		s.done <- c.Monitor(ctx, level, asJSON, func(line []byte) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.lines = append(s.lines, string(line))
			return nil
		})
	}()
	return s
}

func (s *stream) find(substr string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l, substr) {
			return l, true
		}
	}
	return "", false
}

func (s *stream) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

func (s *stream) end(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the monitor did not end")
		return nil
	}
}

// TestMonitorThroughTheAPI monitors a real agent, whose own log is at
// warn (testutil.Logger), at debug: a registration's debug line arrives
// with the agent's attributes, in text and in JSON; a monitor at info
// gets no debug line; every stream ends when the agent stops.
func TestMonitorThroughTheAPI(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	n := c.Start("mon", 0)
	cl := &api.Client{Addr: n.Agent.HTTPAddr()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	text := monitor(ctx, cl, "debug", false)
	js := monitor(ctx, cl, "debug", true)
	info := monitor(ctx, cl, "info", false)
	ctx2, cancel2 := context.WithCancel(ctx)
	gone := monitor(ctx2, cl, "debug", false)

	// A monitor subscribes when the agent takes its request: register
	// (a debug line) and switch maintenance mode (an info line) until
	// every monitor has seen them.
	reg := &api.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 8080}
	maint := false
	testutil.WaitFor(t, 20*time.Second, func() error {
		if err := cl.Register(ctx, reg); err != nil {
			return err
		}
		maint = !maint
		if err := n.Agent.NodeMaintenance(maint, ""); err != nil {
			return err
		}
		for name, s := range map[string]*stream{"text": text, "json": js} {
			if _, ok := s.find("service registered"); !ok {
				return fmt.Errorf("the %s monitor has no registration line", name)
			}
		}
		if _, ok := info.find("maintenance mode"); !ok {
			return fmt.Errorf("the info monitor has no maintenance line")
		}
		return nil
	})
	line, _ := text.find("service registered")
	for _, want := range []string{"level=DEBUG", `msg="service registered"`, "node=mon", "component=http", "id=web-1"} {
		if !strings.Contains(line, want) {
			t.Errorf("text line %q lacks %q", line, want)
		}
	}
	line, _ = js.find("service registered")
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("JSON line %q: %v", line, err)
	}
	if got["level"] != "DEBUG" || got["node"] != "mon" || got["component"] != "http" || got["id"] != "web-1" {
		t.Errorf("JSON line %v", got)
	}

	// A monitor whose context ends stops without ending the others.
	cancel2()
	if err := gone.end(t); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled monitor: %v, want context.Canceled", err)
	}

	// The agent leaves: its leave line arrives, then every stream ends.
	if err := cl.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*stream{"text": text, "json": js, "info": info} {
		if err := s.end(t); !errors.Is(err, api.ErrStreamEnded) {
			t.Errorf("%s monitor: %v, want ErrStreamEnded", name, err)
		}
		if _, ok := s.find("leaving the cluster"); !ok {
			t.Errorf("%s monitor missed the leave line: %q", name, s.all())
		}
	}
	for _, l := range info.all() {
		if strings.Contains(l, "level=DEBUG") {
			t.Errorf("the info monitor got %q", l)
		}
	}
}
