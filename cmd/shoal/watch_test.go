package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

func TestDebouncer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	d := debouncer{min: 100 * time.Millisecond, max: 250 * time.Millisecond}
	if _, ok := d.due(); ok {
		t.Fatal("due with nothing pending")
	}
	d.change(at(0))
	if got, _ := d.due(); !got.Equal(at(100)) {
		t.Fatalf("one change: due %v, want +100ms", got.Sub(t0))
	}
	d.change(at(80))
	if got, _ := d.due(); !got.Equal(at(180)) {
		t.Fatalf("quiet restarts: due %v, want +180ms", got.Sub(t0))
	}
	d.change(at(170))
	d.change(at(240))
	if got, _ := d.due(); !got.Equal(at(250)) {
		t.Fatalf("changes that keep coming: due %v, want the bound +250ms", got.Sub(t0))
	}
	d.reset()
	if _, ok := d.due(); ok {
		t.Fatal("due after reset")
	}
	nobound := debouncer{min: 100 * time.Millisecond}
	nobound.change(at(0))
	nobound.change(at(900))
	if got, _ := nobound.due(); !got.Equal(at(1000)) {
		t.Fatalf("no max: due %v, want +1000ms", got.Sub(t0))
	}
}

// startWatch runs `shoal watch args...` in this process.
func startWatch(t *testing.T, args ...string) (*fakeShell, *syncBuffer, *syncBuffer, chan int) {
	t.Helper()
	f := newFakeShell()
	out, errb := &syncBuffer{}, &syncBuffer{}
	f.stdout, f.stderr = out, errb
	done := make(chan int, 1)
	go func() { done <- f.run(append([]string{"watch"}, args...)) }()
	t.Cleanup(func() {
		f.sigs <- os.Interrupt
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("shoal watch did not stop")
		}
	})
	return f, out, errb, done
}

// `shoal watch` on one agent prints the set at start and again when a
// service registered on another agent arrives by gossip.
func TestWatchPrintsChanges(t *testing.T) {
	clearEnv(t)
	c := testutil.NewCluster(t, 2)
	reg := api.Client{Addr: c.Node("node-0").Agent.HTTPAddr()}
	ctx := context.Background()
	if err := reg.Register(ctx, &api.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 8080}); err != nil {
		t.Fatal(err)
	}
	_, out, errb, _ := startWatch(t, "web", "--json", "--http-addr", c.Node("node-1").Agent.HTTPAddr())
	lines := func() []string { return strings.Split(strings.TrimSpace(out.String()), "\n") }
	testutil.WaitFor(t, 20*time.Second, func() error {
		if l := lines(); len(l) < 1 || !strings.Contains(l[len(l)-1], `"web-1"`) {
			return fmt.Errorf("no set with web-1 yet: %q (stderr %q)", out.String(), errb.String())
		}
		return nil
	})
	before := len(lines())
	if err := reg.Register(ctx, &api.AgentServiceRegistration{ID: "web-2", Name: "web", Port: 8081}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, func() error {
		l := lines()
		if len(l) <= before {
			return fmt.Errorf("no new set after web-2: %q", out.String())
		}
		var set []api.ServiceEntry
		if err := json.Unmarshal([]byte(l[len(l)-1]), &set); err != nil {
			return err
		}
		if len(set) != 2 {
			return fmt.Errorf("last set has %d instances", len(set))
		}
		return nil
	})
}

