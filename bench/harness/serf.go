package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/serf/client"
)

// serfVersion is the Serf release installed when none is given or found.
// Its agents speak IPC version 1, which the v0.11 RPC client in go.mod
// speaks too.
const serfVersion = "v0.10.2"

// errNoSerf says Serf was left out on purpose (SerfBin "none").
var errNoSerf = errors.New("serf left out: SerfBin is \"none\"")

// serfEvents are the event types each agent's recorder is fed.
const serfEvents = "member-join,member-update,member-leave,member-failed"

// ensureSerf returns the serf binary to run: o.SerfBin if set, serf on
// $PATH, or a cached build of serfVersion, which it installs with `go
// install` into the user's cache directory when it is not there yet.
func ensureSerf(ctx context.Context, o *Options) (string, error) {
	log := o.Log
	if log == nil {
		log = discard()
	}
	switch o.SerfBin {
	case "none":
		return "", errNoSerf
	case "":
	default:
		p, err := exec.LookPath(o.SerfBin)
		if err != nil {
			return "", fmt.Errorf("serf binary %q: %w", o.SerfBin, err)
		}
		if p, err = filepath.Abs(p); err != nil {
			return "", fmt.Errorf("serf binary %q: %w", o.SerfBin, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("serf"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		log.Info("using serf from $PATH", "bin", p)
		return p, nil
	}

	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache directory for serf: %w", err)
	}
	dir := filepath.Join(cache, "shoal-bench", "serf-"+serfVersion)
	bin := filepath.Join(dir, "serf")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		log.Info("using cached serf", "bin", bin)
		return bin, nil
	}

	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("installing serf %s: no go command: %w", serfVersion, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("installing serf %s: %w", serfVersion, err)
	}
	pkg := "github.com/hashicorp/serf/cmd/serf@" + serfVersion
	log.Info("installing serf (takes a few seconds)", "pkg", pkg, "dir", dir)
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "install", pkg)
	cmd.Dir = dir // outside any module, whatever directory we run from
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go install %s: %w: %s", pkg, err, strings.TrimSpace(string(out)))
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("go install %s: no binary: %w", pkg, err)
	}
	log.Info("installed serf", "bin", bin, "took", time.Since(start).Round(time.Millisecond))
	return bin, nil
}

// serfAgent is one `serf agent` process and what watches it.
type serfAgent struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited and been reaped
	// client carries the subscriptions, queries, joins and the leave.
	client *client.RPCClient
	// tagger carries only tag updates: the agent answers one only once
	// memberlist has finished broadcasting it (hundreds of milliseconds),
	// and serves each connection's requests in turn, so they get their
	// own connection. It has no subscriptions, so it is safe to close
	// from here at any time.
	tagger *client.RPCClient
	// churnCh feeds the goroutine that applies Churn's tag changes; nil
	// until the first Churn.
	churnCh      chan churnChange
	churnDropped int
	// streamDone is closed when the event stream's channel is closed,
	// which the RPC client does once its connection has ended.
	streamDone chan struct{}
	streaming  bool // consume runs and will close streamDone
	// monitorDone and monitoring are the same for the log monitor.
	monitorDone chan struct{}
	monitoring  bool
	rec         *recorder
}

// closeTagger closes the tagger connection, before the agent goes, so
// that the client does not log the connection's end as an error.
func (a *serfAgent) closeTagger() {
	if a.tagger != nil {
		a.tagger.Close()
	}
}

