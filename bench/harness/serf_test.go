package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testSerf finds or installs serf, or skips the test saying why.
func testSerf(t *testing.T, ctx context.Context, o *Options) string {
	t.Helper()
	bin, err := ensureSerf(ctx, o)
	if err != nil {
		t.Skipf("no serf to compare with: %v", err)
	}
	return bin
}

// serfPorts returns a port plan with n free gossip and n free RPC ports.
func serfPorts(t *testing.T, n int) portPlan {
	base := freePortBlock(t, 2*n)
	return portPlan{Gossip: base, API: base + n}
}

// runningSerf reports whether pid is a live serf process (not a zombie, nor
// the pid reused by something else).
func runningSerf(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "serf") {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func TestSerfNone(t *testing.T) {
	_, err := ensureSerf(context.Background(), &Options{SerfBin: "none"})
	if !errors.Is(err, errNoSerf) {
		t.Fatalf("SerfBin none: %v, want errNoSerf", err)
	}
	if _, err := ensureSerf(context.Background(), &Options{SerfBin: "/nonexistent/serf"}); err == nil {
		t.Fatal("a missing SerfBin was accepted")
	}
}

func TestSerfCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts serf agents and waits out a failure detection")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o := &Options{WorkDir: t.TempDir(), Timeout: time.Minute, Log: testLogger(t)}
	bin := testSerf(t, ctx, o)

	const n = 3
	t0 := time.Now()
	cl, err := startSerf(ctx, o, bin, n, serfPorts(t, n))
	if err != nil {
		t.Fatal(err)
	}
	c := cl.(*serfCluster)
	closed := false
	defer func() {
		if !closed {
			c.Close()
		}
	}()
	t.Logf("%d agents up and joined in %v", n, time.Since(t0).Round(time.Millisecond))

	if c.System() != "serf" || c.Mode() != ModeProcesses || c.Size() != n {
		t.Errorf("System, Mode, Size = %s, %s, %d", c.System(), c.Mode(), c.Size())
	}
	if lo, hi := c.GossipPorts(); lo != c.ports.Gossip || hi != c.ports.Gossip+n-1 {
		t.Errorf("GossipPorts = %d, %d for %+v", lo, hi, c.ports)
	}
	pids := make([]int, n)
	recs := make([]*recorder, n)
	for i := range n {
		pids[i] = c.agents[i].cmd.Process.Pid
		recs[i] = c.Recorder(i)
		rss, err := c.RSS(i)
		if err != nil || rss < 1<<20 {
			t.Errorf("RSS(%d) = %d, %v", i, rss, err)
		}
		if i == 0 {
			t.Logf("serf-0 RSS %.1f MiB", float64(rss)/(1<<20))
		}
	}

	wait := func(recs []*recorder, key string) []time.Time {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		ts, err := waitAll(wctx, recs, key)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	latest := func(from time.Time, ts []time.Time) time.Duration {
		var d time.Duration
		for _, t := range ts {
			d = max(d, t.Sub(from))
		}
		return d
	}

	// A tag change at agent 0 reaches all three.
	for k := 1; k <= 3; k++ {
		t1 := time.Now()
		key, err := c.Change(ctx, 0, k)
		if err != nil {
			t.Fatal(err)
		}
		if key != convKey(k) {
			t.Fatalf("Change returned key %q", key)
		}
		ts := wait(recs, key)
		t.Logf("change %d seen by all in %v", k, latest(t1, ts).Round(time.Microsecond))
	}
	// An agent whose recorder lacks a member is repaired: it joins
	// again and reads its member table.
	recs[1].forget(hereKey("serf-2"))
	c.formRound = 200 * time.Millisecond
	if err := c.awaitFormed(ctx, []string{fmt.Sprintf("127.0.0.1:%d", c.ports.Gossip)}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := recs[1].at(hereKey("serf-2")); !ok {
		t.Error("awaitFormed returned with serf-1 not seeing serf-2")
	}

	// Churn does not wait, but the tag gets there.
	if err := c.Churn(ctx, 1, 7); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for churned := false; !churned; {
		ms, err := c.agents[0].client.MembersFiltered(map[string]string{"churn": "7"}, "", "serf-1")
		if err != nil {
			t.Fatal(err)
		}
		churned = len(ms) == 1
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("churn tag never reached serf-0")
		}
	}

	// A crash is noticed by the survivors.
	t2 := time.Now()
	if err := c.Crash(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if runningSerf(pids[1]) {
		t.Errorf("serf-1 (pid %d) still running after Crash", pids[1])
	}
	ts := wait([]*recorder{recs[0], recs[2]}, c.GoneKey(1))
	t.Logf("crash of serf-1 seen failed by all in %v", latest(t2, ts).Round(time.Millisecond))
	if err := c.Crash(ctx, 1); err == nil {
		t.Error("crashing a crashed agent succeeded")
	}

	// A graceful leave is noticed by agent 0.
	t3 := time.Now()
	if err := c.Leave(ctx, 2); err != nil {
		t.Fatal(err)
	}
	left := time.Since(t3)
	ts = wait([]*recorder{recs[0]}, c.GoneKey(2))
	t.Logf("leave of serf-2 returned in %v, seen by serf-0 after %v", left.Round(time.Millisecond), latest(t3, ts).Round(time.Millisecond))
	if runningSerf(pids[2]) {
		t.Errorf("serf-2 (pid %d) still running after Leave", pids[2])
	}

	closed = true
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for i, pid := range pids {
		if runningSerf(pid) {
			t.Errorf("serf-%d (pid %d) still running after Close", i, pid)
		}
	}
	if _, err := c.Change(ctx, 0, 9); err == nil {
		t.Error("Change after Close succeeded")
	}
}

// TestSerfStartFails checks that a cluster that cannot form leaves no
// process behind: agent 1's gossip port is taken, agent 0 starts.
func TestSerfStartFails(t *testing.T) {
	if testing.Short() {
		t.Skip("starts serf agents")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := &Options{WorkDir: t.TempDir(), Timeout: 20 * time.Second, Log: testLogger(t)}
	bin := testSerf(t, ctx, o)

	ports := serfPorts(t, 2)
	taken := fmt.Sprintf("127.0.0.1:%d", ports.Gossip+1)
	l, err := net.Listen("tcp", taken)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", taken)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()

	before := serfPids(t)
	c, err := startSerf(ctx, o, bin, 2, ports)
	if err == nil {
		c.Close()
		t.Fatal("a cluster started with a gossip port taken")
	}
	t.Logf("startSerf: %v", err)
	for pid := range serfPids(t) {
		if !before[pid] {
			t.Errorf("serf process %d left behind", pid)
		}
	}
}

// serfPids lists the pids of running serf processes.
func serfPids(t *testing.T) map[int]bool {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int]bool)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		name, _, _ := strings.Cut(string(b), "\x00")
		if filepath.Base(name) == "serf" && runningSerf(pid) {
			out[pid] = true
		}
	}
	return out
}

