package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/agent"
)

// clearEnv unsets, for the test's duration, every SHOAL_ variable the
// command line reads, so that the caller's environment cannot leak in.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, envPrefix) && k != "SHOAL_TEST_LOG" {
			t.Setenv(k, "") // restores the old value at the end
			os.Unsetenv(k)
		}
	}
	t.Setenv("CONSUL_HTTP_TOKEN", "")
}

// fakeShell is a shell whose agent is a stub: run records the
// configuration it would have started and calls onRun, if set.
type fakeShell struct {
	*shell
	out, err bytes.Buffer
	started  bool
	cfg      agent.Config
	sigs     chan os.Signal
	hangups  chan os.Signal
	exits    chan int
	onRun    func(ctx context.Context, log *slog.Logger) error
}

func newFakeShell() *fakeShell {
	f := &fakeShell{sigs: make(chan os.Signal, 2), hangups: make(chan os.Signal, 1), exits: make(chan int, 1)}
	f.shell = &shell{
		stdout: &f.out,
		stderr: &f.err,
		runAgent: func(ctx context.Context, cfg agent.Config, log *slog.Logger, _ <-chan os.Signal) error {
			f.started, f.cfg = true, cfg
			if f.onRun != nil {
				return f.onRun(ctx, log)
			}
			return nil
		},
		signals: func() (<-chan os.Signal, func()) { return f.sigs, func() {} },
		hangups: func() (<-chan os.Signal, func()) { return f.hangups, func() {} },
		exit:    func(code int) { f.exits <- code },
	}
	return f
}

// oneErrorLine checks that stderr is exactly one line, "shoal: ...".
func oneErrorLine(t *testing.T, stderr string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "shoal: ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr = %q, want one line \"shoal: ...\"", stderr)
	}
}

const testKey = "Dbt6cP3ja1VpSPpGZJrHi/h+O60AMEb3sDdAL/RMmPA="

