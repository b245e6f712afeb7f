package health_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/health"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// BenchmarkManager1000HTTPChecks runs 1,000 HTTP checks every second
// against one local server, ten times the load of 1,000 checks at 10s,
// and counts b.N check runs as the server sees them. The server runs in
// this process, so cpu-ns/run (user and system time of the process) and
// allocs/op count both ends of each request. ns/op is wall time per run:
// about 1ms (1,000 runs a second) while the checks keep up, more when
// they do not. A shorter interval saturates a small machine, and then
// runs that time out cost CPU without reaching the server, which
// inflates the per-run figures.
func BenchmarkManager1000HTTPChecks(b *testing.B) {
	const n, interval = 1000, time.Second
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("ok"))
	}))
	b.Cleanup(srv.Close)
	g0 := runtime.NumGoroutine()
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	m, _ := newManager(b, health.Config{})
	for i := range n {
		mustAdd(b, m, health.Definition{ID: fmt.Sprint("c", i), Name: "c", HTTP: srv.URL, Interval: interval})
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	goroutines := runtime.NumGoroutine() - g0
	// Let every check run once, so the stagger is behind us.
	testutil.WaitFor(b, time.Minute, func() error {
		if h := hits.Load(); h < 2*n {
			return fmt.Errorf("%d runs", h)
		}
		return nil
	})

	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ReportAllocs()
	b.ResetTimer()
	start := hits.Load()
	testutil.WaitFor(b, 10*time.Minute, func() error {
		if h := hits.Load() - start; h < int64(b.N) {
			return fmt.Errorf("%d of %d runs", h, b.N)
		}
		return nil
	})
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	runs := float64(hits.Load() - start)
	cpu := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/runs, "cpu-ns/run")
	b.ReportMetric(float64(goroutines)/n, "goroutines/check")
	b.ReportMetric(float64(ms1.HeapAlloc-min(ms0.HeapAlloc, ms1.HeapAlloc))/n, "heap-B/check")
	b.ReportMetric(float64(ms1.StackInuse-min(ms0.StackInuse, ms1.StackInuse))/n, "stack-B/check")
}
