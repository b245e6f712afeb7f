package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// checkInterval is the HTTP check interval of the failure benchmark: the
// shortest Consul allows, so the figure is dominated by what Shoal adds.
const checkInterval = time.Second

// BenchmarkCheckFailurePropagation measures, at N = 32 agents on loopback
// with memberlist's LAN timers, the time from a service's health endpoint
// starting to fail to every agent serving the instance as critical. It
// includes the wait for the check's next run (up to one interval), so the
// target is checkInterval + at most 1 s. A second figure, from the origin
// agent recording critical to the last agent seeing it, is the gossip part.
func BenchmarkCheckFailurePropagation(b *testing.B) {
	const n = 32
	c := testutil.NewEmptyCluster(b)
	c.Configure = func(cfg *agent.Config) {
		productionTimers(cfg)
		// The benchmark flips the check on purpose, far more often than
		// flap damping lets through.
		cfg.Damping.Disabled = true
	}
	for i := 0; i < n; i++ {
		c.Start(fmt.Sprintf("node-%d", i), 0)
	}
	c.JoinAll()
	nodes := c.Nodes()

	var code atomic.Int32
	code.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(code.Load()))
	}))
	defer srv.Close()
	origin := nodes[0]
	check := api.AgentServiceCheck{HTTP: srv.URL, Interval: checkInterval.String(), Timeout: "500ms"}
	if err := origin.Agent.RegisterService(catalog.Service{ID: "web-1", Name: "web", Port: 80}, []api.AgentServiceCheck{check}); err != nil {
		b.Fatal(err)
	}

	var total, gossip []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		code.Store(http.StatusOK)
		waitStatus(b, nodes, catalog.HealthPassing, nil)
		start := time.Now()
		code.Store(http.StatusInternalServerError)
		var decided time.Time
		last := waitStatus(b, nodes, catalog.HealthCritical, func(name string, t time.Time) {
			if name == origin.Name {
				decided = t
			}
		})
		total = append(total, last.Sub(start))
		gossip = append(gossip, last.Sub(decided))
	}
	b.StopTimer()
	reportLatency(b, total)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(percentile(gossip, 0.50)), "gossip-p50-ms")
	b.ReportMetric(ms(percentile(gossip, 0.99)), "gossip-p99-ms")
}

// waitStatus waits, through each agent's change notifications, until every
// agent serves web-1 with the given status, and returns when the last did.
// seen, if set, is told when each agent got there.
func waitStatus(b *testing.B, nodes []*testutil.Node, want catalog.Health, seen func(string, time.Time)) time.Time {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type arrival struct {
		node string
		at   time.Time
	}
	arrived := make(chan arrival, len(nodes))
	for _, nd := range nodes {
		go func() {
			for {
				ch := nd.Agent.Changed()
				st := catalog.Health(0)
				nd.Agent.Read(func(cat *catalog.Catalog) {
					for _, in := range cat.Instances("web") {
						st = in.Status
					}
				})
				if st == want {
					arrived <- arrival{nd.Name, time.Now()}
					return
				}
				select {
				case <-ch:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	var last time.Time
	for range nodes {
		select {
		case a := <-arrived:
			if seen != nil {
				seen(a.node, a.at)
			}
			if a.at.After(last) {
				last = a.at
			}
		case <-ctx.Done():
			var missing []string
			for _, nd := range nodes {
				nd.Agent.Read(func(cat *catalog.Catalog) {
					for _, in := range cat.Instances("web") {
						if in.Status != want {
							missing = append(missing, fmt.Sprintf("%s:%s%v", nd.Name, in.Status, in.Checks))
						}
					}
				})
			}
			b.Fatalf("not every agent saw %s within a minute: %v", want, missing)
		}
	}
	return last
}

// BenchmarkThousandHTTPChecks runs one real `shoal agent` process with
// 1,000 services, each with an HTTP check every 10 s against a server in
// this process, and reports the agent's CPU use (percent of one core) and
// resident memory over a steady-state window. -benchtime sets nothing
// here; SHOAL_BENCH_WINDOW (default 60s) sets the window.
func BenchmarkThousandHTTPChecks(b *testing.B) {
	const services = 1000
	window := 60 * time.Second
	if v := os.Getenv("SHOAL_BENCH_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		window = d
	}
	bin := filepath.Join(b.TempDir(), "shoal")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/shoal").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("ok"))
	}))
	defer srv.Close()

	httpAddr := freeAddr(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "agent", "--dev", "--node", "bench", "--port", "0", "--http-addr", httpAddr, "--dns-addr", "127.0.0.1:0", "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	client := &api.Client{Addr: httpAddr}
	testutil.WaitFor(b, 30*time.Second, func() error {
		_, err := client.Self(ctx)
		return err
	})
	for i := 0; i < services; i++ {
		reg := api.AgentServiceRegistration{
			ID: fmt.Sprintf("svc-%d", i), Name: "svc", Port: 10000 + i,
			Check: &api.AgentServiceCheck{HTTP: fmt.Sprintf("%s/health/%d", srv.URL, i), Interval: "10s", Timeout: "2s"},
		}
		if err := client.Register(ctx, &reg); err != nil {
			b.Fatal(err)
		}
	}
	// Let the staggered first runs pass, then measure a steady window.
	warm := time.NewTimer(15 * time.Second)
	<-warm.C
	pid := cmd.Process.Pid
	cpu0, at0, hits0 := cpuTicks(b, pid), time.Now(), hits.Load()
	var maxRSS int64
	tick := time.NewTicker(time.Second)
	for end := time.Now().Add(window); time.Now().Before(end); <-tick.C {
		maxRSS = max(maxRSS, rssKB(b, pid))
	}
	tick.Stop()
	cpu1, at1, hits1 := cpuTicks(b, pid), time.Now(), hits.Load()
	const ticksPerSecond = 100 // USER_HZ on Linux
	cpuPct := float64(cpu1-cpu0) / ticksPerSecond / at1.Sub(at0).Seconds() * 100
	b.ReportMetric(cpuPct, "cpu-%")
	b.ReportMetric(float64(maxRSS)/1024, "rss-MiB")
	b.ReportMetric(float64(hits1-hits0)/at1.Sub(at0).Seconds(), "checks/s")
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// cpuTicks is the process's user+system CPU time in clock ticks.
func cpuTicks(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

// rssKB is the process's resident set size in KiB.
func rssKB(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}
