package harness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Report is what a run measured.
type Report struct {
	Results []Result
	// Machine describes where it ran; Started and Took when and how long.
	Machine string
	Started time.Time
	Took    time.Duration
	// Skipped says what could not be measured here, and why.
	Skipped []string
}

// MaxSize is the largest cluster a run starts: each cluster has a range of
// 150 gossip ports and 150 API ports.
const MaxSize = 150

// Run measures what o asks for and returns the results. A part that
// cannot run on this machine (Serf not installable, no nftables to count
// bytes) is left out and named in Report.Skipped; a measurement that
// fails is an error, returned with the report of what was measured
// before it (and a temporary WorkDir is then kept for the agents' logs).
func Run(ctx context.Context, o Options) (_ *Report, err error) {
	start := time.Now()
	log := o.logger()
	for _, n := range o.Sizes {
		if n < 1 || n > MaxSize {
			return nil, fmt.Errorf("cluster size %d: must be 1 to %d", n, MaxSize)
		}
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "shoal-bench-")
		if err != nil {
			return nil, fmt.Errorf("work directory: %w", err)
		}
		defer func() {
			if err == nil {
				os.RemoveAll(dir)
			} else {
				log.Warn("the agents' logs are kept", "dir", dir)
			}
		}()
		o.WorkDir = dir
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	r := &runner{o: &o, rep: &Report{Started: start, Machine: machine()}}
	defer func() { r.rep.Took = time.Since(start) }()

	processes := slices.Contains(o.Modes, ModeProcesses)
	var bin, serf string
	if processes || len(o.Instances) > 0 || o.APIDuration > 0 {
		var err error
		if bin, err = buildShoal(ctx, &o); err != nil {
			return r.rep, err
		}
	}
	if processes {
		var err error
		serf, err = ensureSerf(ctx, &o)
		if err != nil {
			r.skip("Serf: %v", err)
		} else if out, err := exec.CommandContext(ctx, serf, "version").Output(); err == nil {
			r.rep.Machine += "; " + strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		}
	}
	bc, err := newByteCounter(ctx)
	if err != nil {
		r.skip("gossip bytes: %v", err)
	} else {
		defer bc.Close(context.Background())
		r.bytes = bc
	}

	for _, n := range o.Sizes {
		for _, mode := range o.Modes {
			log.Info("starting Shoal", "mode", mode, "n", n)
			ports, err := r.nextPorts()
			if err != nil {
				return r.rep, err
			}
			c, err := startShoal(ctx, &o, mode, bin, n, ports)
			if err != nil {
				return r.rep, fmt.Errorf("shoal, %s, N=%d: %w", mode, n, err)
			}
			err = r.measure(ctx, c)
			if cerr := c.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("stopping: %w", cerr)
			}
			if err != nil {
				return r.rep, fmt.Errorf("shoal, %s, N=%d: %w", mode, n, err)
			}
		}
		if serf != "" {
			log.Info("starting Serf", "n", n)
			ports, err := r.nextPorts()
			if err != nil {
				return r.rep, err
			}
			c, err := startSerf(ctx, &o, serf, n, ports)
			if err != nil {
				return r.rep, fmt.Errorf("serf, N=%d: %w", n, err)
			}
			err = r.measure(ctx, c)
			if cerr := c.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("stopping: %w", cerr)
			}
			if err != nil {
				return r.rep, fmt.Errorf("serf, N=%d: %w", n, err)
			}
		}
	}
	if len(o.Instances) > 0 {
		log.Info("measuring memory", "instances", o.Instances)
		ports, err := r.nextPorts()
		if err != nil {
			return r.rep, err
		}
		res, err := measureMemory(ctx, &o, bin, ports)
		if err != nil {
			return r.rep, fmt.Errorf("memory: %w", err)
		}
		r.add(res...)
	}
	if o.APIDuration > 0 {
		log.Info("measuring the local API", "instances", o.APIInstances, "connections", o.APIConns)
		ports, err := r.nextPorts()
		if err != nil {
			return r.rep, err
		}
		res, err := measureAPI(ctx, &o, bin, ports)
		if err != nil {
			return r.rep, fmt.Errorf("local API: %w", err)
		}
		r.add(res...)
	}
	return r.rep, nil
}

type runner struct {
	o        *Options
	rep      *Report
	bytes    *byteCounter
	clusters int
	mu       sync.Mutex
}

func (r *runner) add(res ...Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Results = append(r.rep.Results, res...)
}

func (r *runner) skip(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.o.logger().Warn("left out", "what", msg)
	r.rep.Skipped = append(r.rep.Skipped, msg)
}

