// Package agent wires a Shoal agent together: configuration, the catalog,
// the gossip layer and the local HTTP API, with an ordered lifecycle.
// New starts nothing; Run owns every goroutine and returns after an
// orderly shutdown.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/gossip"
	"github.com/shoal-sd/shoal/health"
	"github.com/shoal-sd/shoal/localapi"
)

// Version is Shoal's version.
const Version = "0.1.0"

// Agent is one Shoal agent. It implements localapi.Backend.
type Agent struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	bindIP    string
	advertise string

	mu      sync.RWMutex // guards cat and changed
	cat     *catalog.Catalog
	changed chan struct{}

	// Set by Run before ready is closed; read-only afterwards.
	g        *gossip.Gossip
	httpAddr string
	dnsAddr  string
	ready    chan struct{}

	persistMu  sync.Mutex // serialises the data-dir writes made outside regMu (peers, keyring)
	savedPeers []string   // as last written, under persistMu
	// Failed data-dir writes (persist_tx.go): counted, and logged at most
	// once a minute.
	diskErrors   atomic.Uint64
	diskLogMu    sync.Mutex
	diskLoggedAt time.Time
	diskUnlogged int

	stopOnce sync.Once
	stop     chan struct{} // closed when the agent has left and must shut down
	leaveMu  sync.Mutex
	left     bool

	logs *logHub // the monitors of the log (Monitor)

	acl       atomic.Pointer[acl.Resolver] // the tokens in force; swapped by Reload
	tls       atomic.Pointer[tlsMaterial]  // the HTTPS certificates; swapped by Reload
	httpsAddr string                       // set by Run
	encrypted bool                         // gossip is encrypted; set by Run
	// preserving: in self-preservation (preserve.go).
	preserving atomic.Bool

	// regMu serialises changes of local services and checks (the API, the
	// config file, the check manager's deregistrations) and guards checks
	// and configServices. The health manager is called under it, never
	// under mu: its callbacks take mu.
	regMu          sync.Mutex
	checks         map[string]*localCheck
	configServices map[string]bool // IDs of the services the config file defines
	health         *health.Manager // set by Run
	metrics        *metrics        // set by Run
	bg             sync.WaitGroup  // deregistrations of critical services
}

var _ localapi.Backend = (*Agent)(nil)

// New validates cfg and builds an agent. It binds nothing and starts
// nothing.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.NodeMeta = maps.Clone(cfg.NodeMeta) // read by the agent's goroutines
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Every log line passes the tee, so that monitors see it at their
	// own level.
	tee := newLogTee(log.Handler())
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	bindIP, err := resolveIP("bind", cfg.BindAddr)
	if err != nil {
		return nil, err
	}
	var adv string
	if cfg.AdvertiseAddr != "" {
		if adv, err = resolveIP("advertise", cfg.AdvertiseAddr); err != nil {
			return nil, err
		}
	}
	res := acl.Disabled()
	if cfg.ACL != nil {
		if res, err = acl.NewResolver(*cfg.ACL); err != nil {
			return nil, err
		}
	}
	cat := catalog.New(cfg.NodeName, uint64(now().UnixNano()))
	cat.SetMaxEpochSkew(cfg.EpochMaxSkew)
	cat.SetPreserve(cfg.SelfPreservation, now())
	a := &Agent{
		cfg:       cfg,
		log:       slog.New(tee).With("node", cfg.NodeName),
		logs:      tee.hub,
		now:       now,
		bindIP:    bindIP,
		advertise: adv,
		// Every start is a new epoch: a restarted agent's entries beat
		// what the cluster remembers of its previous run (the catalog
		// also moves past any later epoch it finds, should the clock
		// have gone back).
		cat:     cat,
		changed: make(chan struct{}),
		checks:  make(map[string]*localCheck),

		configServices: make(map[string]bool),
		ready:          make(chan struct{}),
		stop:           make(chan struct{}),
	}
	a.acl.Store(res)
	if cfg.HTTPSAddr != "" {
		m, err := loadTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		a.tls.Store(m)
	}
	return a, nil
}

// HTTPSAddr is the address the HTTPS API listens on, "" if none (valid
// after Ready).
func (a *Agent) HTTPSAddr() string { return a.httpsAddr }

// Ready is closed once the agent listens and has joined its Join peers.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// HTTPAddr is the address the HTTP API listens on (valid after Ready).
func (a *Agent) HTTPAddr() string { return a.httpAddr }

// GossipAddr is the advertised gossip address, host:port (after Ready).
func (a *Agent) GossipAddr() string {
	ip, port := a.g.Advertised()
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))
}