func TestSerfObserve(t *testing.T) {
	a := &serfAgent{rec: newRecorder()}
	at := time.Now()
	// As the RPC client decodes a stream record: nested maps keyed by
	// any, strings possibly as bytes.
	a.observeRecord(map[string]any{
		"Event": "member-update",
		"Members": []any{
			map[any]any{"Name": "serf-1", "Status": "alive", "Tags": map[any]any{"v": "12"}},
			map[any]any{"Name": []byte("serf-2"), "Status": []byte("alive"), "Tags": map[any]any{"churn": []byte("3")}},
		},
	}, at)
	a.observeRecord(map[string]any{
		"Event":   "member-failed",
		"Members": []any{map[string]any{"Name": "serf-3", "Status": "failed"}},
	}, at)
	a.observeRecord(map[string]any{
		"Event":   "member-leave",
		"Members": []any{map[string]any{"Name": "serf-4", "Status": "left"}},
	}, at)
	for _, key := range []string{convKey(12), hereKey("serf-1"), hereKey("serf-2"), goneKey("serf-3"), goneKey("serf-4")} {
		if got, _, ok := a.rec.at(key); !ok || !got.Equal(at) {
			t.Errorf("%s: %v, %v", key, got, ok)
		}
	}
	for _, key := range []string{convKey(3), hereKey("serf-3"), goneKey("serf-1")} {
		if _, _, ok := a.rec.at(key); ok {
			t.Errorf("%s marked", key)
		}
	}
}