// nextPorts gives each cluster its own port ranges, so a port of the last
// one still in TIME_WAIT never matters: gossip on 20000 + 300·k, APIs
// 150 above, below the kernel's ephemeral ports. A range with a port
// taken (another run of the harness, say) is passed over.
func (r *runner) nextPorts() (portPlan, error) {
	for range 40 {
		k := r.clusters % 40
		r.clusters++
		base := 20000 + 300*k
		if portsFree(base, base+299) {
			return portPlan{Gossip: base, API: base + 150}, nil
		}
	}
	return portPlan{}, errors.New("no free range of 300 ports between 20000 and 32000 on 127.0.0.1")
}

// portsFree reports whether every port lo…hi is free on 127.0.0.1, TCP and
// UDP.
func portsFree(lo, hi int) bool {
	for p := lo; p <= hi; p++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		l.Close()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		pc.Close()
	}
	return true
}

// measure runs every cluster scenario on c, in an order that leaves the
// destructive ones (leave, crash) for last.
func (r *runner) measure(ctx context.Context, c cluster) error {
	o := r.o
	n := c.Size()
	log := o.logger().With("system", c.System(), "mode", c.Mode(), "n", n)
	res := func(scenario, stat string, v float64, unit string, samples int, note string) Result {
		return Result{Scenario: scenario, System: c.System(), Mode: c.Mode(), N: n, Stat: stat, Value: v, Unit: unit, Samples: samples, Note: note}
	}
	live := make([]bool, n)
	for i := range live {
		live[i] = true
	}
	recs := func() []*recorder {
		var out []*recorder
		for i := range n {
			if live[i] {
				out = append(out, c.Recorder(i))
			}
		}
		return out
	}
	// everywhere waits until every live agent has key and returns how
	// long after t0 the last one got it.
	everywhere := func(t0 time.Time, key string) (time.Duration, error) {
		wctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		times, err := waitAll(wctx, recs(), key)
		if err != nil {
			return 0, err
		}
		for _, t := range times {
			if t.Before(t0) {
				return 0, fmt.Errorf("%q was seen %s before it happened: a stale record", key, t0.Sub(t))
			}
		}
		return slices.MaxFunc(times, func(a, b time.Time) int { return a.Compare(b) }).Sub(t0), nil
	}

	if rc, ok := c.(interface{ RSS(int) (uint64, error) }); ok {
		if rss, err := rc.RSS(0); err == nil {
			r.add(res("agent-rss", "idle", mib(rss), "MiB", 1, "one agent of the idle cluster"))
		}
	}

	if r.bytes != nil && o.ByteWindow > 0 {
		log.Info("settling before counting idle traffic", "for", o.Settle)
		select {
		case <-time.After(o.Settle):
		case <-ctx.Done():
			return ctx.Err()
		}
		lo, hi := c.GossipPorts()
		b, err := r.countBytes(ctx, lo, hi, n, nil)
		if err != nil {
			return fmt.Errorf("gossip bytes, idle: %w", err)
		}
		r.add(res("bytes-idle", "mean", b, "B/node/s", 1, fmt.Sprintf("%s window after %s settling, IP packets on the gossip ports", o.ByteWindow, o.Settle)))
		log.Info("gossip bytes, idle", "B/node/s", math.Round(b))
	}

	k := 0 // change numbers, unique over the cluster's life
	if o.Repeats > 0 {
		var lat []time.Duration
		for rep := 0; rep < o.Repeats; rep++ {
			origin := rep % n
			t0 := time.Now()
			key, err := c.Change(ctx, origin, k)
			k++
			if err != nil {
				return fmt.Errorf("change %d: %w", rep, err)
			}
			d, err := everywhere(t0, key)
			if err != nil {
				return fmt.Errorf("change %d reaching every agent: %w", rep, err)
			}
			lat = append(lat, d)
			if (rep+1)%10 == 0 || rep+1 == o.Repeats {
				log.Info("convergence", "done", rep+1, "of", o.Repeats)
			}
		}
		what := "a registration"
		if c.System() == "serf" {
			what = "a tag change"
		}
		note := what + " served by every agent"
		r.add(res("convergence", "p50", ms(percentile(lat, 0.5)), "ms", len(lat), note),
			res("convergence", "p99", ms(percentile(lat, 0.99)), "ms", len(lat), note))
	}

	if r.bytes != nil && o.ByteWindow > 0 && o.ChurnRate > 0 {
		lo, hi := c.GossipPorts()
		var made int // changes made, which a slow agent can hold below the rate
		churn := func(cctx context.Context) error {
			every := time.Duration(float64(time.Second) / (o.ChurnRate * float64(n)))
			t := time.NewTicker(every)
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-cctx.Done():
					return nil
				case <-t.C:
				}
				if err := c.Churn(cctx, i%n, i/n); err != nil {
					if cctx.Err() == nil {
						return err
					}
					return nil
				}
				made++
			}
		}
		t0 := time.Now()
		b, err := r.countBytes(ctx, lo, hi, n, churn)
		if err != nil {
			return fmt.Errorf("gossip bytes under churn: %w", err)
		}
		rate := float64(made) / float64(n) / time.Since(t0).Seconds()
		r.add(res("bytes-churn", "mean", b, "B/node/s", 1, fmt.Sprintf("%.2f changes per agent per second (%g asked), %s window", rate, o.ChurnRate, o.ByteWindow)))
		log.Info("gossip bytes, churn", "B/node/s", math.Round(b))
	}

	if bc, ok := c.(burster); ok && o.Burst > 0 {
		t0 := time.Now()
		key, err := bc.Burst(ctx, o.Burst)
		if err != nil {
			return fmt.Errorf("burst: %w", err)
		}
		accepted := time.Since(t0)
		d, err := everywhere(t0, key)
		if err != nil {
			return fmt.Errorf("burst reaching every agent: %w", err)
		}
		note := fmt.Sprintf("%d registrations over 16 connections, accepted in %.0f ms", o.Burst, ms(accepted))
		if sc, ok := c.(*shoalCluster); ok && sc.mode == ModeProcesses {
			note += fmt.Sprintf("; agents watched once all were accepted, with a %s pause between queries", sc.burstPause())
		}
		r.add(res("burst", "all-visible", ms(d), "ms", 1, note))
		log.Info("burst", "registrations", o.Burst, "ms", math.Round(ms(d)))
	}

	// Agents taken away: the last ones, leaves first, then crashes; at
	// least two stay to watch.
	fails := min(o.FailRepeats, (n-2)/2)
	next := n - 1
	for _, kind := range []string{"leave", "crash"} {
		var lat []time.Duration
		for f := 0; f < fails; f++ {
			i := next
			next--
			live[i] = false
			// An agent wrongly declared gone earlier (a busy machine)
			// and back since must not count as seen now.
			for _, rec := range recs() {
				rec.forget(c.GoneKey(i))
			}
			t0 := time.Now()
			var err error
			if kind == "leave" {
				err = c.Leave(ctx, i)
			} else {
				err = c.Crash(ctx, i)
			}
			if err != nil {
				return fmt.Errorf("%s of agent %d: %w", kind, i, err)
			}
			d, err := everywhere(t0, c.GoneKey(i))
			if err != nil {
				return fmt.Errorf("%s of agent %d seen by every agent: %w", kind, i, err)
			}
			lat = append(lat, d)
			log.Info(kind, "agent", i, "ms", math.Round(ms(d)))
		}
		if len(lat) > 0 {
			note := "its instances hidden by every other agent"
			if c.System() == "serf" {
				note = "seen failed or left by every other agent"
			}
			r.add(res(kind, "p50", ms(percentile(lat, 0.5)), "ms", len(lat), note),
				res(kind, "max", ms(slices.Max(lat)), "ms", len(lat), note))
		}
	}
	return nil
}