// Run starts the agent and blocks until ctx ends or the agent is told to
// leave (Leave, or PUT /v1/agent/leave); it then leaves the cluster
// gracefully and shuts down, stopping every goroutine it started.
func (a *Agent) Run(ctx context.Context) error {
	var savedPeers []string
	if a.cfg.DataDir != "" {
		if err := a.restoreServices(); err != nil {
			return err
		}
	}
	// The config file's services before the checks and maintenance modes
	// saved for them over the API.
	if err := a.registerConfigServices(a.cfg.Services); err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if a.cfg.DataDir != "" {
		if err := a.restoreChecks(); err != nil {
			return err
		}
		savedPeers = a.loadPeers()
	}
	keys, err := a.setupKeyring()
	if err != nil {
		return err
	}
	a.encrypted = len(keys) > 0
	g, err := gossip.Create(gossip.Config{
		Memberlist:  a.memberlistConfig(keys),
		SaveKeyring: a.saveKeyring,
		Store:       store{a},
		Datacenter:  a.cfg.Datacenter,
		Version:     Version,
		NodeMeta:    a.cfg.NodeMeta,
		Logger:      a.log,
		PingRTT:     a.cfg.PingRTT,
	})
	if err != nil {
		return err
	}
	a.g = g
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		_ = g.Shutdown()
		return fmt.Errorf("http-addr: listen on %s: %w", a.cfg.HTTPAddr, err)
	}
	a.httpAddr = ln.Addr().String()
	var tlsLn net.Listener
	if a.cfg.HTTPSAddr != "" {
		if tlsLn, err = net.Listen("tcp", a.cfg.HTTPSAddr); err != nil {
			_ = ln.Close()
			_ = g.Shutdown()
			return fmt.Errorf("https-addr: listen on %s: %w", a.cfg.HTTPSAddr, err)
		}
		a.httpsAddr = tlsLn.Addr().String()
	}
	dnsPC, dnsLn, err := a.listenDNS()
	if err != nil {
		_ = ln.Close()
		if tlsLn != nil {
			_ = tlsLn.Close()
		}
		_ = g.Shutdown()
		return err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := newMetrics(a)
	a.metrics = m
	a.startChecks(runCtx)
	handler := localapi.New(localapi.Config{
		Backend: a, Logger: a.log, Metrics: m.handler(), Observe: m.observe, ACL: a.acl.Load,
		AllowedHost: newHostAllowlist(a.cfg.AllowedHosts, a.bindIP, a.advertise).allowed,
		MaxBlocking: a.cfg.MaxBlocking,
		Preserving:  a.SelfPreserving,
	})
	limit := newConnLimit(a.cfg.MaxConnsPerClient) // one cap over HTTP and HTTPS
	newServer := func() *http.Server {
		return &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			ConnState:         limit.connState,
			// Blocking queries end when the agent stops.
			BaseContext: func(net.Listener) context.Context { return runCtx },
			ErrorLog:    slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		}
	}
	srv := newServer()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", "err", err)
		}
	}()
	var tlsSrv *http.Server
	if tlsLn != nil {
		tlsSrv = newServer()
		tlsSrv.TLSConfig = tlsConfig(&a.tls, a.cfg.TLS.VerifyIncoming)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := tlsSrv.ServeTLS(tlsLn, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("https server stopped", "err", err)
			}
		}()
	}
	// DNS stops when runCtx ends, first thing in shutdown.
	a.serveDNS(runCtx, &wg, dnsPC, dnsLn, m)
	shutdown := func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		if tlsSrv != nil {
			_ = tlsSrv.Shutdown(sctx)
		}
		a.stopChecks()
		if err := g.Shutdown(); err != nil {
			a.log.Warn("gossip shutdown", "err", err)
		}
		wg.Wait()
	}

	if len(a.cfg.Join) > 0 {
		n, err := g.Join(a.cfg.Join)
		if err != nil {
			shutdown()
			return fmt.Errorf("join: %w", err)
		}
		a.log.Info("joined", "contacted", n)
	}
	// Services restored from the data dir are news to the cluster, which
	// drops this node's previous run as soon as it sees the new epoch.
	var restored []catalog.Entry
	a.Read(func(c *catalog.Catalog) {
		for _, e := range c.LocalEntries() {
			if !e.Deleted {
				restored = append(restored, e)
			}
		}
	})
	g.Broadcast(restored...)
	a.log.Info("agent running", "gossip", a.GossipAddr(), "http", a.httpAddr, "dns", a.dnsAddr, "datacenter", a.cfg.Datacenter, "encrypted", a.encrypted)
	a.warnInsecure()
	if len(a.cfg.RetryJoin) > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); a.retryJoin(runCtx, "retry-join", a.cfg.RetryJoin, a.cfg.RetryMax) }()
	}
	if len(savedPeers) > 0 && len(a.cfg.Join) == 0 {
		// Find the cluster again through the peers known before the
		// restart; they may all be gone, so give up after a while.
		wg.Add(1)
		go func() { defer wg.Done(); a.retryJoin(runCtx, "rejoin saved peers", savedPeers, 6) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); a.maintain(runCtx) }()
	wg.Add(1)
	go func() { defer wg.Done(); a.reconnect(runCtx) }()
	close(a.ready)

	select {
	case <-ctx.Done():
		if err := a.leave(); err != nil {
			a.log.Warn("graceful leave", "err", err)
		}
	case <-a.stop:
	}
	if err := a.savePeers(); err != nil {
		a.log.Warn("saving known peers", "err", err)
	}
	shutdown()
	a.log.Info("agent stopped")
	return nil
}

