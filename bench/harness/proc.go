package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shoal-sd/shoal/api"
)

// logger is o.Log, or a logger that discards everything.
func (o *Options) logger() *slog.Logger {
	if o == nil || o.Log == nil {
		return discard()
	}
	return o.Log
}

// shoalPkg is the package buildShoal builds.
const shoalPkg = "github.com/shoal-sd/shoal/cmd/shoal"

// buildShoal returns the shoal binary to run: o.ShoalBin if set, else one
// built from this module into o.WorkDir. The build runs in the current
// directory, which must be inside the module (as it is for the tests and
// for cmd/shoal-bench run from the repository).
func buildShoal(ctx context.Context, o *Options) (string, error) {
	if o.ShoalBin != "" {
		return o.ShoalBin, nil
	}
	if o.WorkDir == "" {
		return "", errors.New("build shoal: Options.WorkDir is empty")
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return "", fmt.Errorf("build shoal: %w", err)
	}
	bin, err := filepath.Abs(filepath.Join(o.WorkDir, "shoal"))
	if err != nil {
		return "", fmt.Errorf("build shoal: %w", err)
	}
	log := o.logger()
	log.Info("building shoal", "out", bin)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, shoalPkg)
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	if err != nil {
		// One line: the command line shows it as its error.
		msg := strings.Join(strings.Fields(string(bytes.TrimSpace(out))), " ")
		return "", fmt.Errorf("go build %s (run from Shoal's source tree, or give a binary: ShoalBin, --shoal): %w: %s", shoalPkg, err, msg)
	}
	log.Info("built shoal", "out", bin, "took", time.Since(start).Round(time.Millisecond))
	return bin, nil
}

// shoalProc is one `shoal agent` process on loopback.
type shoalProc struct {
	Name       string
	Cmd        *exec.Cmd
	HTTPAddr   string // host:port of the HTTP API
	GossipAddr string // host:port of gossip, for --join
	LogPath    string // the agent's stdout and stderr
	// Client talks to the agent's HTTP API over a transport of its own
	// that keeps enough idle connections for concurrent callers.
	Client *api.Client

	transport *http.Transport
	grace     time.Duration // longest Stop waits for a graceful exit
	done      chan struct{} // closed once the process has exited
	waitErr   error         // Cmd.Wait's result, set before done closes
}

// procPollInterval is how often a starting agent's API is tried.
const procPollInterval = 20 * time.Millisecond

// startShoalProc starts `bin agent` named name with gossip on
// 127.0.0.1:gossipPort and the HTTP API on 127.0.0.1:httpPort, DNS off,
// joining join (gossip host:port addresses) if any; extra are more agent
// flags. Its output goes to <o.WorkDir>/<name>.log (appended). It returns
// once the HTTP API answers, waiting at most o.Timeout (and no longer than
// ctx allows). ctx bounds the start only: the process runs until Kill or
// Stop. On any error the process is killed and reaped before returning.
func startShoalProc(ctx context.Context, o *Options, bin, name string, gossipPort, httpPort int, join []string, extra ...string) (*shoalProc, error) {
	if o.WorkDir == "" {
		return nil, fmt.Errorf("start agent %s: Options.WorkDir is empty", name)
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("start agent %s: %w", name, err)
	}
	p := &shoalProc{
		Name:       name,
		HTTPAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
		GossipAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(gossipPort)),
		LogPath:    filepath.Join(o.WorkDir, name+".log"),
		grace:      o.Timeout,
		done:       make(chan struct{}),
	}
	if p.grace <= 0 {
		p.grace = 30 * time.Second
	}
	p.Client, p.transport = agentClient(p.HTTPAddr)

	args := []string{"agent",
		"--node", name,
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(gossipPort),
		"--http-addr", p.HTTPAddr,
		"--dns-addr", "",
		"--log-level", "warn",
	}
	for _, j := range join {
		args = append(args, "--join", j)
	}
	args = append(args, extra...)

	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start agent %s: %w", name, err)
	}
	fmt.Fprintf(logf, "=== %s %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Stdout, p.Cmd.Stderr = logf, logf
	// Should the harness die, the kernel kills its agents (best effort:
	// Linux signals when the thread that started the agent exits, and Go
	// keeps its threads).
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = p.Cmd.Start()
	// The child holds its own copy of the file.
	_ = logf.Close()
	if err != nil {
		return nil, fmt.Errorf("start agent %s: %w", name, err)
	}
	go func() {
		p.waitErr = p.Cmd.Wait()
		close(p.done)
	}()
	o.logger().Debug("agent started", "node", name, "pid", p.Pid(), "http", p.HTTPAddr, "gossip", p.GossipAddr)

	if err := p.waitReady(ctx, o.Timeout); err != nil {
		_ = p.Kill()
		return nil, fmt.Errorf("start agent %s: %w", name, err)
	}
	return p, nil
}