func (a *serfAgent) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// serfCluster is n HashiCorp Serf agents, each its own process, on
// 127.0.0.1.
//
// Each agent's recorder is fed from two RPC subscriptions, the earlier
// arrival winning:
//
//   - the agent's log monitor at INFO: Serf logs "EventMemberJoin",
//     "EventMemberUpdate", "EventMemberFailed" and "EventMemberLeave" the
//     moment its member table changes. An update line names the member
//     but not its tags, so for the origin of a pending Change the watcher
//     asks the agent (members-filtered) whether it now holds that tag
//     value, and marks the change at the line's arrival time.
//   - the agent's member event stream. The serf agent coalesces member
//     events (a fixed quiescent period of 1 s, up to 3 s, not
//     configurable), so these arrive at least a second late; they are the
//     fallback should a log line be dropped, and what an event handler
//     would see.
type serfCluster struct {
	log     *slog.Logger
	timeout time.Duration
	ports   portPlan
	dir     string
	agents  []*serfAgent
	// formRound is how long awaitFormed waits before joining agents
	// that lack members again.
	formRound time.Duration

	ctx    context.Context // lives until Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // reapers, stream consumers, RPC calls

	// pending is, per origin, the change number Change last set there;
	// the log monitors look it up when the origin's tags change.
	pendingMu sync.Mutex
	pending   map[string]int

	closeOnce sync.Once
	closeErr  error
}

var _ cluster = (*serfCluster)(nil)

