package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// startAgentProcess runs `shoal agent` as a real process on loopback,
// with more flags in args, and waits until its HTTP API answers.
func startAgentProcess(t *testing.T, bin, httpAddr string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(bin, append([]string{"agent", "--bind", "127.0.0.1", "--port", "0", "--http-addr", httpAddr, "--dns-addr", "127.0.0.1:0"}, args...)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := &api.Client{Addr: httpAddr}
	testutil.WaitFor(t, 30*time.Second, func() error {
		_, err := c.Self(context.Background())
		return err
	})
	return cmd, logs
}

// A kill -9 in the middle of a burst of registrations loses at most the
// registration under way: every acknowledged one comes back after the
// restart, and no half-written file is left to trip over.
func TestKill9DuringRegistrationBurstLosesNothingAcknowledged(t *testing.T) {
	bin := buildShoal(t)
	dataDir := t.TempDir()
	addr := testutil.FreeAddr(t)
	cmd, _ := startAgentProcess(t, bin, addr, "--node", "burst", "--data-dir", dataDir)
	c := &api.Client{Addr: addr}

	var mu sync.Mutex
	var acked []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 5000; i++ {
			id := fmt.Sprintf("svc-%d", i)
			err := c.Register(context.Background(), &api.AgentServiceRegistration{ID: id, Name: "burst", Port: 1000 + i%60000,
				Tags: []string{"a", "b"}, Meta: map[string]string{"n": fmt.Sprint(i)},
				Check: &api.AgentServiceCheck{TTL: "1h"}})
			if err != nil {
				return // the agent is gone
			}
			mu.Lock()
			acked = append(acked, id)
			mu.Unlock()
		}
	}()
	testutil.WaitFor(t, time.Minute, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 200 {
			return fmt.Errorf("%d registrations acknowledged", len(acked))
		}
		return nil
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done
	_ = cmd.Wait()

	_, logs := startAgentProcess(t, bin, addr, "--node", "burst", "--data-dir", dataDir)
	got, err := c.AgentServices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checks, err := c.AgentChecks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range acked {
		if got[id] == nil {
			t.Errorf("acknowledged %s lost across kill -9", id)
		}
		// Restored TTL checks are critical until their first heartbeat.
		if ch := checks["service:"+id]; ch == nil || ch.Status != api.HealthCritical {
			t.Errorf("check of acknowledged %s after kill -9: %+v", id, ch)
		}
	}
	// At most the one registration under way at the kill is there beyond
	// the acknowledged ones.
	if len(got) > len(acked)+1 {
		t.Errorf("%d services restored, %d acknowledged", len(got), len(acked))
	}
	if strings.Contains(logs.String(), "set aside") {
		t.Errorf("a file was set aside after kill -9:\n%s", logs.String())
	}
	for _, dir := range []string{"services", "checks"} {
		files, _ := os.ReadDir(filepath.Join(dataDir, dir))
		for _, f := range files {
			if !strings.HasSuffix(f.Name(), ".json") || strings.HasPrefix(f.Name(), ".") {
				t.Errorf("left in the data dir: %s/%s", dir, f.Name())
			}
		}
	}
	t.Logf("%d registrations acknowledged before kill -9, %d restored", len(acked), len(got))
}
