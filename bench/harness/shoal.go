package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// Services the harness registers. Every agent registers one instance of
// nodeService at start, so that "its instances are gone" can be observed
// for every agent; changes are instances of convService, the burst's are
// instances of burstService.
const (
	nodeService  = "bench-node"
	convService  = "bench-conv"
	burstService = "bench-burst"
)

func burstKey(total int) string { return fmt.Sprintf("burst/%d", total) }

// shoalCluster is N Shoal agents, in this process or as processes.
type shoalCluster struct {
	mode  string
	o     *Options
	ports portPlan
	size  int // agents started or being started
	nodes []*shoalNode
	recs  []*recorder
	burst atomic.Int64 // instances the current burst adds up to; 0: none
	// accepted is closed once every registration of the burst has been
	// accepted; the HTTP watchers of the burst start then.
	accepted chan struct{}

	stop context.CancelFunc // ends the watchers
	wg   sync.WaitGroup
}

// shoalNode is one agent of a shoalCluster.
type shoalNode struct {
	name   string
	client *api.Client

	// In this process:
	transport *http.Transport
	agent     *agent.Agent
	plug      *unpluggable
	cancel    context.CancelFunc
	done      chan error

	// As a process:
	proc *shoalProc

	stopped bool
}

func nodeName(i int) string { return fmt.Sprintf("host-%d", i) }

// startShoal starts n agents in the given mode, joins them to the first,
// registers one instance of nodeService on each and returns once every
// agent serves all n of them.
func startShoal(ctx context.Context, o *Options, mode, bin string, n int, ports portPlan) (_ *shoalCluster, err error) {
	c := &shoalCluster{mode: mode, o: o, ports: ports, size: n, accepted: make(chan struct{})}
	wctx, stop := context.WithCancel(context.Background())
	c.stop = stop
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	log := o.logger().With("system", "shoal", "mode", mode, "n", n)
	first := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports.Gossip))
	for i := 0; i < n; i++ {
		var join []string
		if i > 0 {
			join = []string{first}
		}
		var nd *shoalNode
		var err error
		switch mode {
		case ModeInProcess:
			nd, err = c.startInProcess(ctx, i, join)
		case ModeProcesses:
			nd, err = c.startProcess(ctx, bin, i, join)
		default:
			return nil, fmt.Errorf("unknown mode %q", mode)
		}
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
		rec := newRecorder()
		c.recs = append(c.recs, rec)
		c.watch(wctx, nd, rec)
		if (i+1)%16 == 0 || i+1 == n {
			log.Info("agents started", "started", i+1)
		}
	}
	for i, nd := range c.nodes {
		reg := &api.AgentServiceRegistration{ID: "n-" + nd.name, Name: nodeService, Port: 1000 + i, Address: "127.0.0.1"}
		if err := nd.client.Register(ctx, reg); err != nil {
			return nil, fmt.Errorf("register on %s: %w", nd.name, err)
		}
	}
	wait, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	for _, nd := range c.nodes {
		if _, err := waitAll(wait, c.recs, hereKey(nd.name)); err != nil {
			return nil, fmt.Errorf("cluster of %d forming: %w", n, err)
		}
	}
	log.Info("cluster formed")
	return c, nil
}

func (c *shoalCluster) startInProcess(ctx context.Context, i int, join []string) (*shoalNode, error) {
	name := nodeName(i)
	port := c.ports.Gossip + i
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"}, BindPort: port,
		Logger: slog.NewLogLogger(discard().Handler(), slog.LevelError),
	})
	if err != nil {
		return nil, fmt.Errorf("gossip transport of %s on port %d: %w", name, port, err)
	}
	plug := newUnpluggable(nt)
	cfg := agent.DefaultConfig()
	cfg.NodeName = name
	cfg.BindAddr = "127.0.0.1"
	cfg.Port = port
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DNSAddr = ""
	cfg.LeaveTimeout = 2 * time.Second
	cfg.Join = join
	cfg.Memberlist = func(mc *memberlist.Config) { mc.Transport = plug }
	a, err := agent.New(cfg, discard())
	if err != nil {
		plug.Shutdown()
		return nil, fmt.Errorf("agent %s: %w", name, err)
	}
	actx, cancel := context.WithCancel(context.Background())
	nd := &shoalNode{name: name, agent: a, plug: plug, cancel: cancel, done: make(chan error, 1)}
	go func() { nd.done <- a.Run(actx) }()
	select {
	case <-a.Ready():
	case err := <-nd.done:
		cancel()
		plug.Shutdown()
		if err == nil {
			err = errors.New("no error given")
		}
		return nil, fmt.Errorf("agent %s stopped at start: %w", name, err)
	case <-ctx.Done():
		nd.stop()
		plug.Shutdown()
		return nil, ctx.Err()
	}
	nd.client, nd.transport = agentClient(a.HTTPAddr())
	return nd, nil
}

