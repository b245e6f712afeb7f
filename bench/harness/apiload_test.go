package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// testShoalBin builds the shoal binary into a temporary directory.
func testShoalBin(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := buildShoal(ctx, &Options{WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// freePortPlan finds a port plan whose first two gossip ports (TCP and
// UDP) and first two API ports are free now.
func freePortPlan(t *testing.T) portPlan {
	t.Helper()
	free := func(port int) bool {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		defer l.Close()
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		defer u.Close()
		return true
	}
	for range 100 {
		base := 20000 + 2*rand.IntN(6000)
		p := portPlan{Gossip: base, API: base + 100}
		if free(p.Gossip) && free(p.Gossip+1) && free(p.API) && free(p.API+1) {
			return p
		}
	}
	t.Fatal("no free ports found")
	return portPlan{}
}

// runningAgents lists the processes running bin.
func runningAgents(t *testing.T, bin string) []int {
	t.Helper()
	exes, err := filepath.Glob("/proc/[0-9]*/exe")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, exe := range exes {
		target, err := os.Readlink(exe)
		if err != nil || target != bin {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(exe)))
		pids = append(pids, pid)
	}
	return pids
}

// findResult returns the result of a scenario and stat.
func findResult(t *testing.T, rs []Result, scenario, stat string) Result {
	t.Helper()
	for _, r := range rs {
		if r.Scenario == scenario && r.Stat == stat {
			return r
		}
	}
	t.Fatalf("no %s %s among %d results", scenario, stat, len(rs))
	return Result{}
}

func TestMeasureAPI(t *testing.T) {
	bin := testShoalBin(t)
	o := &Options{
		APIDuration:  300 * time.Millisecond,
		APIConns:     4,
		APIInstances: 100,
		WorkDir:      t.TempDir(),
		Timeout:      time.Minute,
		Log:          testLogger(t),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rs, err := measureAPI(ctx, o, bin, freePortPlan(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		t.Logf("%s %s: %.3f %s over %d samples (%s)", r.Scenario, r.Stat, r.Value, r.Unit, r.Samples, r.Note)
		if r.System != "shoal" || r.Mode != ModeProcesses || r.N != o.APIInstances || r.Samples <= 0 {
			t.Errorf("result %+v", r)
		}
	}
	rate := findResult(t, rs, "api", "req/s")
	p50 := findResult(t, rs, "api", "p50")
	p99 := findResult(t, rs, "api", "p99")
	if rate.Value <= 0 || rate.Unit != "req/s" {
		t.Errorf("rate %v %s", rate.Value, rate.Unit)
	}
	if p50.Value <= 0 || p50.Value > p99.Value || p50.Unit != "ms" || p99.Unit != "ms" {
		t.Errorf("p50 %v %s, p99 %v %s", p50.Value, p50.Unit, p99.Value, p99.Unit)
	}
	// The rate is the requests measured over the window they took.
	if got := float64(rate.Samples) / rate.Value; got < 0.2 || got > 2 {
		t.Errorf("%d requests at %.0f/s make a %.2fs window, want about 0.3s", rate.Samples, rate.Value, got)
	}
	if pids := runningAgents(t, bin); len(pids) > 0 {
		t.Errorf("agents still running: pids %v", pids)
	}
}

// TestMeasureAPIRefusesWrongAnswers checks that the load generator
// counts the instances: an agent holding fewer than it is told to expect
// fails the run.
func TestMeasureAPIRefusesWrongAnswers(t *testing.T) {
	bin := testShoalBin(t)
	ports := freePortPlan(t)
	o := &Options{WorkDir: t.TempDir(), Timeout: time.Minute, Log: testLogger(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := startShoalProc(ctx, o, bin, "api-wrong", ports.Gossip, ports.API, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	url := fmt.Sprintf("http://%s/v1/health/service/%s", p.HTTPAddr, apiService)
	_, err = loadAPI(ctx, url, 3, 2, 10*time.Millisecond, 50*time.Millisecond)
	if err == nil {
		t.Fatal("a load expecting 3 instances of a service with none succeeded")
	}
	t.Logf("refused as expected: %v", err)
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if pids := runningAgents(t, bin); len(pids) > 0 {
		t.Errorf("agents still running: pids %v", pids)
	}
}
