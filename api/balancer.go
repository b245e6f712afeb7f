package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoInstances is wrapped by the error of a pick that found no instance
// to call: the service has none that pass, every one has an open breaker,
// every one was already tried by this Do, or the agent has not answered
// yet (then the agent's error is wrapped too).
var ErrNoInstances = errors.New("no instance available")

// Strategy is how a Balancer chooses among the instances it may call.
type Strategy int

// The strategies. Every one skips instances whose breaker is open.
const (
	// StrategyRoundRobin takes the instances in turn, in the agent's
	// order: over k·n picks each of n instances gets k.
	StrategyRoundRobin Strategy = iota
	// StrategyRandom takes an instance uniformly at random.
	StrategyRandom
	// StrategyLeastOutstanding takes the instance with the fewest calls in
	// flight (picked and not yet done); ties go round-robin.
	StrategyLeastOutstanding
	// StrategyWeighted takes an instance at random in proportion to its
	// weight: Weights.Passing while its checks pass, Weights.Warning while
	// one warns (see BalancerConfig.Warning). Instances of weight 0 are
	// taken only when no instance of positive weight may be.
	StrategyWeighted
	// StrategyNearest takes the first instance in the order the agent
	// gives for ?near=_agent, nearest first; the next one only while it
	// may not be called.
	StrategyNearest
)

var strategyNames = [...]string{"round-robin", "random", "least-outstanding", "weighted", "nearest"}

// String names the strategy: "round-robin", "random", "least-outstanding",
// "weighted" or "nearest".
func (s Strategy) String() string {
	if s < 0 || int(s) >= len(strategyNames) {
		return "Strategy(" + strconv.Itoa(int(s)) + ")"
	}
	return strategyNames[s]
}

// BalancerConfig tunes a Balancer. The zero value is a round-robin
// balancer over the passing instances with the defaults below.
type BalancerConfig struct {
	// Strategy chooses among the instances; the zero value is
	// StrategyRoundRobin.
	Strategy Strategy

	// Tags keeps only instances that carry every one of these tags; the
	// agent filters, as for HealthService.
	Tags []string

	// Warning lets instances with a warning check be picked too; by
	// default only instances whose checks all pass are.
	Warning bool

	// MaxAttempts bounds the calls one Do makes, each on an instance not
	// yet tried by that Do; 0 means 3, 1 means no retry.
	MaxAttempts int

	// IsFailure decides whether a call's error is the instance's failure:
	// one that counts toward the instance's breaker and that Do retries on
	// another instance. Other errors end a Do at once and leave the
	// breaker alone (a request the service refused as bad, say). nil
	// means every error except context.Canceled. Do never counts or
	// retries an error once its own ctx has ended.
	IsFailure func(err error) bool

	// BreakerFailures is how many failures in a row open an instance's
	// breaker; 0 means 5, negative turns breakers off.
	BreakerFailures int

	// BreakerCoolDown is how long an open breaker keeps its instance out;
	// then one probe call is let through (half-open): its success closes
	// the breaker, its failure opens it for another cool-down. 0 means
	// 10s. A probe whose result never comes is given up after another
	// cool-down.
	BreakerCoolDown time.Duration

	// WaitTime bounds each blocking query of the watch; 0 means 1 minute.
	// The agent adds up to 1/16 at random; a query unanswered 10s past
	// that counts as the agent unreachable. A Timeout on the Client's
	// HTTPClient must leave room for it.
	WaitTime time.Duration

	// BackoffMin and BackoffMax bound the wait after a failed query: it
	// starts at BackoffMin and doubles up to BackoffMax, with jitter.
	// 0 means 250ms and 30s.
	BackoffMin, BackoffMax time.Duration

	// Rand, if set, is the only source of randomness of picks (Random,
	// Weighted), for repeatable tests. The Balancer serializes its use.
	// nil means math/rand/v2's global source.
	Rand *rand.Rand

	// Now, if set, is the clock of the breakers and of State. nil means
	// time.Now.
	Now func() time.Time

	// Logger, if set, is told when the watch fails and recovers.
	Logger *slog.Logger
}

