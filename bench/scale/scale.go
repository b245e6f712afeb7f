// Package scale runs Shoal past the size of any machine's worth of
// processes: N real agents (catalog, gossip layer, memberlist, HTTP API)
// in one process, connected by an in-memory network (internal/memnet)
// with latency, jitter and loss injected, and measures how a change
// spreads, what it costs in bytes, what an idle cluster sends with a
// large catalog, and how long a new agent takes to fetch a catalog.
//
// Every agent runs memberlist's LAN timers, as a deployment would. Bytes
// are what the agents' transports sent: memberlist's own traffic
// (probes, membership gossip, push/pull) included, memberlist's framing
// included, no IP or UDP headers.
package scale

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/internal/memnet"
)

// Options say what to run and measure.
type Options struct {
	// Sizes are the cluster sizes N.
	Sizes []int
	// Latency, Jitter and Loss shape the in-memory network: one-way
	// latency of packets and stream dials, up to Jitter more per packet,
	// and the probability that a packet is lost.
	Latency, Jitter time.Duration
	Loss            float64
	// Changes is how many registrations are timed until every agent
	// serves them.
	Changes int
	// Window is how long bytes are counted, idle and under churn;
	// ChurnRate is the registrations per second, cluster-wide, of the
	// churn.
	Window    time.Duration
	ChurnRate float64
	// Instances are catalog sizes (spread over the agents) with which
	// idle bytes are counted again.
	Instances []int
	// Fetch is how many more instances one agent gets before a new agent
	// joins and is timed until it holds the whole catalog; 0 leaves it
	// out.
	Fetch int
	// Preload puts the Instances and the Fetch catalog into every agent's
	// catalog directly, in the state anti-entropy would leave them in
	// (agent.Preload), instead of registering them through the API and
	// gossiping them: at N = 1,000 gossiping 10,000 instances is ten
	// million deliveries for this machine's cores. What is measured
	// afterwards (idle bytes, a new agent's fetch) runs the protocol as
	// always.
	Preload bool
	// Settle is how long a cluster is left alone after forming and after
	// a catalog was loaded, before anything is counted.
	Settle time.Duration
	// ProbeInterval, if set, replaces memberlist's LAN probe interval (1 s)
	// and scales its probe timeout with it: a thousand memberlists in one
	// process on two cores cannot keep up with a probe each per second.
	ProbeInterval time.Duration
	// Timeout bounds every wait.
	Timeout time.Duration
	Log     *slog.Logger
}

// Result is one measured figure.
type Result struct {
	N      int
	Figure string // "form", "change p50", "bytes idle", …
	Value  float64
	Unit   string
	Note   string
}

// cluster is N agents on one memnet.
type cluster struct {
	o      *Options
	net    *memnet.Network
	agents []*node
	log    *slog.Logger
	// target is the registration being timed; each agent's watcher
	// records when it serves it.
	target atomic.Pointer[target]
}

type node struct {
	name   string
	a      *agent.Agent
	tr     *memnet.Transport
	cancel context.CancelFunc
	done   chan error
}

type target struct {
	origin, id string
	arrived    []atomic.Int64 // unix nanoseconds, by agent
	left       atomic.Int64   // agents that have not served it yet
}

// Run measures every size in turn.
func Run(ctx context.Context, o Options) ([]Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	var out []Result
	for _, n := range o.Sizes {
		rs, err := runSize(ctx, &o, n)
		out = append(out, rs...)
		if err != nil {
			return out, fmt.Errorf("N=%d: %w", n, err)
		}
	}
	return out, nil
}

