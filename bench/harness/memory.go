package harness

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/gossip"
)

// Shape of the catalogs whose memory is measured.
const (
	// memPerNode instances run on each node of the in-process catalog.
	memPerNode = 100
	// memServiceNames distinct service names share the instances.
	memServiceNames = 50
	// memRegisterWorkers register instances with the origin agent
	// concurrently, each over its own keep-alive connection.
	memRegisterWorkers = 16
	// memPollInterval is how often the replica's progress is read.
	memPollInterval = 250 * time.Millisecond
)

// memService is instance i of a measured catalog: one of
// memServiceNames names, 3 tags, 1–2 meta keys, an address and a port,
// the size of a typical registration.
func memService(i int) catalog.Service {
	name := fmt.Sprintf("svc-%02d", i%memServiceNames)
	s := catalog.Service{
		ID:      name + "-" + strconv.Itoa(i),
		Name:    name,
		Tags:    []string{"v2", "zone-" + string(rune('a'+i%3)), [2]string{"http", "grpc"}[i%2]},
		Address: memNodeIP(i / memPerNode),
		Port:    20000 + i%10000,
		Meta:    map[string]string{"version": "1.4." + strconv.Itoa(i%10)},
	}
	if i%2 == 0 {
		s.Meta["team"] = "payments"
	}
	return s
}

func memNodeName(j int) string { return fmt.Sprintf("node-%05d", j) }

// memNodeIP is node j's address: 10.x.y.z with z in 1–250.
func memNodeIP(j int) string { return fmt.Sprintf("10.%d.%d.%d", j/62500%256, j/250%250, j%250+1) }