// Default values of BalancerConfig.
const (
	defaultMaxAttempts     = 3
	defaultBreakerFailures = 5
	defaultBreakerCoolDown = 10 * time.Second
	defaultBalancerWait    = time.Minute
	defaultBackoffMin      = 250 * time.Millisecond
	defaultBackoffMax      = 30 * time.Second
	// answerSlack is how long past its wait (and the agent's jitter) a
	// blocking query may go unanswered before the agent counts as
	// unreachable.
	answerSlack = 10 * time.Second
)

// Instance is one instance a Balancer may call. Its slices and map are
// shared with the Balancer: do not modify them.
type Instance struct {
	// Addr is "host:port" ready to dial: the service's address, or its
	// node's when the service has none.
	Addr string
	// ID is the service instance's ID, unique on its node.
	ID string
	// Service is the service's name.
	Service string
	// Node is the name of the node the instance is registered on.
	Node string
	// Tags and Meta are the instance's, as registered.
	Tags []string
	Meta map[string]string
	// Weights are the instance's weights as the agent reports them.
	Weights AgentWeights
	// Status is HealthPassing, or HealthWarning when BalancerConfig.Warning
	// let a warning instance in.
	Status string
}

// BalancerState is what a Balancer knows of its own freshness.
type BalancerState struct {
	// Service is the watched service.
	Service string
	// Ready says the agent has answered at least once.
	Ready bool
	// Instances counts the instances known; Open counts those with an
	// open (or half-open) breaker.
	Instances, Open int
	// Index is the agent's index of the last answer.
	Index uint64
	// LastContact is when the agent last answered, with a change or at
	// the end of a wait; zero before the first answer.
	LastContact time.Time
	// Err is the error of the last query; nil once the agent answers
	// again. It wraps ErrAgentUnreachable when the agent could not be
	// reached.
	Err error
	// Stale says the instances are the last ones known, not being kept
	// current: the last query failed (Err is not nil).
	Stale bool
}

// Balancer keeps a watched copy of one service's healthy instances and
// picks one for each call. A goroutine follows the service with blocking
// queries on /v1/health/service/:name?passing until the context given to
// NewBalancer ends or Close is called. When the agent cannot be reached
// the Balancer keeps serving the instances it last knew, and State says
// so. Each instance has a circuit breaker fed by the results callers
// report. A Balancer is safe for concurrent use.
type Balancer struct {
	c       *Client
	service string
	cfg     BalancerConfig
	now     func() time.Time
	failure func(error) bool

	view atomic.Pointer[balancerView]
	next atomic.Uint64 // round-robin position

	randMu sync.Mutex // guards cfg.Rand

	cancel    context.CancelFunc
	done      chan struct{} // closed when the watch goroutine has ended
	ready     chan struct{} // closed at the first answer
	firstTry  chan struct{} // closed when the first query has ended, answered or not
	closeOnce sync.Once

	mu          sync.Mutex // guards the fields below
	index       uint64
	lastContact time.Time
	lastErr     error
	states      map[string]*instanceState // by node and ID, kept across answers
}

// balancerView is one answer of the agent, ready to pick from. It is never
// changed once published.
type balancerView struct {
	entries []*balancerEntry
	cum     []int // StrategyWeighted: running sum of weights
}

type balancerEntry struct {
	inst   Instance
	weight int
	st     *instanceState
}

// instanceState is what the Balancer keeps of an instance across answers
// of the agent: calls in flight and the breaker.
type instanceState struct {
	b           *Balancer
	outstanding atomic.Int64
	open        atomic.Bool  // the breaker is open or half-open
	fails       atomic.Int32 // failures in a row

	mu      sync.Mutex // guards the fields below
	retryAt time.Time  // an open breaker lets a probe through from then
	probing bool       // a probe is in flight
	probeAt time.Time

	done func(err error) // made once: Pick hands it out without allocating
}