func TestAgentConfig(t *testing.T) {
	dflt, dev := agent.DefaultConfig(), agent.DevConfig()
	with := func(base agent.Config, change func(*agent.Config)) agent.Config {
		change(&base)
		return base
	}
	everything := func(c *agent.Config) {
		c.NodeName, c.Datacenter = "n1", "dc2"
		c.BindAddr, c.AdvertiseAddr = "10.0.0.1", "10.0.0.2"
		c.Port, c.HTTPAddr = 0, "127.0.0.1:9500"
		c.Join, c.RetryJoin = []string{"a", "b", "c:7946"}, []string{"d"}
		c.RetryInterval, c.RetryMax = 5*time.Second, 3
		c.DataDir, c.EncryptKey = "/var/lib/shoal", testKey
	}
	tests := []agentConfigCase{
		{name: "defaults", args: []string{"agent"}, want: dflt},
		{name: "dev", args: []string{"agent", "--dev"}, want: dev},
		{name: "dev from env", args: []string{"agent"}, env: map[string]string{"SHOAL_DEV": "true"}, want: dev},
		{
			name: "every flag",
			args: []string{"agent", "--node", "n1", "--datacenter", "dc2", "--bind", "10.0.0.1",
				"--advertise", "10.0.0.2", "--port", "0", "--http-addr", "127.0.0.1:9500",
				"--join", "a", "--join", "b, c:7946", "--retry-join", "d", "--retry-interval", "5s",
				"--retry-max", "3", "--data-dir", "/var/lib/shoal", "--encrypt", testKey},
			want: with(dflt, everything),
		},
		{
			name: "every environment variable",
			args: []string{"agent"},
			env: map[string]string{
				"SHOAL_NODE": "n1", "SHOAL_DATACENTER": "dc2", "SHOAL_BIND": "10.0.0.1",
				"SHOAL_ADVERTISE": "10.0.0.2", "SHOAL_PORT": "0", "SHOAL_HTTP_ADDR": "127.0.0.1:9500",
				"SHOAL_JOIN": "a,b,c:7946", "SHOAL_RETRY_JOIN": "d", "SHOAL_RETRY_INTERVAL": "5s",
				"SHOAL_RETRY_MAX": "3", "SHOAL_DATA_DIR": "/var/lib/shoal", "SHOAL_ENCRYPT": testKey,
				"SHOAL_LOG_LEVEL": "debug", "SHOAL_LOG_JSON": "1",
			},
			want: with(dflt, everything),
		},
		{
			name: "a flag beats its environment variable",
			args: []string{"agent", "--node", "flag", "--port", "7000"},
			env:  map[string]string{"SHOAL_NODE": "env", "SHOAL_PORT": "8000"},
			want: with(dflt, func(c *agent.Config) { c.NodeName, c.Port = "flag", 7000 }),
		},
		{
			name: "dev with changes",
			args: []string{"agent", "--dev", "--node", "d1", "--port", "0", "--bind", "{{ GetPrivateIP }}"},
			want: with(dev, func(c *agent.Config) { c.NodeName, c.Port, c.BindAddr = "d1", 0, "{{ GetPrivateIP }}" }),
		},
		{
			name: "global --http-addr",
			args: []string{"--http-addr", "127.0.0.1:1", "agent"},
			want: with(dflt, func(c *agent.Config) { c.HTTPAddr = "127.0.0.1:1" }),
		},
		{
			name: "global --http-addr beats the environment",
			args: []string{"--http-addr", "127.0.0.1:1", "agent"},
			env:  map[string]string{"SHOAL_HTTP_ADDR": "127.0.0.1:2"},
			want: with(dflt, func(c *agent.Config) { c.HTTPAddr = "127.0.0.1:1" }),
		},
		{
			name: "--http-addr after the command beats the one before",
			args: []string{"--http-addr", "127.0.0.1:1", "agent", "--http-addr", "127.0.0.1:3"},
			env:  map[string]string{"SHOAL_HTTP_ADDR": "127.0.0.1:2"},
			want: with(dflt, func(c *agent.Config) { c.HTTPAddr = "127.0.0.1:3" }),
		},
		{
			name: "empty SHOAL_HTTP_ADDR keeps the default",
			args: []string{"agent"},
			env:  map[string]string{"SHOAL_HTTP_ADDR": ""},
			want: dflt,
		},
		{
			name: "dns flags",
			args: []string{"agent", "--dns-addr", "0.0.0.0:53", "--domain", "consul", "--dns-service-ttl", "5s", "--dns-node-ttl", "1m"},
			want: with(dflt, func(c *agent.Config) {
				c.DNSAddr, c.Domain, c.DNSServiceTTL, c.DNSNodeTTL = "0.0.0.0:53", "consul", 5*time.Second, time.Minute
			}),
		},
		{name: "dns off", args: []string{"agent", "--dns-addr", ""}, want: with(dflt, func(c *agent.Config) { c.DNSAddr = "" })},
		{name: "gossip compression", args: []string{"agent", "--gossip-compression"}, want: with(dflt, func(c *agent.Config) { c.GossipCompression = true })},
		{name: "gossip compression from the environment", args: []string{"agent"}, env: map[string]string{"SHOAL_GOSSIP_COMPRESSION": "true"},
			want: with(dflt, func(c *agent.Config) { c.GossipCompression = true })},
		{
			name: "dns from the environment",
			args: []string{"agent"},
			env:  map[string]string{"SHOAL_DNS_ADDR": "127.0.0.1:53", "SHOAL_DOMAIN": "example.internal", "SHOAL_DNS_SERVICE_TTL": "10s"},
			want: with(dflt, func(c *agent.Config) {
				c.DNSAddr, c.Domain, c.DNSServiceTTL = "127.0.0.1:53", "example.internal", 10*time.Second
			}),
		},
		{name: "bad port", args: []string{"agent", "--port", "x"}, wantErr: "port"},
		{name: "bad port from env", args: []string{"agent"}, env: map[string]string{"SHOAL_PORT": "x"}, wantErr: "SHOAL_PORT"},
		{name: "bad duration", args: []string{"agent", "--retry-interval", "5"}, wantErr: "retry-interval"},
		{name: "bad log level", args: []string{"agent", "--log-level", "loud"}, wantErr: "log-level"},
		{name: "argument", args: []string{"agent", "extra"}, wantErr: `unexpected argument "extra"`},
		{name: "unknown flag", args: []string{"agent", "--nodes", "x"}, wantErr: "agent: flag provided but not defined: -nodes"},
	}
	runAgentConfigCases(t, tests)
}

