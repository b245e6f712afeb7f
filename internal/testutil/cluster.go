package testutil

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/catalog"
)

// FastMemberlist sets memberlist timers for a loopback test cluster:
// failure detection in about a second instead of several.
func FastMemberlist(mc *memberlist.Config) {
	mc.GossipInterval = 20 * time.Millisecond
	mc.ProbeInterval = 200 * time.Millisecond
	mc.ProbeTimeout = 100 * time.Millisecond
	mc.SuspicionMult = 3
	mc.PushPullInterval = time.Second
	mc.TCPTimeout = time.Second
	mc.GossipToTheDeadTime = 10 * time.Second
	mc.DeadNodeReclaimTime = time.Second
}

// Network decides which loopback gossip traffic gets through. Every agent
// of a Cluster sends through it; a cut link drops packets and refuses
// stream connections, in both directions.
type Network struct {
	mu  sync.RWMutex
	cut map[[2]string]bool // (from, to) gossip addresses
}

func (n *Network) blocked(from, to string) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.cut[[2]string{from, to}]
}

// Cut drops all traffic between the two groups of gossip addresses.
func (n *Network) Cut(a, b []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cut == nil {
		n.cut = make(map[[2]string]bool)
	}
	for _, x := range a {
		for _, y := range b {
			n.cut[[2]string{x, y}] = true
			n.cut[[2]string{y, x}] = true
		}
	}
}

// Heal restores every link.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = nil
}

// filterTransport is a real memberlist NetTransport whose sends pass
// through a Network.
type filterTransport struct {
	memberlist.NodeAwareTransport
	net  *Network
	self string
}

func (f *filterTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return f.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (f *filterTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if f.net.blocked(f.self, a.Addr) {
		return time.Now(), nil // lost on the wire
	}
	return f.NodeAwareTransport.WriteToAddress(b, a)
}

func (f *filterTransport) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	return f.DialAddressTimeout(memberlist.Address{Addr: addr}, d)
}

func (f *filterTransport) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	if f.net.blocked(f.self, a.Addr) {
		return nil, fmt.Errorf("dial %s: %w", a.Addr, errPartitioned)
	}
	return f.NodeAwareTransport.DialAddressTimeout(a, d)
}

var errPartitioned = errors.New("link cut by the test network")

// Cluster is a set of real agents in this process, on loopback sockets.
type Cluster struct {
	t   testing.TB
	Net *Network
	// Configure, if set, adjusts each agent's configuration before start.
	Configure func(*agent.Config)

	mu    sync.Mutex
	nodes map[string]*Node
}

// Node is one agent of a Cluster.
type Node struct {
	Name   string
	Agent  *agent.Agent
	Gossip string // gossip address, ip:port
	Port   int

	cancel context.CancelFunc
	done   chan error
}

// NewCluster starts n agents named node-0 … node-(n-1), joins them and
// waits until every one sees all n alive. Cleanup stops them all.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := NewEmptyCluster(t)
	for i := 0; i < n; i++ {
		c.Start(fmt.Sprintf("node-%d", i), 0)
	}
	c.JoinAll()
	return c
}

// NewEmptyCluster returns a cluster with no agents yet.
func NewEmptyCluster(t testing.TB) *Cluster {
	c := &Cluster{t: t, Net: &Network{}, nodes: make(map[string]*Node)}
	t.Cleanup(c.StopAll)
	return c
}

// JoinAll joins every running agent to the first and waits until each
// sees every other alive.
func (c *Cluster) JoinAll() {
	c.t.Helper()
	nodes := c.Nodes()
	if len(nodes) < 2 {
		return
	}
	for _, n := range nodes[1:] {
		if _, err := n.Agent.Join(context.Background(), []string{nodes[0].Gossip}); err != nil {
			c.t.Fatalf("%s joins %s: %v", n.Name, nodes[0].Name, err)
		}
	}
	// A burst of joins can overflow memberlist's handoff queue on a busy
	// machine; a node missed by gossip is found by the next push/pull.
	c.WaitMembers(30*time.Second+2*time.Second*time.Duration(len(nodes)), len(nodes))
}

// WaitMembers waits until every running agent sees want nodes alive.
func (c *Cluster) WaitMembers(maxWait time.Duration, want int) {
	c.t.Helper()
	WaitFor(c.t, maxWait, func() error {
		for _, n := range c.Nodes() {
			if got := n.Alive(); got != want {
				return fmt.Errorf("%s sees %d alive nodes, want %d", n.Name, got, want)
			}
		}
		return nil
	})
}