// NewBalancer starts a Balancer of the named service on c's agent (nil c
// means the zero Client). It returns at once; the watch runs until ctx
// ends or Close is called. Pick fails until the agent first answers (see
// Ready); Do waits for the first query to end.
func NewBalancer(ctx context.Context, c *Client, service string, cfg BalancerConfig) (*Balancer, error) {
	if service == "" {
		return nil, errors.New("balancer: empty service name")
	}
	if cfg.Strategy < 0 || int(cfg.Strategy) >= len(strategyNames) {
		return nil, fmt.Errorf("balancer: Strategy %d is not one of the Strategy constants", cfg.Strategy)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"BreakerCoolDown", cfg.BreakerCoolDown}, {"WaitTime", cfg.WaitTime}, {"BackoffMin", cfg.BackoffMin}, {"BackoffMax", cfg.BackoffMax}} {
		if d.v < 0 {
			return nil, fmt.Errorf("balancer: %s %s is negative; 0 means the default", d.name, d.v)
		}
	}
	if cfg.MaxAttempts < 0 {
		return nil, fmt.Errorf("balancer: MaxAttempts %d is negative; 0 means %d", cfg.MaxAttempts, defaultMaxAttempts)
	}
	cfg.Tags = slices.Clone(cfg.Tags)
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = defaultMaxAttempts
	}
	if cfg.BreakerFailures == 0 {
		cfg.BreakerFailures = defaultBreakerFailures
	}
	if cfg.BreakerCoolDown == 0 {
		cfg.BreakerCoolDown = defaultBreakerCoolDown
	}
	if cfg.WaitTime == 0 {
		cfg.WaitTime = defaultBalancerWait
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = defaultBackoffMin
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = defaultBackoffMax
	}
	cfg.BackoffMax = max(cfg.BackoffMax, cfg.BackoffMin)
	if c == nil {
		c = &Client{}
	}
	b := &Balancer{
		c:        c,
		service:  service,
		cfg:      cfg,
		now:      cfg.Now,
		failure:  cfg.IsFailure,
		done:     make(chan struct{}),
		ready:    make(chan struct{}),
		firstTry: make(chan struct{}),
		states:   make(map[string]*instanceState),
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.failure == nil {
		b.failure = func(err error) bool { return !errors.Is(err, context.Canceled) }
	}
	b.view.Store(&balancerView{})
	ctx, b.cancel = context.WithCancel(ctx)
	go b.watch(ctx)
	return b, nil
}

// Balancer is NewBalancer on c: see there.
func (c *Client) Balancer(ctx context.Context, service string, cfg BalancerConfig) (*Balancer, error) {
	return NewBalancer(ctx, c, service, cfg)
}

// Close stops the watch and waits for it to end. Picks keep working on
// the instances last known. Close may be called more than once.
func (b *Balancer) Close() {
	b.closeOnce.Do(b.cancel)
	<-b.done
}

// Ready is closed when the agent has answered for the first time.
func (b *Balancer) Ready() <-chan struct{} { return b.ready }

// Instances lists the instances the Balancer knows, in the agent's order.
func (b *Balancer) Instances() []Instance {
	es := b.view.Load().entries
	out := make([]Instance, len(es))
	for i, e := range es {
		out[i] = e.inst
	}
	return out
}