func TestAgentLogging(t *testing.T) {
	tests := []struct {
		args []string
		want []string // substrings of stderr
		not  []string
	}{
		{[]string{"agent"}, []string{"level=INFO msg=hello"}, []string{"debug-line"}},
		{[]string{"agent", "--log-json"}, []string{`"level":"INFO","msg":"hello"`}, []string{"debug-line"}},
		{[]string{"agent", "--log-level", "debug"}, []string{"msg=hello", "msg=debug-line"}, nil},
		{[]string{"agent", "--log-level", "WARN"}, nil, []string{"hello"}},
	}
	for _, tt := range tests {
		clearEnv(t)
		f := newFakeShell()
		f.onRun = func(_ context.Context, log *slog.Logger) error {
			log.Info("hello")
			log.Debug("debug-line")
			return nil
		}
		if code := f.run(tt.args); code != 0 {
			t.Fatalf("%v: exit %d: %s", tt.args, code, f.err.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(f.err.String(), w) {
				t.Errorf("%v: log %q lacks %q", tt.args, f.err.String(), w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(f.err.String(), n) {
				t.Errorf("%v: log %q has %q", tt.args, f.err.String(), n)
			}
		}
	}
}

func TestAgentErrorIsOneLine(t *testing.T) {
	clearEnv(t)
	f := newFakeShell()
	f.onRun = func(context.Context, *slog.Logger) error {
		return errors.New("gossip: listen udp 0.0.0.0:7946: address in use\n\tsecond line\n")
	}
	if code := f.run([]string{"agent"}); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if got, want := f.err.String(), "shoal: gossip: listen udp 0.0.0.0:7946: address in use; second line\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func TestSignals(t *testing.T) {
	clearEnv(t)
	f := newFakeShell()
	running := make(chan struct{})
	f.onRun = func(ctx context.Context, log *slog.Logger) error {
		close(running)
		<-ctx.Done() // the first signal: leave gracefully
		f.sigs <- syscall.SIGTERM
		select { // the second signal: exit at once
		case code := <-f.exits:
			if code != 1 {
				t.Errorf("exit(%d) at the second signal, want exit(1)", code)
			}
		case <-time.After(10 * time.Second):
			t.Error("the second signal did not exit")
		}
		return nil
	}
	done := make(chan int, 1)
	go func() { done <- f.run([]string{"agent"}) }()
	select {
	case <-running:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not start")
	}
	f.sigs <- os.Interrupt
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after a graceful stop, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first signal did not stop the agent")
	}
	if !strings.Contains(f.err.String(), "signal again") {
		t.Errorf("log %q does not say a second signal exits at once", f.err.String())
	}
}

func TestSignalsStopCleanly(t *testing.T) {
	f := newFakeShell()
	ctx, stop := f.onSignals(context.Background(), slog.New(slog.DiscardHandler))
	stop() // no signal came: nothing exits, the context ends
	select {
	case <-ctx.Done():
	default:
		t.Error("stop left the context running")
	}
	select {
	case code := <-f.exits:
		t.Errorf("exit(%d) without a signal", code)
	default:
	}
}

func TestSplitList(t *testing.T) {
	got := splitList([]string{"a,b", " c ", "", ",d,,", "[::1]:7946"})
	want := []string{"a", "b", "c", "d", "[::1]:7946"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("splitList = %q, want %q", got, want)
	}
	if got := splitList(nil); got != nil {
		t.Errorf("splitList(nil) = %q, want nil", got)
	}
}

// agentConfigCase is one `shoal agent` command line and the configuration
// it must give the agent, or the error it must fail with.
type agentConfigCase struct {
	name    string
	args    []string
	env     map[string]string
	want    agent.Config
	wantErr string // substring of the error line; "" for success
}

// runAgentConfigCases runs each case with a stub agent.
func runAgentConfigCases(t *testing.T, tests []agentConfigCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			f := newFakeShell()
			code := f.run(tt.args)
			if tt.wantErr != "" {
				if code != 1 || f.started {
					t.Fatalf("exit %d, agent started %v; want 1 and no agent", code, f.started)
				}
				oneErrorLine(t, f.err.String())
				if !strings.Contains(f.err.String(), tt.wantErr) {
					t.Errorf("stderr = %q, want it to mention %q", f.err.String(), tt.wantErr)
				}
				return
			}
			if code != 0 || !f.started {
				t.Fatalf("exit %d, agent started %v, stderr %q", code, f.started, f.err.String())
			}
			if !reflect.DeepEqual(f.cfg, tt.want) {
				t.Errorf("config = %+v\nwant     %+v", f.cfg, tt.want)
			}
		})
	}
}