// startSerf starts n `serf agent` processes of bin, agent i named serf-<i>
// with gossip on ports.Gossip+i and RPC on ports.API+i, joins them to
// agent 0 and returns once every agent sees all n alive (or o.Timeout has
// passed). Agents log to a new directory under o.WorkDir.
func startSerf(ctx context.Context, o *Options, bin string, n int, ports portPlan) (cl cluster, err error) {
	if n < 1 {
		return nil, fmt.Errorf("starting serf: cluster size %d", n)
	}
	if bin == "" {
		return nil, errors.New("starting serf: no binary")
	}
	log := o.Log
	if log == nil {
		log = discard()
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	if o.WorkDir != "" {
		if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
			return nil, fmt.Errorf("starting serf: %w", err)
		}
	}
	dir, err := os.MkdirTemp(o.WorkDir, fmt.Sprintf("serf-%d-", n))
	if err != nil {
		return nil, fmt.Errorf("starting serf: %w", err)
	}

	c := &serfCluster{log: log, timeout: timeout, ports: ports, dir: dir, pending: make(map[string]int), formRound: 5 * time.Second}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			if cerr := c.Close(); cerr != nil {
				log.Warn("closing half-started serf cluster", "err", cerr)
			}
		}
	}()

	ctx, stop := context.WithTimeout(ctx, timeout)
	defer stop()
	began := time.Now()

	for i := range n {
		if err := c.spawn(i, bin); err != nil {
			return nil, err
		}
	}
	for i := range n {
		if err := c.connect(ctx, i); err != nil {
			return nil, err
		}
	}
	seed := []string{fmt.Sprintf("127.0.0.1:%d", ports.Gossip)}
	for i := 1; i < n; i++ {
		err := c.rpc(ctx, i, "join", func(rc *client.RPCClient) error {
			_, err := rc.Join(seed, false)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if err := c.awaitFormed(ctx, seed); err != nil {
		return nil, err
	}
	log.Info("serf cluster up", "n", n, "took", time.Since(began).Round(time.Millisecond), "logs", dir)
	return c, nil
}

func serfName(i int) string { return "serf-" + strconv.Itoa(i) }

// awaitFormed waits until every agent has seen every agent alive. Gossip
// alone sometimes leaves an agent unaware of one that joined in the same
// burst until a periodic push/pull (60 s at N = 64) brings it, so agents
// still missing members after a few seconds join the seed again: a join
// is a full state exchange.
func (c *serfCluster) awaitFormed(ctx context.Context, seed []string) error {
	n := len(c.agents)
	recs := make([]*recorder, n)
	for i, a := range c.agents {
		recs[i] = a.rec
	}
	for round := 1; ; round++ {
		rctx, cancel := context.WithTimeout(ctx, c.formRound)
		var err error
		for i := range n {
			if _, err = waitAll(rctx, recs, hereKey(serfName(i))); err != nil {
				break
			}
		}
		cancel()
		if err == nil {
			return nil
		}
		var lacking []string
		for j, a := range c.agents {
			missing := 0
			for i := range n {
				if _, _, ok := a.rec.at(hereKey(serfName(i))); !ok {
					missing++
				}
			}
			if missing == 0 {
				continue
			}
			lacking = append(lacking, fmt.Sprintf("%s lacks %d", a.name, missing))
			if ctx.Err() != nil {
				continue
			}
			to := seed
			if j == 0 {
				to = []string{fmt.Sprintf("127.0.0.1:%d", c.ports.Gossip+1)}
			}
			jerr := c.rpc(ctx, j, "join again", func(rc *client.RPCClient) error {
				if _, err := rc.Join(to, false); err != nil {
					return err
				}
				// Should the recorder have missed a join event,
				// the agent's table tells.
				ms, err := rc.Members()
				now := time.Now()
				for _, m := range ms {
					a.observe("member-join", m.Name, m.Status, m.Tags, now)
				}
				return err
			})
			if jerr != nil {
				c.log.Warn("serf agent joining again", "err", jerr)
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("serf cluster of %d forming: %s: %w", n, strings.Join(lacking, ", "), ctx.Err())
		}
		c.log.Info("serf agents missing members; joined them again", "round", round, "agents", strings.Join(lacking, ", "))
	}
}

// spawn starts agent i's process and the goroutine that reaps it.
func (c *serfCluster) spawn(i int, bin string) error {
	name := serfName(i)
	logPath := filepath.Join(c.dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	cmd := exec.Command(bin, "agent",
		"-node="+name,
		fmt.Sprintf("-bind=127.0.0.1:%d", c.ports.Gossip+i),
		fmt.Sprintf("-rpc-addr=127.0.0.1:%d", c.ports.API+i),
		"-profile=lan",
		"-log-level=warn",
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // our Close, not the terminal's ^C, stops it
		Pdeathsig: syscall.SIGKILL, // and it dies with us if we die first
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	a := &serfAgent{
		name:        name,
		logPath:     logPath,
		cmd:         cmd,
		done:        make(chan struct{}),
		streamDone:  make(chan struct{}),
		monitorDone: make(chan struct{}),
		rec:         newRecorder(),
	}
	c.agents = append(c.agents, a)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := cmd.Wait()
		logFile.Close()
		close(a.done)
		c.log.Debug("serf agent exited", "node", name, "status", err)
	}()
	return nil
}

// connect dials agent i's RPC address until it answers, subscribes to its
// member events and records the members it already knows.
func (c *serfCluster) connect(ctx context.Context, i int) error {
	a := c.agents[i]
	addr := fmt.Sprintf("127.0.0.1:%d", c.ports.API+i)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		rc, err := client.ClientFromConfig(&client.Config{Addr: addr, Timeout: time.Second})
		if err == nil {
			a.client = rc
			break
		}
		select {
		case <-a.done:
			tail, _ := tailFile(a.logPath, 1024)
			return fmt.Errorf("%s exited before its RPC answered (%s): %s", a.name, a.logPath, tail)
		case <-ctx.Done():
			return fmt.Errorf("%s RPC at %s: %w (last: %w)", a.name, addr, ctx.Err(), err)
		case <-tick.C:
		}
	}

	// Make sure the port is answered by our agent, not one left over.
	var stats map[string]map[string]string
	err := c.rpc(ctx, i, "stats", func(rc *client.RPCClient) error {
		var err error
		stats, err = rc.Stats()
		return err
	})
	if err != nil {
		return err
	}
	if got := stats["agent"]["name"]; got != a.name {
		return fmt.Errorf("%s: RPC port %s is answered by agent %q", a.name, addr, got)
	}

	tagger, err := client.ClientFromConfig(&client.Config{Addr: addr, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("%s second RPC connection: %w", a.name, err)
	}
	a.tagger = tagger

	// The client drops events when this channel is full, so it is deep and
	// drained by a goroutine that does nothing else.
	ch := make(chan map[string]any, 4096)
	if _, err := a.client.Stream(serfEvents, ch); err != nil {
		return fmt.Errorf("%s event stream: %w", a.name, err)
	}
	a.streaming = true
	c.wg.Add(1)
	go c.consume(a, ch)

	// The monitor replays the agent's recent log first: only startup
	// lines, since nobody has joined yet.
	logCh := make(chan string, 4096)
	if _, err := a.client.Monitor("INFO", logCh); err != nil {
		return fmt.Errorf("%s log monitor: %w", a.name, err)
	}
	a.monitoring = true
	c.wg.Add(1)
	go c.consumeLog(a, logCh)

	var members []client.Member
	err = c.rpc(ctx, i, "members", func(rc *client.RPCClient) error {
		var err error
		members, err = rc.Members()
		return err
	})
	if err != nil {
		return err
	}
	now := time.Now()
	for _, m := range members {
		a.observe("member-join", m.Name, m.Status, m.Tags, now)
	}
	return nil
}

// consume feeds agent a's recorder from its event stream until the stream
// ends (the RPC connection is gone) or the cluster is closed.
func (c *serfCluster) consume(a *serfAgent, ch <-chan map[string]any) {
	defer c.wg.Done()
	defer close(a.streamDone)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return
			}
			a.observeRecord(ev, time.Now())
		case <-c.ctx.Done():
			return
		}
	}
}

// consumeLog feeds agent a's recorder from its log monitor until the
// monitor ends (the RPC connection is gone) or the cluster is closed.
func (c *serfCluster) consumeLog(a *serfAgent, ch <-chan string) {
	defer c.wg.Done()
	defer close(a.monitorDone)
	for {
		select {
		case line, ok := <-ch:
			if !ok {
				return
			}
			c.observeLog(a, line, time.Now())
		case <-c.ctx.Done():
			return
		}
	}
}

// observeLog records what one of agent a's log lines tells, such as
// "2026/01/02 15:04:05 [INFO] serf: EventMemberFailed: serf-1 127.0.0.1".
func (c *serfCluster) observeLog(a *serfAgent, line string, at time.Time) {
	_, rest, ok := strings.Cut(line, "serf: EventMember")
	if !ok {
		return
	}
	kind, rest, ok := strings.Cut(rest, ": ")
	if !ok {
		return
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return
	}
	name := fields[0]
	switch kind {
	case "Join":
		// Back after a failure: a later departure is news again.
		a.rec.forget(goneKey(name))
		a.rec.mark(hereKey(name), at)
	case "Failed", "Leave", "Leave (forced)":
		a.rec.mark(goneKey(name), at)
	case "Update":
		c.pendingMu.Lock()
		k, ok := c.pending[name]
		c.pendingMu.Unlock()
		if !ok {
			return
		}
		key := convKey(k)
		if _, _, seen := a.rec.at(key); seen {
			return
		}
		// The member table changed before the line was logged, so the
		// agent answers with the update's tags or newer ones.
		ms, err := a.client.MembersFiltered(map[string]string{"v": strconv.Itoa(k)}, "", regexp.QuoteMeta(name))
		if err == nil && len(ms) > 0 {
			a.rec.mark(key, at)
		}
	}
}

// observeRecord records what one streamed member event tells.
func (a *serfAgent) observeRecord(ev map[string]any, at time.Time) {
	event := serfString(ev["Event"])
	members, _ := ev["Members"].([]any)
	for _, m := range members {
		mm := serfMap(m)
		tags := make(map[string]string)
		for k, v := range serfMap(mm["Tags"]) {
			tags[k] = serfString(v)
		}
		a.observe(event, serfString(mm["Name"]), serfString(mm["Status"]), tags, at)
	}
}

// observe records what one member in one event tells: that it is alive,
// gone, or carries change number v.
func (a *serfAgent) observe(event, name, status string, tags map[string]string, at time.Time) {
	switch event {
	case "member-failed", "member-leave":
		a.rec.mark(goneKey(name), at)
		return
	case "member-join", "member-update":
	default:
		return
	}
	if status == "alive" && event == "member-join" {
		a.rec.forget(goneKey(name))
	}
	if status == "alive" {
		a.rec.mark(hereKey(name), at)
	}
	if v, ok := tags["v"]; ok {
		if k, err := strconv.Atoi(v); err == nil {
			a.rec.mark(convKey(k), at)
		}
	}
}

// serfString and serfMap read msgpack values decoded into interfaces, where
// strings may come as []byte and maps keyed by any.
func serfString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	}
	return ""
}

