package agent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// A watch stream on one agent wakes with the new instance set when a
// service changes on another agent.
func TestWatchStreamWakesOnRemoteChange(t *testing.T) {
	c := testutil.NewCluster(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sets := make(chan int, 16)
	done := make(chan error, 1)
	go func() {
		done <- (&api.Client{Addr: c.Node("node-1").Agent.HTTPAddr()}).WatchService(ctx, "web", &api.QueryOptions{Passing: true},
			func(_ uint64, entries []*api.ServiceEntry) error {
				sets <- len(entries)
				return nil
			})
	}()
	next := func() int {
		t.Helper()
		select {
		case n := <-sets:
			return n
		case err := <-done:
			t.Fatalf("the watch ended: %v", err)
		case <-time.After(converge):
			t.Fatal("no event")
		}
		return -1
	}
	if n := next(); n != 0 {
		t.Fatalf("first set has %d instances", n)
	}
	if err := c.Node("node-0").Agent.RegisterService(web("web-1", 8080), nil); err != nil {
		t.Fatal(err)
	}
	if n := next(); n != 1 {
		t.Fatalf("after a remote registration: %d instances", n)
	}
	if err := c.Node("node-0").Agent.DeregisterService("web-1"); err != nil {
		t.Fatal(err)
	}
	if n := next(); n != 0 {
		t.Fatalf("after a remote deregistration: %d instances", n)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}
}