// waitReady polls the agent's /v1/agent/self until it answers.
func (p *shoalProc) waitReady(ctx context.Context, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	tick := time.NewTicker(procPollInterval)
	defer tick.Stop()
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		self, err := p.Client.Self(actx)
		cancel()
		switch {
		case err != nil:
			last = err
		case self.Config.NodeName != p.Name || net.JoinHostPort(self.Member.Addr, strconv.Itoa(int(self.Member.Port))) != p.GossipAddr:
			// Another agent holds the port; this one will fail to
			// listen and exit.
			last = fmt.Errorf("%s answers as %s, gossip at %s:%d", p.HTTPAddr, self.Config.NodeName, self.Member.Addr, self.Member.Port)
		default:
			return nil
		}
		select {
		case <-p.done:
			if p.waitErr != nil {
				return fmt.Errorf("agent exited at start: %w: %s", p.waitErr, p.logTail())
			}
			return fmt.Errorf("agent exited at start: %s", p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("HTTP API on %s not answering (last: %v): %w", p.HTTPAddr, last, ctx.Err())
		case <-tick.C:
		}
	}
}

// logTail is the end of the agent's log, for error messages.
func (p *shoalProc) logTail() string {
	b, err := tailFile(p.LogPath, 2000)
	if err != nil {
		return fmt.Sprintf("(log %s: %v)", p.LogPath, err)
	}
	return fmt.Sprintf("log %s ends:\n%s", p.LogPath, b)
}

// tailFile returns the last n bytes of a file, trimmed of white space.
func tailFile(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		if _, err := f.Seek(-n, io.SeekEnd); err != nil {
			return nil, err
		}
	}
	b, err := io.ReadAll(f)
	return bytes.TrimSpace(b), err
}

// Pid is the agent's process ID.
func (p *shoalProc) Pid() int { return p.Cmd.Process.Pid }

// exited reports whether the process has exited.
func (p *shoalProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill ends the agent at once with SIGKILL (no leave) and waits for it
// to be reaped. Killing an agent that has already exited does nothing.
func (p *shoalProc) Kill() error {
	defer p.transport.CloseIdleConnections()
	if p.exited() {
		return nil
	}
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill agent %s: %w", p.Name, err)
	}
	<-p.done
	return nil
}

// Stop asks the agent to leave gracefully (SIGTERM) and waits for it to
// exit, until ctx ends or Options.Timeout passes; then it kills it. The
// error says whether the agent had to be killed or exited with a failure.
func (p *shoalProc) Stop(ctx context.Context) error {
	defer p.transport.CloseIdleConnections()
	if p.exited() {
		return nil
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = p.Kill()
		return fmt.Errorf("stop agent %s: %w", p.Name, err)
	}
	timer := time.NewTimer(p.grace)
	defer timer.Stop()
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("stop agent %s: %w", p.Name, p.waitErr)
		}
		return nil
	case <-ctx.Done():
		_ = p.Kill()
		return fmt.Errorf("stop agent %s: killed, not gone after SIGTERM: %w", p.Name, ctx.Err())
	case <-timer.C:
		_ = p.Kill()
		return fmt.Errorf("stop agent %s: killed, not gone %v after SIGTERM", p.Name, p.grace)
	}
}

// RSS is the agent's resident set size in bytes (VmRSS).
func (p *shoalProc) RSS() (uint64, error) { return p.status("VmRSS") }

// PeakRSS is the largest resident set size the agent has had, in bytes
// (VmHWM).
func (p *shoalProc) PeakRSS() (uint64, error) { return p.status("VmHWM") }

func (p *shoalProc) status(field string) (uint64, error) {
	if p.exited() {
		return 0, fmt.Errorf("%s of agent %s: it has exited (%v)", field, p.Name, p.waitErr)
	}
	return procStatusBytes(p.Pid(), field)
}

// procStatusBytes reads a size field ("VmRSS", "VmHWM") of a process from
// /proc/<pid>/status, in bytes.
func procStatusBytes(pid int, field string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("%s of pid %d: %w", field, pid, err)
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s of pid %d: unexpected line %q", field, pid, strings.TrimSpace(line))
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s of pid %d: %w", field, pid, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("%s of pid %d: not in /proc/%d/status", field, pid, pid)
}

// agentClient is an API client for one agent with a pool of keep-alive
// connections large enough for the harness's concurrent requests
// (http.DefaultClient keeps two per host and would dial for the rest).
func agentClient(addr string) (*api.Client, *http.Transport) {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     time.Minute,
	}
	return &api.Client{Addr: addr, HTTPClient: &http.Client{Transport: tr}}, tr
}
