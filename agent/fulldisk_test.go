package agent_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	consul "github.com/hashicorp/consul/api"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// smallDisk mounts a tmpfs of size bytes (root only) and unmounts it at
// cleanup.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file until the disk is full and returns a function that
// frees it.
func fill(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// With its data dir on a full disk, an agent refuses every write with a
// 500 and changes nothing, here or anywhere in the cluster: a client that
// takes the 500 as "not registered" is right. Reads go on; the failures
// are counted and logged once; once the disk has room, writes succeed
// without a restart, and a restart brings back exactly what was answered
// 200.
func TestFullDiskRefusesWritesAndChangesNothing(t *testing.T) {
	disk := smallDisk(t, 256<<10)
	c := testutil.NewEmptyCluster(t)
	c.Configure = withDataDir("node-0", disk)
	n0, n1 := c.Start("node-0", 0), c.Start("node-1", 0)
	c.JoinAll()
	errLines := countLogs(t, n0.Agent, "no space left on device")
	cl := consulClient(t, n0)
	ag := cl.Agent()
	if err := ag.ServiceRegister(&consul.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 80}); err != nil {
		t.Fatal(err)
	}
	free := fill(t, disk)

	failed := func(what string, err error) {
		t.Helper()
		if statusOf(err) != 500 || !strings.Contains(err.Error(), "no space left on device") {
			t.Fatalf("%s on a full disk: %v", what, err)
		}
	}
	failed("a new service", ag.ServiceRegister(&consul.AgentServiceRegistration{ID: "web-2", Name: "web", Port: 81}))
	failed("an update", ag.ServiceRegister(&consul.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 90,
		Check: &consul.AgentServiceCheck{TTL: "1m"}}))
	failed("a check", ag.CheckRegister(&consul.AgentCheckRegistration{ID: "disk", Name: "disk", AgentServiceCheck: consul.AgentServiceCheck{TTL: "1m"}}))
	failed("node maintenance", ag.EnableNodeMaintenance("full disk"))
	failed("service maintenance", ag.EnableServiceMaintenance("web-1", "full disk"))
	// A deregistration needs no room here (it removes files), but the
	// maintenance file is rewritten only when something is in maintenance.
	// Reads and DNS go on.
	services, err := ag.Services()
	if err != nil || len(services) != 1 || services["web-1"].Port != 80 {
		t.Fatalf("local services after refused writes: %v %+v", err, services)
	}
	if checks, err := ag.Checks(); err != nil || len(checks) != 0 {
		t.Fatalf("local checks after refused writes: %v %+v", err, checks)
	}
	// The other agent agrees with this one (same catalog summary), and has
	// none of the refused writes.
	converged(t, c, true)
	if got := len(n1.Instances("web")); got != 1 || n1.Instances("web")[0].Service.Port != 80 {
		t.Fatalf("the other agent serves %+v", n1.Instances("web"))
	}
	if v := scrape(t, n0)["shoal_data_dir_write_errors_total"]; v < 5 {
		t.Fatalf("shoal_data_dir_write_errors_total = %v, want 5 or more", v)
	}
	if n := errLines.Load(); n != 1 {
		t.Fatalf("%d error lines for the failed writes; want 1 a minute", n)
	}

	free()
	if err := ag.ServiceRegister(&consul.AgentServiceRegistration{ID: "web-2", Name: "web", Port: 81}); err != nil {
		t.Fatalf("after the disk has room: %v", err)
	}
	seenBy(t, c, "node-0/web-1", "node-0/web-2")
	port := n0.Port
	c.Stop("node-0")
	n0 = c.Start("node-0", port)
	local := n0.Agent.LocalServices()
	if len(local) != 2 || local[0].Port+local[1].Port != 161 {
		t.Fatalf("restored after a restart: %+v", local)
	}
}

// countLogs counts the agent's log lines at warning level and above that
// hold s.
func countLogs(t *testing.T, a *agent.Agent, s string) *atomic.Int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	lines, err := a.Monitor(ctx, slog.LevelWarn, false)
	if err != nil {
		t.Fatal(err)
	}
	n := new(atomic.Int64)
	go func() {
		for l := range lines {
			if strings.Contains(string(l), s) {
				n.Add(1)
			}
		}
	}()
	return n
}