func runSize(ctx context.Context, o *Options, n int) (rs []Result, err error) {
	log := o.Log.With("n", n)
	c := &cluster{o: o, net: &memnet.Network{Latency: o.Latency, Jitter: o.Jitter, Loss: o.Loss}, log: log}
	defer c.close()
	add := func(figure string, v float64, unit, note string) {
		rs = append(rs, Result{N: n, Figure: figure, Value: v, Unit: unit, Note: note})
		log.Info(figure, "value", math.Round(v*10)/10, "unit", unit, "note", note)
	}

	start := time.Now()
	if err := c.start(ctx, n); err != nil {
		return rs, err
	}
	if err := c.form(ctx); err != nil {
		return rs, err
	}
	add("form", time.Since(start).Seconds(), "s", fmt.Sprintf("%d agents started and joined, every one sees all alive", n))
	// One instance per agent, as a cluster of hosts each running a
	// service has, registered at 50 a second: each agent's first write
	// floods its links once before its tree forms, and a thousand floods
	// at once, all on one machine's two cores, are a thousand hosts' work.
	pace := time.NewTicker(20 * time.Millisecond)
	for i, nd := range c.agents {
		select {
		case <-ctx.Done():
			pace.Stop()
			return rs, ctx.Err()
		case <-pace.C:
		}
		if i%100 == 99 {
			log.Info("registering one instance per agent", "done", i+1, "of", n)
		}
		if err := nd.a.RegisterService(catalog.Service{ID: "host", Name: "host", Port: 1 + i%60000}, nil); err != nil {
			pace.Stop()
			return rs, err
		}
	}
	pace.Stop()
	if err := c.wait(ctx, "every agent serves every host instance", func(nd *node) bool { return count(nd.a, "host") == n }); err != nil {
		return rs, err
	}
	c.settle(ctx)

	if o.Changes > 0 {
		lat, err := c.changes(ctx, o.Changes)
		if err != nil {
			return rs, err
		}
		note := fmt.Sprintf("%d registrations on random agents, until every agent serves each", len(lat))
		add("change p50", ms(pct(lat, 0.5)), "ms", note)
		add("change p99", ms(pct(lat, 0.99)), "ms", note)
	}
	if o.Window > 0 {
		idle, what := c.traffic(ctx, nil)
		add("bytes idle", idle, "B/node/s", fmt.Sprintf("%d instances, %s window; %s", n, o.Window, what))
		if o.ChurnRate > 0 {
			var made atomic.Int64
			churn := func(cctx context.Context) {
				every := time.Duration(float64(time.Second) / o.ChurnRate)
				t := time.NewTicker(every)
				defer t.Stop()
				for k := 0; ; k++ {
					select {
					case <-cctx.Done():
						return
					case <-t.C:
					}
					nd := c.agents[rand.IntN(len(c.agents))]
					id := fmt.Sprintf("churn-%d", k%64)
					var err error
					if k%2 == 0 {
						err = nd.a.RegisterService(catalog.Service{ID: id, Name: "churn", Port: 1000 + k%1000, Tags: []string{"v1"}}, nil)
					} else {
						err = nd.a.RegisterService(catalog.Service{ID: id, Name: "churn", Port: 2000 + k%1000, Tags: []string{"v2"}}, nil)
					}
					if err == nil {
						made.Add(1)
					}
				}
			}
			busy := c.bytesPerNodeSec(ctx, churn)
			rate := float64(made.Load()) / o.Window.Seconds()
			add("bytes churn", busy, "B/node/s", fmt.Sprintf("%.1f registrations/s cluster-wide", rate))
			if rate > 0 {
				add("bytes per change", (busy-idle)/rate, "B/node/change", "above idle, per agent, per registration")
			}
		}
	}
	for _, k := range o.Instances {
		if err := c.load(ctx, k); err != nil {
			return rs, err
		}
		c.settle(ctx)
		total := count(c.agents[0].a, "load")
		if o.Window > 0 {
			idle, what := c.traffic(ctx, nil)
			add(fmt.Sprintf("bytes idle, %d instances", total), idle, "B/node/s", fmt.Sprintf("%s window; %s", o.Window, what))
		}
		// After the window: a forced GC of a heap this size takes the
		// two cores for seconds, and memberlist's probes with them.
		add(fmt.Sprintf("heap, %d instances", total), heapPerAgent(len(c.agents)), "MB/node", "the process's live heap after a GC, divided by N")
	}
	if o.Fetch > 0 {
		took, held, err := c.fetch(ctx, o.Fetch)
		if err != nil {
			return rs, err
		}
		add("fetch", ms(took), "ms", fmt.Sprintf("a new agent joins and holds all %d instances", held))
	}
	return rs, nil
}