func serfMap(v any) map[string]any {
	switch m := v.(type) {
	case map[string]any:
		return m
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[serfString(k)] = v
		}
		return out
	}
	return nil
}

// rpc runs f against agent i's main RPC client, giving up when ctx is
// done (the client has no deadlines of its own; an abandoned call ends
// when Close closes the client).
func (c *serfCluster) rpc(ctx context.Context, i int, what string, f func(*client.RPCClient) error) error {
	return c.call(ctx, i, false, what, f)
}

// call runs f against agent i's main client or its tagger.
func (c *serfCluster) call(ctx context.Context, i int, tagger bool, what string, f func(*client.RPCClient) error) error {
	if i < 0 || i >= len(c.agents) {
		return fmt.Errorf("serf %s: no agent %d", what, i)
	}
	a := c.agents[i]
	rc := a.client
	if tagger {
		rc = a.tagger
	}
	if rc == nil {
		return fmt.Errorf("%s %s: not connected", a.name, what)
	}
	if c.ctx.Err() != nil {
		return fmt.Errorf("%s %s: cluster closed", a.name, what)
	}
	errc := make(chan error, 1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		errc <- f(rc)
	}()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("%s %s: %w", a.name, what, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", a.name, what, ctx.Err())
	}
}

func (c *serfCluster) System() string { return "serf" }
func (c *serfCluster) Mode() string   { return ModeProcesses }
func (c *serfCluster) Size() int      { return len(c.agents) }