// With --exec, a burst of changes runs the command once it has been
// quiet, with the final set on stdin: fewer runs than changes.
func TestWatchExecDebounces(t *testing.T) {
	clearEnv(t)
	c := testutil.NewCluster(t, 1)
	addr := c.Node("node-0").Agent.HTTPAddr()
	cl := api.Client{Addr: addr}
	ctx := context.Background()
	dir := t.TempDir()
	log := filepath.Join(dir, "runs")
	// Each run reads the JSON and appends how many instances it got.
	cmd := fmt.Sprintf(`cat > /dev/null; echo "$SHOAL_WATCH_INSTANCES" >> %s`, log)
	startWatch(t, "web", "--http-addr", addr, "--exec", cmd, "--min-quiet", "400ms", "--max-quiet", "5s")
	runs := func() []string {
		b, _ := os.ReadFile(log)
		return strings.Fields(string(b))
	}
	testutil.WaitFor(t, 20*time.Second, func() error {
		if r := runs(); len(r) != 1 || r[0] != "0" {
			return fmt.Errorf("runs %v, want the first with 0 instances", r)
		}
		return nil
	})
	const burst = 6
	for i := 0; i < burst; i++ {
		if err := cl.Register(ctx, &api.AgentServiceRegistration{ID: fmt.Sprintf("web-%d", i), Name: "web", Port: 8080 + i}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 20*time.Second, func() error {
		r := runs()
		if r[len(r)-1] != fmt.Sprint(burst) {
			return fmt.Errorf("runs %v, want the last with %d instances", r, burst)
		}
		return nil
	})
	if r := runs(); len(r)-1 >= burst {
		t.Fatalf("%d runs for %d changes: not debounced (%v)", len(r)-1, burst, r)
	}
}

func TestWatchFlagErrors(t *testing.T) {
	clearEnv(t)
	for _, args := range [][]string{
		{"watch"},
		{"watch", "a", "b"},
		{"watch", "web", "--warning"},
		{"watch", "web", "--min-quiet", "1s"},
		{"watch", "web", "--exec", "true", "--min-quiet", "2s", "--max-quiet", "1s"},
	} {
		f := newFakeShell()
		if code := f.run(args); code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
		oneErrorLine(t, f.err.String())
	}
}

// A change that is undone within --min-quiet runs nothing: the command
// never gets a set the agent no longer answers.
func TestWatchExecSkipsAChangeUndone(t *testing.T) {
	clearEnv(t)
	c := testutil.NewCluster(t, 1)
	addr := c.Node("node-0").Agent.HTTPAddr()
	cl := api.Client{Addr: addr}
	ctx := context.Background()
	log := filepath.Join(t.TempDir(), "runs")
	cmd := fmt.Sprintf(`ids=$(grep -o '"ID":"web-[0-9]*"' | sort | tr -d '\n'); echo "[$ids]" >> %s`, log)
	startWatch(t, "web", "--http-addr", addr, "--exec", cmd, "--min-quiet", "1s", "--max-quiet", "10s")
	runs := func() []string {
		b, _ := os.ReadFile(log)
		return strings.Fields(string(b))
	}
	reg := func(id string) {
		t.Helper()
		if err := cl.Register(ctx, &api.AgentServiceRegistration{ID: id, Name: "web", Port: 8080}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 20*time.Second, func() error {
		if r := runs(); len(r) != 1 {
			return fmt.Errorf("runs %v, want the first", r)
		}
		return nil
	})
	reg("web-1")
	testutil.WaitFor(t, 20*time.Second, func() error {
		if r := runs(); len(r) != 2 || r[1] != `["ID":"web-1"]` {
			return fmt.Errorf("runs %v, want web-1's", r)
		}
		return nil
	})
	reg("web-2")
	if err := cl.Deregister(ctx, "web-2"); err != nil {
		t.Fatal(err)
	}
	// Nothing is to happen now; give the quiet time a chance to pass
	// (an absence has no condition to poll), then change for real.
	<-time.After(2 * time.Second)
	reg("web-3")
	testutil.WaitFor(t, 20*time.Second, func() error {
		r := runs()
		if r[len(r)-1] != `["ID":"web-1""ID":"web-3"]` {
			return fmt.Errorf("runs %v, want web-1 and web-3 last", r)
		}
		return nil
	})
	for _, r := range runs() {
		if strings.Contains(r, "web-2") {
			t.Fatalf("a run got web-2, registered and gone within --min-quiet: %v", runs())
		}
	}
}
