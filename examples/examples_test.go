package examples_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// syncBuffer collects a process's output; the process writes it from
// exec's copying goroutine while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is one example service running as a process.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	addr string
	done chan error // receives Wait's result
}

// start runs bin pointed at the agent, listening on addr. Cleanup kills it
// if it still runs.
func start(t *testing.T, agentAddr, bin, addr string) *proc {
	t.Helper()
	p := &proc{out: &syncBuffer{}, addr: addr, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "--addr", addr)
	p.cmd.Env = append(os.Environ(), api.EnvHTTPAddr+"="+agentAddr)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		t.Logf("%s --addr %s:\n%s", filepath.Base(bin), addr, p.out)
	})
	return p
}

// passing lists the IDs of the passing instances of service, by address.
func passing(c *api.Client, service string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	entries, _, err := c.HealthService(ctx, service, &api.QueryOptions{Passing: true})
	if err != nil {
		return nil, err
	}
	ids := make(map[string]string, len(entries))
	for _, e := range entries {
		ids[fmt.Sprintf("%s:%d", e.Service.Address, e.Service.Port)] = e.Service.ID
	}
	return ids, nil
}

func TestExamples(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the example services stop on SIGTERM")
	}
	if testing.Short() {
		t.Skip("builds and runs the example binaries")
	}
	cluster := testutil.NewCluster(t, 1)
	agentAddr := cluster.Nodes()[0].Agent.HTTPAddr()
	c := &api.Client{Addr: agentAddr}

	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./user-service", "./payment-service", "./client")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	users := []*proc{
		start(t, agentAddr, filepath.Join(bin, "user-service"), testutil.FreeAddr(t)),
		start(t, agentAddr, filepath.Join(bin, "user-service"), testutil.FreeAddr(t)),
	}
	payment := start(t, agentAddr, filepath.Join(bin, "payment-service"), testutil.FreeAddr(t))

	// The HTTP checks start critical and first run within their 2s
	// interval.
	var userIDs, paymentIDs map[string]string
	testutil.WaitFor(t, 10*time.Second, func() error {
		var err error
		if userIDs, err = passing(c, "user"); err != nil {
			return err
		}
		if paymentIDs, err = passing(c, "payment"); err != nil {
			return err
		}
		for _, p := range append(users, payment) {
			if userIDs[p.addr] == "" && paymentIDs[p.addr] == "" {
				return fmt.Errorf("no passing instance at %s yet; user: %v, payment: %v", p.addr, userIDs, paymentIDs)
			}
		}
		return nil
	})

	client := exec.Command(filepath.Join(bin, "client"), "--count", "6", "--interval", "10ms")
	client.Env = append(os.Environ(), api.EnvHTTPAddr+"="+agentAddr)
	out, err := client.CombinedOutput()
	t.Logf("client:\n%s", out)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	for _, want := range []string{userIDs[users[0].addr], userIDs[users[1].addr], paymentIDs[payment.addr]} {
		if !strings.Contains(string(out), "answered by "+want+" ") {
			t.Errorf("no call answered by %s", want)
		}
	}

	// SIGTERM: the instance deregisters, then exits cleanly.
	gone := users[0]
	if err := gone.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-gone.done:
		gone.done <- err // for Cleanup
		if err != nil {
			t.Fatalf("user-service after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("user-service still running 10s after SIGTERM")
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		services, err := c.AgentServices(ctx)
		if err != nil {
			return err
		}
		if id := userIDs[gone.addr]; services[id] != nil {
			return fmt.Errorf("%s still registered", id)
		}
		if id := userIDs[users[1].addr]; services[id] == nil {
			return fmt.Errorf("%s, still running, is no longer registered", id)
		}
		return nil
	})
}