func (c *serfCluster) GossipPorts() (lo, hi int) {
	return c.ports.Gossip, c.ports.Gossip + len(c.agents) - 1
}

// Change sets tag v=k on agent origin; every agent's recorder marks
// convKey(k) when it sees the tag.
func (c *serfCluster) Change(ctx context.Context, origin, k int) (string, error) {
	c.pendingMu.Lock()
	c.pending[serfName(origin)] = k
	c.pendingMu.Unlock()
	// The call returns once the update has been broadcast, often after
	// every agent has it; callers time from before the call.
	err := c.call(ctx, origin, true, "change", func(rc *client.RPCClient) error {
		return rc.UpdateTags(map[string]string{"v": strconv.Itoa(k)}, nil)
	})
	if err != nil {
		return "", err
	}
	return convKey(k), nil
}

// Churn sets tag churn=k on agent i without waiting: a goroutine per
// agent applies the changes in turn on the agent's tagger connection,
// since each takes until its broadcast is done (more than the interval
// between churn changes at large N). A change that finds eight waiting is
// dropped, with a warning; one whose ctx is done by its turn is skipped.
func (c *serfCluster) Churn(ctx context.Context, i, k int) error {
	if i < 0 || i >= len(c.agents) {
		return fmt.Errorf("serf churn: no agent %d", i)
	}
	a := c.agents[i]
	if a.tagger == nil || a.exited() || c.ctx.Err() != nil {
		return fmt.Errorf("%s churn: not running", a.name)
	}
	if a.churnCh == nil {
		a.churnCh = make(chan churnChange, 8)
		c.wg.Add(1)
		go c.churn(a, a.churnCh)
	}
	select {
	case a.churnCh <- churnChange{ctx: ctx, k: k}:
	default:
		a.churnDropped++
		if a.churnDropped == 1 {
			c.log.Warn("serf tag changes backing up; dropping churn changes", "node", a.name)
		}
	}
	return nil
}

// churnChange is one Churn call waiting its turn.
type churnChange struct {
	ctx context.Context
	k   int
}

// churn applies agent a's churn changes until the cluster is closed.
func (c *serfCluster) churn(a *serfAgent, ch <-chan churnChange) {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case cc := <-ch:
			if cc.ctx.Err() != nil {
				continue
			}
			if err := a.tagger.UpdateTags(map[string]string{"churn": strconv.Itoa(cc.k)}, nil); err != nil {
				c.log.Debug("serf churn", "node", a.name, "err", err)
			}
		}
	}
}