// memberlistConfig builds memberlist's configuration from ours.
func (a *Agent) memberlistConfig(keys [][]byte) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = a.cfg.NodeName
	mc.BindAddr = a.bindIP
	mc.BindPort = a.cfg.Port
	mc.AdvertisePort = a.cfg.Port
	if a.advertise != "" {
		mc.AdvertiseAddr = a.advertise
	}
	if len(keys) > 0 {
		kr, err := memberlist.NewKeyring(keys[1:], keys[0])
		if err == nil { // setupKeyring checked every key
			mc.Keyring = kr
		}
		mc.GossipVerifyIncoming = !a.cfg.EncryptAcceptPlain
		mc.GossipVerifyOutgoing = !a.cfg.EncryptSendPlain
	}
	// A node that restarts at a new address (DHCP, a rescheduled VM) may
	// take its name back once the old address has been dead this long;
	// memberlist's default (0) would refuse it until the dead entry is
	// forgotten.
	mc.DeadNodeReclaimTime = 30 * time.Second
	mc.EnableCompression = a.cfg.GossipCompression
	// Every update reaches an agent several times at once (direct pushes
	// from each node that learns it), so a burst of registrations fills
	// memberlist's default queue of 1,024 incoming messages, and what it
	// drops waits for a push/pull: with 100,000 registrations a second
	// agent held them all 20–29 s after the last one instead of under
	// 0.5 s (docs/BENCHMARKS.md, "Memory"). gossip copies each packet
	// out of memberlist's 64 KiB read buffer, so a full queue holds at
	// most 16,384 packets of up to 1.4 KB: about 23 MB.
	mc.HandoffQueueDepth = 16384
	mc.Logger = newMemberlistLogger(a.log)
	if a.cfg.Memberlist != nil {
		a.cfg.Memberlist(mc)
	}
	return mc
}

// retryJoin tries addrs with exponential backoff (one second, doubling up
// to RetryInterval) until one answers, max attempts fail (0: never), or
// ctx ends. what names the attempt in logs.
func (a *Agent) retryJoin(ctx context.Context, what string, addrs []string, max int) {
	wait := time.Second
	for attempt := 1; ; attempt++ {
		n, err := a.g.Join(addrs)
		if err == nil {
			a.log.Info(what+" succeeded", "contacted", n, "attempt", attempt)
			return
		}
		// A name conflict is retried too: the live holder of the name may
		// be this node's own previous run, not yet declared dead.
		if max > 0 && attempt >= max {
			a.log.Error(what+" gave up", "attempts", attempt, "err", err)
			return
		}
		a.log.Warn(what+" failed; will retry", "attempt", attempt, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if ctx.Err() != nil {
			return
		}
		wait = min(wait*2, a.cfg.RetryInterval)
	}
}

// reconnect tries, every ReconnectInterval, to rejoin up to three members
// it holds as failed (not those that left). memberlist stops gossiping to
// a dead node after GossipToTheDeadTime, so without this two halves of a
// long partition would stay apart for good. A node that is really gone
// costs one failed connection attempt per interval until it is reaped.
func (a *Agent) reconnect(ctx context.Context) {
	t := time.NewTicker(a.cfg.ReconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var failed []string
		a.Read(func(c *catalog.Catalog) {
			for _, n := range c.Nodes() {
				if n.Status == catalog.StatusDead && n.Address != "" {
					failed = append(failed, net.JoinHostPort(n.Address, strconv.Itoa(n.Port)))
				}
			}
		})
		rand.Shuffle(len(failed), func(i, j int) { failed[i], failed[j] = failed[j], failed[i] })
		if len(failed) > 3 {
			failed = failed[:3]
		}
		if len(failed) == 0 || ctx.Err() != nil {
			continue
		}
		if n, err := a.g.Join(failed); err == nil {
			a.log.Info("reconnected to failed members", "contacted", n)
		} else {
			a.log.Debug("reconnect failed", "tried", failed, "err", err)
		}
	}
}

// maintain reaps old tombstones and departed nodes, saves the known peers,
// and re-announces this node's metadata when its epoch changed.
func (a *Agent) maintain(ctx context.Context) {
	every := min(a.cfg.TombstoneTTL/4, time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	peers := time.NewTicker(peerSaveInterval)
	defer peers.Stop()
	preserve := time.NewTicker(time.Second)
	defer preserve.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-preserve.C:
			if a.preserving.Load() {
				a.tickPreservation()
			}
		case <-peers.C:
			if err := a.savePeers(); err != nil {
				a.log.Warn("saving known peers", "err", err)
			}
		case <-t.C:
			a.mu.Lock()
			n := a.cat.Reap(a.now(), a.cfg.TombstoneTTL, a.cfg.NodeReapTTL)
			a.mu.Unlock()
			if n > 0 {
				a.log.Debug("reaped", "entries", n)
			}
			a.forgetReaped()
		case <-a.g.MetaChanged():
			if err := a.g.UpdateMeta(5 * time.Second); err != nil {
				a.log.Warn("re-announcing node metadata", "err", err)
			}
		}
	}
}