// countBytes counts the gossip traffic of ports lo…hi over the byte
// window, while load (if any) runs, and returns bytes per agent per
// second.
func (r *runner) countBytes(ctx context.Context, lo, hi, n int, load func(context.Context) error) (float64, error) {
	h, err := r.bytes.Watch(ctx, lo, hi)
	if err != nil {
		return 0, err
	}
	lctx, stop := context.WithCancel(ctx)
	loadErr := make(chan error, 1)
	if load != nil {
		go func() { loadErr <- load(lctx) }()
	} else {
		loadErr <- nil
	}
	b0, err := r.bytes.Read(ctx, h)
	if err != nil {
		stop()
		<-loadErr
		return 0, err
	}
	t0 := time.Now()
	select {
	case <-time.After(r.o.ByteWindow):
	case <-ctx.Done():
	}
	b1, err := r.bytes.Read(ctx, h)
	took := time.Since(t0)
	stop()
	if lerr := <-loadErr; lerr != nil {
		return 0, fmt.Errorf("load: %w", lerr)
	}
	if err != nil {
		return 0, err
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return float64(b1-b0) / float64(n) / took.Seconds(), nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(b uint64) float64       { return float64(b) / (1 << 20) }

// machine describes the machine for the report: CPU model and count,
// memory, kernel and Go version.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb uint64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d × %s%s%s, %s", runtime.NumCPU(), model, mem, kernel, runtime.Version())
}