// measureMemory measures, for each catalog size in o.Instances, the Go
// heap a catalog of that many instances takes in this process, and the
// resident memory of two `shoal agent` processes: one that had the
// instances registered with it over HTTP and one that learned them by
// gossip. The agents listen on ports.Gossip, ports.Gossip+1, ports.API
// and ports.API+1.
func measureMemory(ctx context.Context, o *Options, bin string, ports portPlan) ([]Result, error) {
	var out []Result
	for _, k := range o.Instances {
		if k <= 0 {
			return out, fmt.Errorf("memory: catalog size %d is not positive", k)
		}
		rs, err := catalogMemory(ctx, o, k)
		if err != nil {
			return out, err
		}
		out = append(out, rs...)
		rs, err = agentRSS(ctx, o, bin, ports, k)
		out = append(out, rs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// catalogMemory builds, in this process, the catalog an agent holds when
// k instances run on k/memPerNode other nodes, and measures its heap.
// Every entry takes the path of a gossiped entry: encoded by the gossip
// codec, decoded (which copies every string, as on receipt) and applied.
func catalogMemory(ctx context.Context, o *Options, k int) ([]Result, error) {
	log := o.logger().With("instances", k)
	nodes := (k + memPerNode - 1) / memPerNode
	start := time.Now()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	now := time.Now()
	epoch := uint64(now.UnixNano())
	cat := catalog.New("bench-local", epoch)
	for j := range nodes {
		cat.SetNode(catalog.Node{
			Name:    memNodeName(j),
			Address: memNodeIP(j),
			Port:    7946,
			Status:  catalog.StatusAlive,
			Epoch:   epoch + uint64(j) + 1,
			Meta:    map[string]string{gossip.VersionMetaKey: "0.1.0"},
		}, now)
	}
	for i := range k {
		if i%4096 == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("catalog memory at %d instances: %w", k, ctx.Err())
		}
		j := i / memPerNode
		e := catalog.Entry{
			Origin:  memNodeName(j),
			Version: catalog.Version{Epoch: epoch + uint64(j) + 1, Counter: uint64(i%memPerNode + 1)},
			Service: memService(i).Normalize(),
		}
		got, err := gossip.DecodeEntry(gossip.EncodeEntry(e))
		if err != nil {
			return nil, fmt.Errorf("catalog memory: decode instance %d: %w", i, err)
		}
		if ch := cat.Apply(got, now); len(ch.Accepted) != 1 {
			return nil, fmt.Errorf("catalog memory: instance %d (%s/%s) not accepted", i, e.Origin, e.Service.ID)
		}
	}

	runtime.GC()
	runtime.ReadMemStats(&after)
	served := 0
	for name := range cat.Services() {
		served += len(cat.Instances(name))
	}
	runtime.KeepAlive(cat)
	if served != k {
		return nil, fmt.Errorf("catalog memory: catalog serves %d instances, want %d", served, k)
	}

	total := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	per := float64(total) / float64(k)
	log.Info("catalog memory", "total_mib", fmt.Sprintf("%.1f", float64(total)/(1<<20)), "bytes_per_instance", int(per),
		"took", time.Since(start).Round(time.Millisecond))
	note := fmt.Sprintf("Go heap (HeapAlloc after GC) of one catalog: %d instances on %d nodes (%d each), %d service names, "+
		"3 tags and 1-2 meta keys each, put in as received by gossip (codec decode, catalog.Apply)",
		k, nodes, memPerNode, memServiceNames)
	return []Result{
		{Scenario: "catalog-memory", System: "shoal", Mode: ModeInProcess, N: k, Stat: "total",
			Value: float64(total) / (1 << 20), Unit: "MiB", Samples: 1, Note: note},
		{Scenario: "catalog-memory", System: "shoal", Mode: ModeInProcess, N: k, Stat: "per-instance",
			Value: per, Unit: "B", Samples: 1, Note: note},
	}, nil
}

// agentRSS starts agent A and agent B joined to it, registers k instances
// with A over HTTP, waits (up to o.Timeout) for B to hold them all, and
// reports the resident memory of an idle agent, of A and of B.
func agentRSS(ctx context.Context, o *Options, bin string, ports portPlan, k int) (_ []Result, err error) {
	log := o.logger().With("instances", k)
	a, err := startShoalProc(ctx, o, bin, fmt.Sprintf("mem%d-a", k), ports.Gossip, ports.API, nil)
	if err != nil {
		return nil, fmt.Errorf("rss: %w", err)
	}
	defer func() { err = errors.Join(err, a.Kill()) }()
	b, err := startShoalProc(ctx, o, bin, fmt.Sprintf("mem%d-b", k), ports.Gossip+1, ports.API+1, []string{a.GossipAddr})
	if err != nil {
		return nil, fmt.Errorf("rss: %w", err)
	}
	defer func() { err = errors.Join(err, b.Kill()) }()
	if err := waitMembers(ctx, o, a, 2); err != nil {
		return nil, fmt.Errorf("rss: %w", err)
	}

	idleA, err := a.RSS()
	if err != nil {
		return nil, err
	}
	idleB, err := b.RSS()
	if err != nil {
		return nil, err
	}
	log.Info("agents idle", "a_mib", mibString(idleA), "b_mib", mibString(idleB))

	regStart := time.Now()
	if err := registerMany(ctx, o, a, k); err != nil {
		return nil, fmt.Errorf("rss: %w", err)
	}
	regTook := time.Since(regStart)
	log.Info("registered", "took", regTook.Round(time.Millisecond), "per_second", int(float64(k)/regTook.Seconds()))

	got, waited, err := waitReplica(ctx, o, a, b, k)
	if err != nil {
		return nil, fmt.Errorf("rss: %w", err)
	}
	rssA, err := a.RSS()
	if err != nil {
		return nil, err
	}
	rssB, err := b.RSS()
	if err != nil {
		return nil, err
	}
	peakA, err := a.PeakRSS()
	if err != nil {
		return nil, err
	}
	peakB, err := b.PeakRSS()
	if err != nil {
		return nil, err
	}
	log.Info("agents loaded", "origin_mib", mibString(rssA), "replica_mib", mibString(rssB),
		"origin_peak_mib", mibString(peakA), "replica_peak_mib", mibString(peakB), "replica_holds", got)

	replicaNote := fmt.Sprintf("agent B, joined to A, learned the instances by gossip: all %d held %.1fs after the last registration",
		k, waited.Seconds())
	if got < k {
		replicaNote = fmt.Sprintf("agent B held only %d of the %d instances when the %v wait ran out; RSS measured then",
			got, k, o.Timeout)
	}
	originNote := fmt.Sprintf("agent A, which had the %d instances registered over HTTP (%d workers, %.1fs, %.0f/s)",
		k, memRegisterWorkers, regTook.Seconds(), float64(k)/regTook.Seconds())
	const (
		rssNote  = "; VmRSS of a `shoal agent` process when the wait for B ended"
		peakNote = "; VmHWM (largest RSS since start) of a `shoal agent` process when the wait for B ended"
	)
	res := func(stat string, v uint64, note string) Result {
		return Result{Scenario: "catalog-rss", System: "shoal", Mode: ModeProcesses, N: k, Stat: stat,
			Value: mib(v), Unit: "MiB", Samples: 1, Note: note}
	}
	return []Result{
		res("idle", idleA, fmt.Sprintf("agent A in a cluster of 2, before any registration (B: %.1f MiB); VmRSS of a `shoal agent` process",
			mib(idleB))),
		res("origin", rssA, originNote+rssNote),
		res("replica", rssB, replicaNote+rssNote),
		res("origin-peak", peakA, originNote+peakNote),
		res("replica-peak", peakB, replicaNote+peakNote),
	}, nil
}

func mibString(b uint64) string { return fmt.Sprintf("%.1f", mib(b)) }

// waitMembers waits, up to o.Timeout, until p sees n alive members.
func waitMembers(ctx context.Context, o *Options, p *shoalProc, n int) error {
	ctx, cancel := withTimeout(ctx, o.Timeout)
	defer cancel()
	tick := time.NewTicker(procPollInterval)
	defer tick.Stop()
	alive := 0
	for {
		ms, err := p.Client.Members(ctx)
		if err == nil {
			alive = 0
			for _, m := range ms {
				if m.Status == api.MemberAlive {
					alive++
				}
			}
			if alive >= n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent %s sees %d of %d members alive (last error: %v): %w", p.Name, alive, n, err, ctx.Err())
		case <-tick.C:
		}
	}
}

// withTimeout bounds ctx by d, unless d is zero.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// registerMany registers memService(0..k-1) with p from
// memRegisterWorkers workers, logging progress at every tenth. Each
// request is bounded by o.Timeout.
func registerMany(ctx context.Context, o *Options, p *shoalProc, k int) error {
	log := o.logger().With("agent", p.Name)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := time.Now()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range min(memRegisterWorkers, k) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= k {
					return
				}
				s := memService(i)
				rctx, rcancel := withTimeout(ctx, o.Timeout)
				err := p.Client.Register(rctx, &api.AgentServiceRegistration{
					ID: s.ID, Name: s.Name, Tags: s.Tags, Port: s.Port, Address: s.Address, Meta: s.Meta,
				})
				rcancel()
				if err != nil {
					cancel(fmt.Errorf("register instance %d of %d with %s: %w", i, k, p.Name, err))
					return
				}
				n := int(done.Add(1))
				if n*10/k != (n-1)*10/k {
					log.Info("registering", "done", n, "of", k, "elapsed", time.Since(start).Round(time.Millisecond))
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// waitReplica polls, up to o.Timeout, how many of origin's entries
// replica holds, until it holds k. The poll reads the replica's
// /v1/shoal/convergence, which counts entries per origin without copying
// them (the Prometheus scrape copies the whole catalog every time, which
// at 100k instances would weigh on the memory being measured). It returns
// what the replica held last and how long the wait took; running out of
// time is not an error.
func waitReplica(ctx context.Context, o *Options, origin, replica *shoalProc, k int) (got int, waited time.Duration, err error) {
	log := o.logger().With("agent", replica.Name)
	start := time.Now()
	wctx, cancel := withTimeout(ctx, o.Timeout)
	defer cancel()
	tick := time.NewTicker(memPollInterval)
	defer tick.Stop()
	lastLog := start
	for {
		cv, _, cerr := replica.Client.Convergence(wctx, nil)
		if cerr == nil {
			got = 0
			for _, od := range cv.Origins {
				if od.Origin == origin.Name {
					got = od.Entries
				}
			}
			if got >= k {
				return got, time.Since(start), nil
			}
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			log.Info("waiting for the replica", "holds", got, "of", k, "elapsed", time.Since(start).Round(time.Second), "err", cerr)
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return got, time.Since(start), ctx.Err()
			}
			log.Warn("replica did not get every instance in time", "holds", got, "of", k, "timeout", o.Timeout)
			return got, time.Since(start), nil
		case <-tick.C:
		}
	}
}