// leave broadcasts a graceful departure once.
func (a *Agent) leave() error {
	a.leaveMu.Lock()
	defer a.leaveMu.Unlock()
	if a.left {
		return nil
	}
	a.left = true
	a.log.Info("leaving the cluster")
	return a.g.Leave(a.cfg.LeaveTimeout)
}

// notifyLocked wakes blocking queries; the caller holds a.mu for writing.
func (a *Agent) notifyLocked() {
	close(a.changed)
	a.changed = make(chan struct{})
}

// write runs fn under the write lock and wakes readers if the catalog's
// index moved.
func (a *Agent) write(fn func(c *catalog.Catalog)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	before := a.cat.Index()
	fn(a.cat)
	if a.cat.Index() != before {
		a.notifyLocked()
	}
}

// store is the gossip layer's handle on the catalog.
type store struct{ a *Agent }

func (s store) Apply(e catalog.Entry) (ch catalog.Changes) {
	s.a.write(func(c *catalog.Catalog) { ch = c.Apply(e, s.a.now()) })
	return ch
}

func (s store) ApplyDelta(d catalog.Delta) (ch catalog.Changes) {
	s.a.write(func(c *catalog.Catalog) { ch = c.ApplyDelta(d, s.a.now()) })
	return ch
}

func (s store) Plan(peer []catalog.OriginDigest, scope catalog.Scope) (send, want []catalog.Want, ch catalog.Changes) {
	s.a.write(func(c *catalog.Catalog) { send, want, ch = c.Plan(peer, scope, s.a.now()) })
	return send, want, ch
}

func (s store) Buckets() [catalog.SummaryBuckets]uint64 {
	s.a.mu.RLock()
	defer s.a.mu.RUnlock()
	return s.a.cat.Buckets()
}

func (s store) DigestIn(buckets []int) []catalog.OriginDigest {
	s.a.mu.RLock()
	defer s.a.mu.RUnlock()
	return s.a.cat.DigestIn(buckets)
}

func (s store) Digest() []catalog.OriginDigest {
	s.a.mu.RLock()
	defer s.a.mu.RUnlock()
	return s.a.cat.Digest()
}

func (s store) OriginDigest(origin string) (catalog.OriginDigest, bool) {
	s.a.mu.RLock()
	defer s.a.mu.RUnlock()
	return s.a.cat.OriginDigest(origin)
}

func (s store) Deltas(w catalog.Want, budget int) []catalog.Delta {
	s.a.mu.RLock()
	defer s.a.mu.RUnlock()
	return s.a.cat.Deltas(w, budget)
}

func (s store) Has(origin string, v catalog.Version) bool {
	s.a.mu.RLock()
	defer s.a.mu.RUnlock()
	return s.a.cat.Has(origin, v)
}

func (s store) Known(origin string) (epoch, known uint64, ok bool) {
	s.a.mu.RLock()
	defer s.a.mu.RUnlock()
	return s.a.cat.Known(origin)
}

func (s store) Changed(origin string) time.Time {
	s.a.mu.RLock()
	defer s.a.mu.RUnlock()
	return s.a.cat.Changed(origin)
}

func (s store) Summary() uint64 {
	s.a.mu.RLock()
	defer s.a.mu.RUnlock()
	return s.a.cat.Summary()
}

func (s store) SetNode(n catalog.Node) {
	var before, after catalog.Preservation
	s.a.write(func(c *catalog.Catalog) {
		before = c.Preservation()
		c.SetNode(n, s.a.now())
		after = c.Preservation()
		s.a.preserving.Store(after.Active) // under the lock: in order
	})
	if before != after {
		s.a.notePreservation(before, after)
	}
}

func (s store) Epoch() uint64 {
	s.a.mu.RLock()
	defer s.a.mu.RUnlock()
	return s.a.cat.LocalEpoch()
}