func (c *shoalCluster) startProcess(ctx context.Context, bin string, i int, join []string) (*shoalNode, error) {
	name := nodeName(i)
	p, err := startShoalProc(ctx, c.o, bin, name, c.ports.Gossip+i, c.ports.API+i, join)
	if err != nil {
		return nil, err
	}
	return &shoalNode{name: name, client: p.Client, proc: p}, nil
}

// stop ends an in-process agent gracefully (it leaves the cluster).
func (nd *shoalNode) stop() error {
	if nd.transport != nil {
		defer nd.transport.CloseIdleConnections()
	}
	nd.cancel()
	select {
	case err := <-nd.done:
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("agent %s did not stop within 30s", nd.name)
	}
}

// watch keeps rec up to date with what nd serves, until ctx ends.
func (c *shoalCluster) watch(ctx context.Context, nd *shoalNode, rec *recorder) {
	if nd.agent != nil {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.watchInProcess(ctx, nd.agent, rec)
		}()
		return
	}
	for _, svc := range []string{nodeService, convService, burstService} {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.watchHTTP(ctx, nd, svc, rec)
		}()
	}
}

// watchInProcess reads the agent's catalog on every change notification,
// looking again at a service only when its index moved, so that watching
// stays cheap beside the agents while a burst grows a service.
func (c *shoalCluster) watchInProcess(ctx context.Context, a *agent.Agent, rec *recorder) {
	here := map[string]bool{}
	var nodeIdx, convIdx, burstIdx uint64
	for {
		ch := a.Changed()
		var nodes map[string]bool
		var conv []string
		burst := -1
		a.Read(func(cat *catalog.Catalog) {
			if i := cat.ServiceIndex(nodeService); i != nodeIdx {
				nodeIdx = i
				nodes = map[string]bool{}
				cat.EachInstance(nodeService, func(n catalog.Node, _ *catalog.Service, _ catalog.Health) { nodes[n.Name] = true })
			}
			if i := cat.ServiceIndex(convService); i != convIdx {
				convIdx = i
				cat.EachInstance(convService, func(_ catalog.Node, s *catalog.Service, _ catalog.Health) { conv = append(conv, s.ID) })
			}
			if i := cat.ServiceIndex(burstService); i != burstIdx && c.burst.Load() > 0 {
				burstIdx = i
				burst = 0
				cat.EachInstance(burstService, func(catalog.Node, *catalog.Service, catalog.Health) { burst++ })
			}
		})
		c.record(rec, time.Now(), here, nodes, conv, burst)
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// watchHTTP follows one service on the agent's HTTP API with blocking
// queries. The burst's watcher waits until the burst has been accepted
// (it cannot be visible everywhere before) and then leaves a pause between
// queries, so that N agents re-reading a growing answer do not starve the
// agents themselves; its times are that much coarser, and the result says
// so.
func (c *shoalCluster) watchHTTP(ctx context.Context, nd *shoalNode, svc string, rec *recorder) {
	if svc == burstService {
		select {
		case <-c.accepted:
		case <-ctx.Done():
			return
		}
	}
	here := map[string]bool{}
	var index uint64
	for ctx.Err() == nil {
		entries, meta, err := nd.client.CatalogService(ctx, svc, &api.QueryOptions{WaitIndex: index, WaitTime: 10 * time.Second})
		now := time.Now()
		if err != nil {
			// The agent is gone (crashed or left) or busy: try again
			// shortly, unless the harness is done with it.
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if meta.LastIndex < index {
			index = 0
		} else {
			index = meta.LastIndex
		}
		switch svc {
		case nodeService:
			nodes := map[string]bool{}
			for _, e := range entries {
				nodes[e.Node] = true
			}
			c.record(rec, now, here, nodes, nil, -1)
		case convService:
			var conv []string
			for _, e := range entries {
				conv = append(conv, e.ServiceID)
			}
			c.record(rec, now, here, nil, conv, -1)
		case burstService:
			c.record(rec, now, here, nil, nil, len(entries))
			select {
			case <-ctx.Done():
			case <-time.After(c.burstPause()):
			}
		}
	}
}

// burstPause is the pause of the burst's HTTP watchers: 2 ms per agent.
func (c *shoalCluster) burstPause() time.Duration {
	return 2 * time.Millisecond * time.Duration(c.size)
}

// record marks what one look at an agent's catalog found. nodes, when
// not nil, are the nodes serving nodeService; here remembers which of them
// this agent has seen, so that one it no longer sees is gone. conv are the
// IDs of convService's instances; burst, unless negative (not looked at),
// is how many instances of burstService it serves.
func (c *shoalCluster) record(rec *recorder, now time.Time, here, nodes map[string]bool, conv []string, burst int) {
	if nodes != nil {
		for n := range nodes {
			if !here[n] {
				here[n] = true
				rec.forget(goneKey(n))
				rec.mark(hereKey(n), now)
			}
		}
		for n := range here {
			if !nodes[n] {
				delete(here, n)
				rec.mark(goneKey(n), now)
			}
		}
	}
	for _, id := range conv {
		if k, ok := strings.CutPrefix(id, "c-"); ok {
			if n, err := strconv.Atoi(k); err == nil {
				rec.mark(convKey(n), now)
			}
		}
	}
	if total := int(c.burst.Load()); total > 0 && burst >= total {
		rec.mark(burstKey(total), now)
	}
}

func (c *shoalCluster) System() string { return "shoal" }
func (c *shoalCluster) Mode() string   { return c.mode }
func (c *shoalCluster) Size() int      { return c.size }

func (c *shoalCluster) GossipPorts() (int, int) {
	return c.ports.Gossip, c.ports.Gossip + c.size - 1
}

func (c *shoalCluster) Recorder(i int) *recorder { return c.recs[i] }
func (c *shoalCluster) GoneKey(i int) string     { return goneKey(c.nodes[i].name) }

func (c *shoalCluster) Change(ctx context.Context, origin, k int) (string, error) {
	nd := c.nodes[origin]
	reg := &api.AgentServiceRegistration{
		ID: "c-" + strconv.Itoa(k), Name: convService, Port: 20000 + k%10000, Address: "127.0.0.1",
		Tags: []string{"bench", "v1"}, Meta: map[string]string{"k": strconv.Itoa(k)},
	}
	if err := nd.client.Register(ctx, reg); err != nil {
		return "", fmt.Errorf("register on %s: %w", nd.name, err)
	}
	return convKey(k), nil
}

func (c *shoalCluster) Churn(ctx context.Context, i, k int) error {
	nd := c.nodes[i]
	id := "churn-" + nd.name
	if k%2 == 1 {
		if err := nd.client.Deregister(ctx, id); err != nil {
			return fmt.Errorf("deregister on %s: %w", nd.name, err)
		}
		return nil
	}
	reg := &api.AgentServiceRegistration{ID: id, Name: "bench-churn", Port: 3000, Address: "127.0.0.1", Tags: []string{"k" + strconv.Itoa(k)}}
	if err := nd.client.Register(ctx, reg); err != nil {
		return fmt.Errorf("register on %s: %w", nd.name, err)
	}
	return nil
}

func (c *shoalCluster) Burst(ctx context.Context, total int) (string, error) {
	var live []*shoalNode
	for _, nd := range c.nodes {
		if !nd.stopped {
			live = append(live, nd)
		}
	}
	if len(live) == 0 {
		return "", errors.New("no live agent to register with")
	}
	if !c.burst.CompareAndSwap(0, int64(total)) {
		return "", errors.New("one burst per cluster")
	}
	const workers = 16
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				nd := live[j%len(live)]
				reg := &api.AgentServiceRegistration{
					ID: "b-" + strconv.Itoa(j), Name: burstService, Port: 10000 + j, Address: "127.0.0.1",
					Tags: []string{"bench", "burst"}, Meta: map[string]string{"j": strconv.Itoa(j)},
				}
				// A registration is idempotent: one whose connection
				// broke (an agent of 128 on two cores can drop one) is
				// sent again, as a client would.
				var err error
				for try := 0; try < 3; try++ {
					if err = nd.client.Register(ctx, reg); err == nil || errors.As(err, new(*api.StatusError)) {
						break
					}
				}
				if err != nil {
					errs <- fmt.Errorf("burst registration %d on %s: %w", j, nd.name, err)
					return
				}
			}
		}()
	}
	var err error
feed:
	for j := 0; j < total; j++ {
		select {
		case jobs <- j:
		case err = <-errs:
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		return "", err
	}
	close(c.accepted)
	return burstKey(total), nil
}

func (c *shoalCluster) Crash(ctx context.Context, i int) error {
	nd := c.nodes[i]
	nd.stopped = true
	if nd.proc != nil {
		return nd.proc.Kill()
	}
	// Nothing it sends arrives any more, its goodbye included; then it
	// stops.
	nd.plug.unplug()
	return nd.stop()
}

func (c *shoalCluster) Leave(ctx context.Context, i int) error {
	nd := c.nodes[i]
	nd.stopped = true
	if nd.proc != nil {
		return nd.proc.Stop(ctx)
	}
	return nd.stop()
}

// RSS is the resident memory of agent i, when it is a process.
func (c *shoalCluster) RSS(i int) (uint64, error) {
	if p := c.nodes[i].proc; p != nil {
		return p.RSS()
	}
	return 0, errors.New("agents in this process have no RSS of their own")
}

func (c *shoalCluster) Close() error {
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, nd := range c.nodes {
		if nd.stopped {
			continue
		}
		nd.stopped = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if nd.proc != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err = nd.proc.Stop(ctx)
				cancel()
			} else {
				err = nd.stop()
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c.stop()
	c.wg.Wait()
	return errors.Join(errs...)
}

// unpluggable is a memberlist transport that can be cut off at once, as
// if its host lost power: what it sends vanishes, dials fail, and what
// arrives for it is dropped (so neither a UDP probe nor memberlist's TCP
// fallback probe gets an answer while the agent shuts down).
type unpluggable struct {
	memberlist.NodeAwareTransport
	off     atomic.Bool
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

var errUnplugged = errors.New("unplugged")

func newUnpluggable(t memberlist.NodeAwareTransport) *unpluggable {
	u := &unpluggable{
		NodeAwareTransport: t,
		packets:            make(chan *memberlist.Packet),
		streams:            make(chan net.Conn),
		done:               make(chan struct{}),
	}
	go u.forwardPackets()
	go u.forwardStreams()
	return u
}

func (u *unpluggable) unplug() { u.off.Store(true) }

func (u *unpluggable) forwardPackets() {
	in := u.NodeAwareTransport.PacketCh()
	for {
		select {
		case p := <-in:
			if u.off.Load() {
				continue
			}
			select {
			case u.packets <- p:
			case <-u.done:
				return
			}
		case <-u.done:
			return
		}
	}
}

func (u *unpluggable) forwardStreams() {
	in := u.NodeAwareTransport.StreamCh()
	for {
		select {
		case c := <-in:
			if u.off.Load() {
				c.Close()
				continue
			}
			select {
			case u.streams <- c:
			case <-u.done:
				c.Close()
				return
			}
		case <-u.done:
			return
		}
	}
}

func (u *unpluggable) PacketCh() <-chan *memberlist.Packet { return u.packets }
func (u *unpluggable) StreamCh() <-chan net.Conn           { return u.streams }

// Shutdown stops the transport and the goroutines that forward for it.
func (u *unpluggable) Shutdown() error {
	err := u.NodeAwareTransport.Shutdown()
	u.once.Do(func() { close(u.done) })
	return err
}

func (u *unpluggable) WriteTo(b []byte, addr string) (time.Time, error) {
	return u.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (u *unpluggable) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if u.off.Load() {
		return time.Now(), nil
	}
	return u.NodeAwareTransport.WriteToAddress(b, a)
}

func (u *unpluggable) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	return u.DialAddressTimeout(memberlist.Address{Addr: addr}, d)
}

func (u *unpluggable) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	if u.off.Load() {
		return nil, fmt.Errorf("dial %s: %w", a.Addr, errUnplugged)
	}
	return u.NodeAwareTransport.DialAddressTimeout(a, d)
}