// Start starts an agent (port 0: any free port) and waits until it is
// ready.
func (c *Cluster) Start(name string, port int) *Node {
	c.t.Helper()
	logger := Logger(c.t).With("test-node", name)
	var nt *memberlist.NetTransport
	// Port 0 picks a TCP port whose UDP twin may be taken; a given port may
	// still be closing after its previous owner stopped. Try again.
	err := Poll(10*time.Second, func() error {
		var err error
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{"127.0.0.1"}, BindPort: port,
			Logger: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		})
		return err
	})
	if err != nil {
		c.t.Fatalf("transport for %s: %v", name, err)
	}
	port = nt.GetAutoBindPort()
	self := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	tr := &filterTransport{NodeAwareTransport: nt, net: c.Net, self: self}

	cfg := agent.DevConfig()
	cfg.NodeName = name
	cfg.Port = port
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DNSAddr = "127.0.0.1:0"
	cfg.LeaveTimeout = 2 * time.Second
	cfg.Memberlist = func(mc *memberlist.Config) {
		FastMemberlist(mc)
		mc.Transport = tr
	}
	if c.Configure != nil {
		c.Configure(&cfg)
	}
	a, err := agent.New(cfg, logger)
	if err != nil {
		c.t.Fatalf("agent %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{Name: name, Agent: a, Gossip: self, Port: port, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-n.done:
		cancel()
		c.t.Fatalf("agent %s stopped at start: %v", name, err)
	case <-time.After(30 * time.Second):
		cancel()
		c.t.Fatalf("agent %s not ready after 30s", name)
	}
	c.mu.Lock()
	c.nodes[name] = n
	c.mu.Unlock()
	return n
}

// Nodes lists the running agents in start order of their names.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, n)
	}
	sortNodes(out)
	return out
}

// Node returns the running agent of that name.
func (c *Cluster) Node(name string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[name]
}

// Stop stops the named agent gracefully: it leaves, then shuts down.
func (c *Cluster) Stop(name string) {
	c.t.Helper()
	n := c.remove(name)
	n.stop(c.t)
}

// Crash stops the named agent as a crash would: every link to it is cut
// first, so its leave never arrives and the others must detect the failure.
// The links stay cut until Heal.
func (c *Cluster) Crash(name string) {
	c.t.Helper()
	n := c.remove(name)
	var others []string
	for _, o := range c.Nodes() {
		others = append(others, o.Gossip)
	}
	c.Net.Cut([]string{n.Gossip}, others)
	n.stop(c.t)
}

func (c *Cluster) remove(name string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[name]
	if n == nil {
		c.t.Fatalf("no running node %s", name)
	}
	delete(c.nodes, name)
	return n
}

func (n *Node) stop(t testing.TB) {
	n.cancel()
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("agent %s: %v", n.Name, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("agent %s did not stop within 30s", n.Name)
	}
}

// StopAll stops every running agent (gracefully, in parallel).
func (c *Cluster) StopAll() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes() {
		c.remove(n.Name)
		wg.Add(1)
		go func() { defer wg.Done(); n.stop(c.t) }()
	}
	wg.Wait()
}

// Alive counts the nodes memberlist holds alive or suspect, as this
// agent's catalog records them (self-preservation may serve others).
func (n *Node) Alive() int {
	count := 0
	n.Agent.Read(func(c *catalog.Catalog) {
		for _, nd := range c.Nodes() {
			if nd.Status == catalog.StatusAlive || nd.Status == catalog.StatusSuspect {
				count++
			}
		}
	})
	return count
}

// Instances lists the served instances of a service on this agent.
func (n *Node) Instances(service string) []catalog.Instance {
	var out []catalog.Instance
	n.Agent.Read(func(c *catalog.Catalog) { out = c.Instances(service) })
	return out
}

func sortNodes(ns []*Node) {
	for i := 1; i < len(ns); i++ {
		for j := i; j > 0 && ns[j].Name < ns[j-1].Name; j-- {
			ns[j], ns[j-1] = ns[j-1], ns[j]
		}
	}
}

// Restore reconnects one gossip address to everyone (after Crash).
func (n *Network) Restore(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k := range n.cut {
		if k[0] == addr || k[1] == addr {
			delete(n.cut, k)
		}
	}
}

// Addrs lists the gossip addresses of the named running agents.
func (c *Cluster) Addrs(names ...string) []string {
	var out []string
	for _, name := range names {
		out = append(out, c.Node(name).Gossip)
	}
	return out
}