// State tells how current the Balancer's instances are.
func (b *Balancer) State() BalancerState {
	es := b.view.Load().entries
	open := 0
	for _, e := range es {
		if e.st.open.Load() {
			open++
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return BalancerState{
		Service:     b.service,
		Ready:       !b.lastContact.IsZero(),
		Instances:   len(es),
		Open:        open,
		Index:       b.index,
		LastContact: b.lastContact,
		Err:         b.lastErr,
		Stale:       b.lastErr != nil,
	}
}

// Pick chooses an instance for one call. The caller must call done exactly
// once, with the call's result: nil for a success, else the error, which
// BalancerConfig.IsFailure judges for the instance's breaker. Until done
// is called the call counts as outstanding. Pick fails with an error
// wrapping ErrNoInstances when no instance may be called.
func (b *Balancer) Pick() (inst Instance, done func(err error), err error) {
	e, err := b.pick(nil)
	if err != nil {
		return Instance{}, nil, err
	}
	return e.inst, e.st.done, nil
}

// Do calls fn with an instance and, while fn fails with an error that
// BalancerConfig.IsFailure counts, again with another instance, up to
// MaxAttempts calls. Each call is reported to the instance's breaker. Do
// returns nil at the first success; fn's error as is when it does not
// count as a failure or ctx has ended; else an error wrapping the last
// failure. Before the agent's first answer, Do waits (within ctx) for the
// first query to end.
func (b *Balancer) Do(ctx context.Context, fn func(ctx context.Context, inst Instance) error) error {
	select {
	case <-b.firstTry:
	case <-ctx.Done():
		return ctx.Err()
	}
	var triedBuf [defaultMaxAttempts]*instanceState
	tried := triedBuf[:0]
	var last error
	var lastInst Instance
	for len(tried) < b.cfg.MaxAttempts {
		e, err := b.pick(tried)
		if err != nil {
			if last == nil {
				return err
			}
			return fmt.Errorf("balancer %q: %d calls failed, no other instance to try; the last, to %s (%s): %w",
				b.service, len(tried), lastInst.Addr, lastInst.ID, last)
		}
		err = fn(ctx, e.inst)
		switch {
		case err == nil:
			e.st.finish(nil, false)
			return nil
		case ctx.Err() != nil || !b.failure(err):
			e.st.finish(err, false)
			return err
		}
		e.st.finish(err, true)
		tried = append(tried, e.st)
		last, lastInst = err, e.inst
	}
	return fmt.Errorf("balancer %q: %d calls failed; the last, to %s (%s): %w",
		b.service, len(tried), lastInst.Addr, lastInst.ID, last)
}

// pick chooses an instance not in tried and counts the call as
// outstanding.
func (b *Balancer) pick(tried []*instanceState) (*balancerEntry, error) {
	v := b.view.Load()
	es := v.entries
	n := len(es)
	if n == 0 {
		return nil, b.noInstances(v, tried)
	}
	// A usable instance can turn unusable before it is claimed (another
	// caller took the half-open probe); then choose again without it.
	var now time.Time
	var skipBuf [4]*instanceState
	skip := append(skipBuf[:0], tried...)
	for range n {
		var e *balancerEntry
		switch b.cfg.Strategy {
		case StrategyRoundRobin:
			e = b.pickRoundRobin(es, skip, &now)
		case StrategyRandom:
			e = b.pickRandom(es, skip, &now)
		case StrategyLeastOutstanding:
			e = b.pickLeast(es, skip, &now)
		case StrategyWeighted:
			e = b.pickWeighted(v, skip, &now)
		case StrategyNearest:
			e = b.pickFirst(es, 0, skip, &now)
		}
		if e == nil {
			break
		}
		if !e.st.open.Load() || e.st.claim(b.clock(&now)) {
			e.st.outstanding.Add(1)
			return e, nil
		}
		skip = append(skip, e.st)
	}
	return nil, b.noInstances(v, tried)
}

// noInstances explains why pick found nothing.
func (b *Balancer) noInstances(v *balancerView, tried []*instanceState) error {
	n := len(v.entries)
	if n == 0 {
		b.mu.Lock()
		contacted, lastErr := !b.lastContact.IsZero(), b.lastErr
		b.mu.Unlock()
		switch {
		case !contacted && lastErr != nil:
			return fmt.Errorf("balancer %q: %w: no answer from the agent yet: %w", b.service, ErrNoInstances, lastErr)
		case !contacted:
			return fmt.Errorf("balancer %q: %w: no answer from the agent yet", b.service, ErrNoInstances)
		}
		return fmt.Errorf("balancer %q: %w: the agent knows none that may be called", b.service, ErrNoInstances)
	}
	if len(tried) > 0 {
		return fmt.Errorf("balancer %q: %w: %d of %d tried, the others have open breakers", b.service, ErrNoInstances, len(tried), n)
	}
	return fmt.Errorf("balancer %q: %w: all %d have open breakers", b.service, ErrNoInstances, n)
}

// clock reads the clock once per pick, and only when a breaker needs it.
func (b *Balancer) clock(now *time.Time) time.Time {
	if now.IsZero() {
		*now = b.now()
	}
	return *now
}

// usable says whether e may be picked: not skipped, and its breaker
// closed or ready for a probe.
func (b *Balancer) usable(e *balancerEntry, skip []*instanceState, now *time.Time) bool {
	for _, s := range skip {
		if s == e.st {
			return false
		}
	}
	return !e.st.open.Load() || e.st.probeAllowed(b.clock(now))
}

func (b *Balancer) pickRoundRobin(es []*balancerEntry, skip []*instanceState, now *time.Time) *balancerEntry {
	start := int((b.next.Add(1) - 1) % uint64(len(es)))
	return b.pickFirst(es, start, skip, now)
}

// pickFirst takes the first usable entry from start on, wrapping around.
func (b *Balancer) pickFirst(es []*balancerEntry, start int, skip []*instanceState, now *time.Time) *balancerEntry {
	for k := range es {
		i := start + k
		if i >= len(es) {
			i -= len(es)
		}
		if b.usable(es[i], skip, now) {
			return es[i]
		}
	}
	return nil
}

func (b *Balancer) pickRandom(es []*balancerEntry, skip []*instanceState, now *time.Time) *balancerEntry {
	if e := es[b.intN(len(es))]; b.usable(e, skip, now) {
		return e
	}
	// Choose again among the usable ones only, so that an instance after
	// an unusable one does not get its share too.
	usable := 0
	for _, e := range es {
		if b.usable(e, skip, now) {
			usable++
		}
	}
	return b.pickNthUsable(es, usable, skip, now)
}

// pickNthUsable takes one of the usable entries, of which there are
// usable, uniformly at random.
func (b *Balancer) pickNthUsable(es []*balancerEntry, usable int, skip []*instanceState, now *time.Time) *balancerEntry {
	if usable == 0 {
		return nil
	}
	k := b.intN(usable)
	for _, e := range es {
		if b.usable(e, skip, now) {
			if k == 0 {
				return e
			}
			k--
		}
	}
	return nil
}

func (b *Balancer) pickLeast(es []*balancerEntry, skip []*instanceState, now *time.Time) *balancerEntry {
	start := int((b.next.Add(1) - 1) % uint64(len(es)))
	var best *balancerEntry
	var bestN int64
	for k := range es {
		i := start + k
		if i >= len(es) {
			i -= len(es)
		}
		e := es[i]
		if !b.usable(e, skip, now) {
			continue
		}
		if n := e.st.outstanding.Load(); best == nil || n < bestN {
			best, bestN = e, n
		}
	}
	return best
}

func (b *Balancer) pickWeighted(v *balancerView, skip []*instanceState, now *time.Time) *balancerEntry {
	es := v.entries
	if total := v.cum[len(v.cum)-1]; total > 0 {
		r := b.intN(total)
		i, _ := slices.BinarySearch(v.cum, r+1) // the first running sum above r
		if e := es[i]; b.usable(e, skip, now) {
			return e
		}
	}
	// Weigh the usable ones only.
	total, usable := 0, 0
	for _, e := range es {
		if b.usable(e, skip, now) {
			total += e.weight
			usable++
		}
	}
	if total == 0 {
		// Only instances of weight 0 are left: better one of them than none.
		return b.pickNthUsable(es, usable, skip, now)
	}
	r := b.intN(total)
	for _, e := range es {
		if e.weight > 0 && b.usable(e, skip, now) {
			if r < e.weight {
				return e
			}
			r -= e.weight
		}
	}
	return nil
}

func (b *Balancer) intN(n int) int {
	if b.cfg.Rand == nil {
		return rand.IntN(n)
	}
	b.randMu.Lock()
	defer b.randMu.Unlock()
	return b.cfg.Rand.IntN(n)
}

// probeAllowed says whether an open breaker would let a probe through now.
func (s *instanceState) probeAllowed(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.probeAllowedLocked(now)
}

func (s *instanceState) probeAllowedLocked(now time.Time) bool {
	if now.Before(s.retryAt) {
		return false
	}
	// A probe whose result never came is given up after a cool-down.
	return !s.probing || !now.Before(s.probeAt.Add(s.b.cfg.BreakerCoolDown))
}

// claim takes the instance for a call: always while the breaker is closed;
// while it is open, only as the one probe.
func (s *instanceState) claim(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.open.Load() {
		return true
	}
	if !s.probeAllowedLocked(now) {
		return false
	}
	s.probing, s.probeAt = true, now
	return true
}

// report ends a call picked by Pick.
func (s *instanceState) report(err error) {
	s.finish(err, err != nil && s.b.failure(err))
}

// finish ends a call: it is no longer outstanding, and its result moves
// the breaker. An error that is not a failure only frees the probe.
func (s *instanceState) finish(err error, failed bool) {
	if s.outstanding.Add(-1) < 0 {
		s.outstanding.Store(0) // done called twice; do not go negative
	}
	threshold := s.b.cfg.BreakerFailures
	if threshold < 0 {
		return
	}
	if err == nil && !s.open.Load() && s.fails.Load() == 0 {
		return // the common case: healthy and staying so, without the lock
	}
	now := s.b.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		s.fails.Store(0)
		s.open.Store(false)
		s.probing = false
	case !failed:
		s.probing = false
	case s.open.Load():
		// The probe failed (or a call made before the breaker opened did):
		// another cool-down.
		s.fails.Add(1)
		s.probing = false
		s.retryAt = now.Add(s.b.cfg.BreakerCoolDown)
	default:
		if int(s.fails.Add(1)) >= threshold {
			s.open.Store(true)
			s.retryAt = now.Add(s.b.cfg.BreakerCoolDown)
		}
	}
}

// watch follows the service until ctx ends.
func (b *Balancer) watch(ctx context.Context) {
	defer close(b.done)
	first := true
	backoff := time.Duration(0)
	var index uint64
	for {
		entries, meta, err := b.query(ctx, index)
		if ctx.Err() != nil {
			if first {
				close(b.firstTry)
			}
			return
		}
		if err == nil {
			if meta.LastIndex < index {
				// The agent restarted with a fresh catalog.
				index = 0
			}
			b.update(entries, meta.LastIndex, index)
			index = meta.LastIndex
		}
		b.setErr(err)
		if first {
			first = false
			close(b.firstTry)
		}
		var wait time.Duration
		switch {
		case err != nil:
			backoff = min(max(2*backoff, b.cfg.BackoffMin), b.cfg.BackoffMax)
			wait = backoff/2 + rand.N(backoff/2+1) // jitter: many clients, one agent
		case index == 0:
			// No X-Consul-Index: the agent cannot block, so do not spin.
			backoff = 0
			wait = b.cfg.BackoffMin
		default:
			backoff = 0
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// query makes one blocking query. A query the agent leaves unanswered
// well past its wait counts as the agent being unreachable.
func (b *Balancer) query(ctx context.Context, index uint64) ([]*ServiceEntry, *QueryMeta, error) {
	q := &QueryOptions{
		Tags:      b.cfg.Tags,
		Passing:   true,
		Warning:   b.cfg.Warning,
		WaitIndex: index,
		WaitTime:  b.cfg.WaitTime,
	}
	if b.cfg.Strategy == StrategyNearest {
		q.Near = "_agent"
	}
	limit := b.cfg.WaitTime + b.cfg.WaitTime/16 + answerSlack
	qctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	entries, meta, err := b.c.HealthService(qctx, b.service, q)
	if err != nil && ctx.Err() == nil && errors.Is(qctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("health service %q: %w: no answer within %s", b.service, ErrAgentUnreachable, limit)
	}
	return entries, meta, err
}

// setErr records the end of a query.
func (b *Balancer) setErr(err error) {
	b.mu.Lock()
	prev := b.lastErr
	b.lastErr = err
	b.mu.Unlock()
	if l := b.cfg.Logger; l != nil {
		switch {
		case err != nil && prev == nil:
			l.Warn("balancer: watch failed; serving the last known instances", "component", "balancer", "service", b.service, "error", err)
		case err == nil && prev != nil:
			l.Info("balancer: watch recovered", "component", "balancer", "service", b.service)
		}
	}
}

// update publishes an answer of the agent. Instances keep their breaker
// and calls in flight across answers; those gone are forgotten.
func (b *Balancer) update(entries []*ServiceEntry, index, prevIndex uint64) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	first := b.lastContact.IsZero()
	b.lastContact = now
	if !first && index == prevIndex {
		return // the wait ended without a change
	}
	b.index = index
	v := &balancerView{entries: make([]*balancerEntry, 0, len(entries))}
	seen := make(map[string]*instanceState, len(entries))
	for _, se := range entries {
		inst, ok := instanceOf(se)
		if !ok || inst.Status == HealthCritical || (inst.Status == HealthWarning && !b.cfg.Warning) {
			// The agent filters these out; an agent that ignored the
			// filter must not get them called anyway.
			continue
		}
		key := inst.Node + "\x00" + inst.ID
		if seen[key] != nil {
			continue
		}
		st := b.states[key]
		if st == nil {
			st = &instanceState{b: b}
			st.done = st.report
		}
		seen[key] = st
		e := &balancerEntry{inst: inst, weight: inst.Weights.Passing, st: st}
		if inst.Status == HealthWarning {
			e.weight = inst.Weights.Warning
		}
		v.entries = append(v.entries, e)
	}
	if b.cfg.Strategy == StrategyWeighted {
		v.cum = make([]int, len(v.entries))
		sum := 0
		for i, e := range v.entries {
			sum += max(e.weight, 0)
			v.cum[i] = sum
		}
	}
	b.states = seen
	b.view.Store(v)
	if first {
		close(b.ready)
	}
}

// instanceOf turns an entry of the agent's answer into an Instance; an
// entry with no address to dial is left out.
func instanceOf(se *ServiceEntry) (Instance, bool) {
	if se == nil || se.Service == nil {
		return Instance{}, false
	}
	s := se.Service
	host := s.Address
	inst := Instance{
		ID:      s.ID,
		Service: s.Service,
		Tags:    s.Tags,
		Meta:    s.Meta,
		Weights: s.Weights,
		Status:  AggregatedStatus(se.Checks),
	}
	if se.Node != nil {
		inst.Node = se.Node.Node
		if host == "" {
			host = se.Node.Address
		}
	}
	if host == "" || s.Port <= 0 {
		return Instance{}, false
	}
	if inst.Weights == (AgentWeights{}) {
		// An agent that does not report weights: Consul's default.
		inst.Weights = AgentWeights{Passing: 1, Warning: 1}
	}
	inst.Addr = net.JoinHostPort(host, strconv.Itoa(s.Port))
	return inst, true
}