func (c *cluster) start(ctx context.Context, n int) error {
	for i := range n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		nd, err := c.startAgent(fmt.Sprintf("node-%04d", i))
		if err != nil {
			return err
		}
		c.agents = append(c.agents, nd)
	}
	return nil
}

func (c *cluster) startAgent(name string) (*node, error) {
	tr := c.net.NewTransport()
	cfg := agent.DefaultConfig()
	cfg.NodeName = name
	cfg.BindAddr = "127.0.0.1"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DNSAddr = ""
	cfg.Memberlist = func(mc *memberlist.Config) {
		mc.Transport = tr
		if p := c.o.ProbeInterval; p > 0 {
			mc.ProbeTimeout = mc.ProbeTimeout * p / mc.ProbeInterval
			mc.ProbeInterval = p
		}
	}
	a, err := agent.New(cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nd := &node{name: name, a: a, tr: tr, cancel: cancel, done: make(chan error, 1)}
	go func() { nd.done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-nd.done:
		cancel()
		return nil, fmt.Errorf("agent %s: %w", name, err)
	}
	go c.watch(ctx, len(c.agents), nd)
	return nd, nil
}

// form joins the agents one by one through the first, in batches: after
// each batch it waits until every agent sees all that joined alive. (A
// thousand joins at once bury one process's memberlists in alive
// messages: probes time out, suspicions and refutations follow, and the
// cluster never settles. Joins through random earlier agents, a few at a
// time, leave now and then a member that some agent never hears of until
// memberlist's next push/pull, minutes away at this size.)
func (c *cluster) form(ctx context.Context) error {
	const batch = 25
	seed := c.agents[0].tr.Addr()
	for i := 1; i < len(c.agents); i++ {
		var err error
		for try := 0; try < 5; try++ {
			if _, err = c.agents[i].a.Join(ctx, []string{seed}); err == nil {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("%s joins: %w", c.agents[i].name, err)
		}
		if i%batch == batch-1 || i == len(c.agents)-1 {
			joined := c.agents[:i+1]
			if err := c.waitOn(ctx, joined, fmt.Sprintf("%d agents see each other alive", len(joined)), func(nd *node) bool { return alive(nd.a) == len(joined) }); err != nil {
				return err
			}
			c.log.Info("joined", "agents", len(joined))
		}
	}
	return nil
}

// wait polls ok on every agent until all pass, logging progress.
func (c *cluster) wait(ctx context.Context, what string, ok func(*node) bool) error {
	return c.waitOn(ctx, c.agents, what, ok)
}

func (c *cluster) waitOn(ctx context.Context, agents []*node, what string, ok func(*node) bool) error {
	deadline := time.Now().Add(c.o.Timeout)
	// Every check reads every agent's catalog: not too often.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Now()
	for {
		left := 0
		for _, nd := range agents {
			if !ok(nd) {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Since(last) > 5*time.Second {
			c.log.Info("waiting", "for", what, "agents left", left)
			last = time.Now()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d agents not there after %s", what, left, c.o.Timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (c *cluster) settle(ctx context.Context) {
	if c.o.Settle <= 0 {
		return
	}
	t := time.NewTimer(c.o.Settle)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// watch records, at every change of agent i's catalog, whether it serves
// the target registration.
func (c *cluster) watch(ctx context.Context, i int, nd *node) {
	for {
		ch := nd.a.Changed()
		if t := c.target.Load(); t != nil && t.arrived[i].Load() == 0 {
			found := false
			nd.a.Read(func(cat *catalog.Catalog) {
				cat.EachInstance("timed", func(n catalog.Node, s *catalog.Service, _ catalog.Health) {
					found = found || n.Name == t.origin && s.ID == t.id
				})
			})
			if found && t.arrived[i].CompareAndSwap(0, time.Now().UnixNano()) {
				t.left.Add(-1)
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// changes times k registrations, each until every agent serves it.
func (c *cluster) changes(ctx context.Context, k int) ([]time.Duration, error) {
	var lat []time.Duration
	for i := range k {
		nd := c.agents[rand.IntN(len(c.agents))]
		t := &target{origin: nd.name, id: fmt.Sprintf("t-%d", i), arrived: make([]atomic.Int64, len(c.agents))}
		t.left.Store(int64(len(c.agents)))
		c.target.Store(t)
		start := time.Now()
		if err := nd.a.RegisterService(catalog.Service{ID: t.id, Name: "timed", Port: 80, Tags: []string{"a", "b"}, Meta: map[string]string{"k": "v"}}, nil); err != nil {
			return lat, err
		}
		// Agents whose catalog does not change again would never look:
		// each watcher looks at every change, and the registration is one.
		if err := poll(ctx, c.o.Timeout, time.Millisecond, func() bool { return t.left.Load() == 0 }); err != nil {
			return lat, fmt.Errorf("registration %s on %s reached %d of %d agents: %w", t.id, t.origin, len(c.agents)-int(t.left.Load()), len(c.agents), err)
		}
		var last int64
		for j := range t.arrived {
			last = max(last, t.arrived[j].Load())
		}
		lat = append(lat, time.Unix(0, last).Sub(start))
		c.target.Store(nil)
		if (i+1)%10 == 0 {
			c.log.Info("changes", "done", i+1, "of", k)
		}
	}
	return lat, nil
}

// bytesPerNodeSec counts what the agents send during the window, with
// load running, per agent per second.
func (c *cluster) bytesPerNodeSec(ctx context.Context, load func(context.Context)) float64 {
	b, _ := c.traffic(ctx, load)
	return b
}

// traffic is bytesPerNodeSec, and a note saying what part of it was
// Shoal's own messages (the rest is memberlist's probes, membership gossip
// and push/pulls), how many exchanges the agents started and how many
// catalog entries anti-entropy sent.
func (c *cluster) traffic(ctx context.Context, load func(context.Context)) (float64, string) {
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if load != nil {
		wg.Add(1)
		go func() { defer wg.Done(); load(lctx) }()
	}
	g0, _ := c.gossipStats()
	k0, s0, d0 := c.net.PacketBytes(), c.net.StreamBytes(), c.net.Streams()
	b0, t0 := c.net.Bytes(), time.Now()
	t := time.NewTimer(c.o.Window)
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	b1, took := c.net.Bytes(), time.Since(t0)
	k1, s1, d1 := c.net.PacketBytes(), c.net.StreamBytes(), c.net.Streams()
	g1, health := c.gossipStats()
	stop()
	wg.Wait()
	per := func(v uint64) float64 { return float64(v) / float64(len(c.agents)) / took.Seconds() }
	var kinds strings.Builder
	for i := range k1 {
		if v := per(k1[i] - k0[i]); v >= 0.5 {
			fmt.Fprintf(&kinds, "%s %.0f, ", packetKind(i), v)
		}
	}
	note := fmt.Sprintf("of which Shoal's messages %.0f B/node/s; packets by memberlist type %sstreams %.0f (%d opened, %.1f KB each); %.2f exchanges and %.1f entries sent by anti-entropy per node per s; %d agents with a memberlist health score above 0 at the end",
		per(g1["bytes_sent"]-g0["bytes_sent"]), kinds.String(), per(s1-s0), d1-d0, float64(s1-s0)/1e3/float64(max(1, d1-d0)), per(g1["exchanges"]-g0["exchanges"]), per(g1["entries_sent"]-g0["entries_sent"]), health)
	return per(b1 - b0), note
}

// packetKind names memberlist's message types (its net.go), by the first
// byte of a packet.
func packetKind(i int) string {
	names := []string{"ping", "indirect-ping", "ack", "suspect", "alive", "dead", "push-pull", "compound", "user", "compressed", "encrypted", "nack", "crc", "err"}
	if i < len(names) {
		return names[i]
	}
	return "other"
}

// gossipStats sums the gossip layer's counters over the agents, and
// counts the agents whose memberlist health score is above 0. (The score
// rises when probes go unanswered in time: with a busy process,
// suspicions and their refutations are what memberlist's share of the
// bytes grows with.)
func (c *cluster) gossipStats() (sum map[string]uint64, unhealthy int) {
	sum = map[string]uint64{}
	for _, nd := range c.agents {
		st := nd.a.Stats()
		for k, v := range st["gossip"] {
			n, _ := strconv.ParseUint(v, 10, 64)
			sum[k] += n
		}
		if h, err := strconv.Atoi(st["serf_lan"]["health_score"]); err == nil && h > 0 {
			unhealthy++
		}
	}
	return sum, unhealthy
}

// load registers k instances spread over the agents (on top of what is
// there) and waits until every agent serves them.
func (c *cluster) load(ctx context.Context, k int) error {
	before := count(c.agents[0].a, "load")
	if c.o.Preload {
		by := make([][]catalog.Service, len(c.agents))
		for i := range k {
			by[i%len(c.agents)] = append(by[i%len(c.agents)], loadService(before+i))
		}
		if err := c.preload(ctx, by); err != nil {
			return err
		}
	}
	// At most a thousand a second cluster-wide: a thousand hosts
	// registering at once each spend their own CPU on it, these
	// agents share two cores.
	pace := time.NewTicker(time.Millisecond)
	defer pace.Stop()
	for i := range k {
		if c.o.Preload {
			break
		}
		<-pace.C
		nd := c.agents[i%len(c.agents)]
		if err := nd.a.RegisterService(loadService(before+i), nil); err != nil {
			return err
		}
		if i%10000 == 9999 {
			c.log.Info("loading", "registered", i+1, "of", k)
		}
	}
	want := before + k
	runtime.GC()
	return c.wait(ctx, fmt.Sprintf("every agent serves %d instances", want), func(nd *node) bool { return count(nd.a, "load") == want })
}

func loadService(i int) catalog.Service {
	return catalog.Service{ID: fmt.Sprintf("load-%06d", i), Name: "load", Port: 1 + i%60000, Address: "10.1.2.3",
		Tags: []string{"v1", "zone-a", "team-x"}, Meta: map[string]string{"version": "1.2.3"}}
}

// fetch gives one agent k more instances, then starts a new agent, joins
// it and times until it holds every instance of the catalog; it returns
// that time and how many it holds.
func (c *cluster) fetch(ctx context.Context, k int) (time.Duration, int, error) {
	src := c.agents[0]
	base := count(src.a, "fetch")
	services := make([]catalog.Service, k)
	for i := range k {
		services[i] = catalog.Service{ID: fmt.Sprintf("fetch-%06d", base+i), Name: "fetch", Port: 1 + i%60000,
			Tags: []string{"v1"}, Meta: map[string]string{"k": "v"}}
	}
	if c.o.Preload {
		by := make([][]catalog.Service, len(c.agents))
		by[0] = services
		if err := c.preload(ctx, by); err != nil {
			return 0, 0, err
		}
	} else {
		for _, s := range services {
			if err := src.a.RegisterService(s, nil); err != nil {
				return 0, 0, err
			}
		}
	}
	want := base + k
	if err := c.wait(ctx, "every agent serves the fetch catalog", func(nd *node) bool { return count(nd.a, "fetch") == want }); err != nil {
		return 0, 0, err
	}
	all := instances(src.a)
	nd, err := c.startAgent(fmt.Sprintf("new-%04d", len(c.agents)))
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if _, err := nd.a.Join(ctx, []string{c.agents[rand.IntN(len(c.agents))].tr.Addr()}); err != nil {
		return 0, 0, err
	}
	c.agents = append(c.agents, nd)
	// The new agent's own instance: none yet, so all is what it must hold.
	if err := poll(ctx, c.o.Timeout, 10*time.Millisecond, func() bool { return instances(nd.a) >= all }); err != nil {
		return 0, 0, fmt.Errorf("the new agent holds %d of %d: %w", instances(nd.a), all, err)
	}
	return time.Since(start), all, nil
}

// preload writes services[i] on agent i without gossiping them, then puts
// each origin's new entries into every other agent's catalog as a delta,
// as anti-entropy would (see Options.Preload), and checks that every
// agent's catalog summary then agrees.
func (c *cluster) preload(ctx context.Context, services [][]catalog.Service) error {
	done := 0
	for i, ss := range services {
		if len(ss) == 0 {
			continue
		}
		src := c.agents[i]
		var (
			w   catalog.Want
			err error
		)
		src.a.Preload(func(cat *catalog.Catalog, now time.Time) {
			d, _ := cat.OriginDigest(src.name)
			w = catalog.Want{Origin: src.name, Epoch: d.Epoch, Known: d.Known}
			for _, s := range ss {
				if _, _, err = cat.Put(s, now); err != nil {
					return
				}
			}
		})
		if err != nil {
			return fmt.Errorf("preload on %s: %w", src.name, err)
		}
		var ds []catalog.Delta
		src.a.Read(func(cat *catalog.Catalog) { ds = cat.Deltas(w, 1<<20) })
		// Two workers: the agents' locks are their own.
		var wg sync.WaitGroup
		for part := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := part; j < len(c.agents); j += 2 {
					if j == i {
						continue
					}
					c.agents[j].a.Preload(func(cat *catalog.Catalog, now time.Time) {
						for _, d := range ds {
							cat.ApplyDelta(d, now)
						}
					})
				}
			}()
		}
		wg.Wait()
		done += len(ss)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if n := len(c.agents); n > 0 && (i+1)%max(1, n/10) == 0 {
			c.log.Info("preloading", "instances", done, "origins", i+1, "of", n)
		}
	}
	// At once, before anti-entropy could mend anything: a preload that
	// left a catalog different from what the protocol makes would show
	// here, not as a quiet exchange in the idle window.
	var sum uint64
	c.agents[0].a.Read(func(cat *catalog.Catalog) { sum = cat.Summary() })
	differ := 0
	for _, nd := range c.agents {
		var s uint64
		nd.a.Read(func(cat *catalog.Catalog) { s = cat.Summary() })
		if s != sum {
			differ++
		}
	}
	if differ > 0 {
		return fmt.Errorf("preload: %d of %d agents' catalog summaries differ from the first's", differ, len(c.agents))
	}
	return nil
}

// poll calls ok every interval until it holds, the timeout passes or ctx
// ends.
func poll(ctx context.Context, timeout, every time.Duration, ok func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !ok() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("not done after %s", timeout)
		case <-tick.C:
		}
	}
	return nil
}

func (c *cluster) close() {
	// The measurements are over: the agents need not leave gracefully (a
	// thousand leaves, each told to every member, take minutes).
	c.net.Down()
	var wg sync.WaitGroup
	for _, nd := range c.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nd.cancel()
			<-nd.done
		}()
	}
	wg.Wait()
}

func count(a *agent.Agent, service string) int {
	n := 0
	a.Read(func(c *catalog.Catalog) {
		c.EachInstance(service, func(catalog.Node, *catalog.Service, catalog.Health) { n++ })
	})
	return n
}

// instances counts every instance the agent serves, of every service.
func instances(a *agent.Agent) int {
	n := 0
	a.Read(func(c *catalog.Catalog) {
		for name := range c.Services() {
			c.EachInstance(name, func(catalog.Node, *catalog.Service, catalog.Health) { n++ })
		}
	})
	return n
}

// heapPerAgent is the process's live heap after a GC, in MB, divided by n.
func heapPerAgent(n int) float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / 1e6 / float64(n)
}

func alive(a *agent.Agent) int {
	n := 0
	a.Read(func(c *catalog.Catalog) {
		counts := c.CountNodes()
		n = counts[catalog.StatusAlive] + counts[catalog.StatusSuspect]
	})
	return n
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
