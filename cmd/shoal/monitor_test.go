package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// TestMonitorCommand runs `shoal monitor` against a real agent: stopped
// by a signal it exits 0, and when the agent stops it exits 1 with one
// line. While it runs the test talks to the agent through package api,
// not run (runs must not overlap).
func TestMonitorCommand(t *testing.T) {
	clearEnv(t)
	cluster := testutil.NewEmptyCluster(t)
	node := cluster.Start("mon-cli", 0)
	addr := node.Agent.HTTPAddr()
	c := &api.Client{Addr: addr}
	ctx := context.Background()

	if line := failShoal(t, "monitor", "--http-addr", addr, "--log-level", "loud"); !strings.Contains(line, "--log-level") {
		t.Errorf("bad level: %q", line)
	}

	// start runs `shoal monitor args...` and registers a service until
	// the command prints the registration's line.
	start := func(id string, args ...string) (*fakeShell, *syncBuffer, chan int) {
		t.Helper()
		f := newFakeShell()
		out, errb := &syncBuffer{}, &syncBuffer{}
		f.stdout, f.stderr = out, errb
		done := make(chan int, 1)
		go func() { done <- f.run(append([]string{"monitor", "--http-addr", addr}, args...)) }()
		testutil.WaitFor(t, 20*time.Second, func() error {
			select {
			case code := <-done:
				t.Fatalf("shoal monitor exited %d: %s", code, errb.String())
			default:
			}
			if err := c.Register(ctx, &api.AgentServiceRegistration{ID: id, Name: "web", Port: 80}); err != nil {
				return err
			}
			if !strings.Contains(out.String(), id) {
				return fmt.Errorf("no line about %s yet: %q", id, out.String())
			}
			return nil
		})
		return f, errb, done
	}
	wait := func(done chan int) int {
		t.Helper()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("shoal monitor did not stop")
			return -1
		}
	}

	// A signal: exit 0, nothing on stderr.
	f, errb, done := start("web-1", "--log-level", "debug")
	f.sigs <- os.Interrupt
	if code := wait(done); code != 0 || errb.String() != "" {
		t.Errorf("after a signal: exit %d, stderr %q; want 0 and nothing", code, errb.String())
	}

	// The agent stops: exit 1, one line. Every line printed was JSON.
	f, errb, done = start("web-2", "--log-json", "--log-level=DEBUG")
	if err := c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if code := wait(done); code != 1 || errb.String() != "shoal: agent went away\n" {
		t.Errorf("after the agent left: exit %d, stderr %q; want 1 and \"shoal: agent went away\"", code, errb.String())
	}
	out := f.stdout.(*syncBuffer).String()
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("not a JSON line: %q", l)
		}
	}
	if !strings.Contains(out, `"msg":"leaving the cluster"`) {
		t.Errorf("no leave line in:\n%s", out)
	}
}