// Crash kills agent i with SIGKILL and reaps it.
func (c *serfCluster) Crash(ctx context.Context, i int) error {
	if i < 0 || i >= len(c.agents) {
		return fmt.Errorf("serf crash: no agent %d", i)
	}
	a := c.agents[i]
	if a.exited() {
		return fmt.Errorf("crashing %s: not running", a.name)
	}
	a.closeTagger()
	if err := a.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("crashing %s: %w", a.name, err)
	}
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("crashing %s: waiting for exit: %w", a.name, ctx.Err())
	}
}

// Leave makes agent i leave gracefully (RPC leave, after which the agent
// shuts down), waits for the process to exit and kills it if it does not
// within the cluster's timeout.
func (c *serfCluster) Leave(ctx context.Context, i int) error {
	if i < 0 || i >= len(c.agents) {
		return fmt.Errorf("serf leave: no agent %d", i)
	}
	a := c.agents[i]
	if a.exited() {
		return fmt.Errorf("%s leave: not running", a.name)
	}
	a.closeTagger()
	rpcErr := c.rpc(ctx, i, "leave", func(rc *client.RPCClient) error { return rc.Leave() })
	if rpcErr != nil && ctx.Err() != nil {
		c.kill(a)
		return rpcErr
	}
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case <-a.done:
		// The agent may close the connection before its answer is read;
		// having exited, it has left.
		return nil
	case <-timer.C:
	case <-ctx.Done():
	}
	c.kill(a)
	if rpcErr != nil {
		return rpcErr
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s leave: waiting for exit: %w", a.name, ctx.Err())
	}
	c.log.Warn("serf agent did not exit after leaving; killed", "node", a.name, "waited", c.timeout)
	return nil
}

// kill SIGKILLs a and waits until it is reaped.
func (c *serfCluster) kill(a *serfAgent) {
	if a.exited() {
		return
	}
	if err := a.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.log.Warn("killing serf agent", "node", a.name, "err", err)
	}
	<-a.done
}

func (c *serfCluster) GoneKey(i int) string { return goneKey(serfName(i)) }

func (c *serfCluster) Recorder(i int) *recorder { return c.agents[i].rec }

// RSS is agent i's resident set size in bytes, from /proc/<pid>/status.
func (c *serfCluster) RSS(i int) (uint64, error) {
	if i < 0 || i >= len(c.agents) {
		return 0, fmt.Errorf("serf rss: no agent %d", i)
	}
	a := c.agents[i]
	if a.exited() {
		return 0, fmt.Errorf("%s rss: not running", a.name)
	}
	return procStatusBytes(a.cmd.Process.Pid, "VmRSS")
}

// Close stops every agent still running (SIGTERM, then SIGKILL for those
// that do not exit in seconds), ends the event streams and waits for every
// goroutine the cluster started.
//
// Order matters: the processes go first, so that each RPC client sees its
// connection end and shuts itself down on its own reading goroutine.
// Closing a client from outside while an event is being delivered would
// race inside the client library.
func (c *serfCluster) Close() error {
	c.closeOnce.Do(func() {
		var errs []error
		for _, a := range c.agents {
			a.closeTagger()
		}
		for _, a := range c.agents {
			if !a.exited() {
				if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
					errs = append(errs, fmt.Errorf("stopping %s: %w", a.name, err))
				}
			}
		}
		grace, stop := context.WithTimeout(context.Background(), 5*time.Second)
		for _, a := range c.agents {
			select {
			case <-a.done:
			case <-grace.Done():
				c.log.Warn("serf agent ignored SIGTERM; killing", "node", a.name)
				c.kill(a)
			}
		}
		// With every process gone, each client's connection ends and the
		// client closes its stream; give that a moment before closing
		// the clients ourselves.
		stop()
		grace, stop = context.WithTimeout(context.Background(), 5*time.Second)
		for _, a := range c.agents {
			if a.streaming {
				select {
				case <-a.streamDone:
				case <-grace.Done():
				}
			}
			if a.monitoring {
				select {
				case <-a.monitorDone:
				case <-grace.Done():
				}
			}
		}
		stop()
		c.cancel()
		for _, a := range c.agents {
			if a.client != nil {
				if err := a.client.Close(); err != nil {
					c.log.Debug("closing serf rpc client", "node", a.name, "err", err)
				}
			}
		}
		c.wg.Wait()
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}
