package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/api"
)

// configFile writes a config file for the agent command.
func configFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shoal.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAgentConfigFile checks the order in which settings win: a flag or
// environment variable beats the config file, which beats the defaults.
func TestAgentConfigFile(t *testing.T) {
	file := configFile(t, `{
		"node_name": "file-node", "datacenter": "file-dc",
		"ports": {"serf_lan": 8301, "http": 9500}, "client_addr": "0.0.0.0",
		"retry_join": ["10.0.0.1"], "retry_interval": "7s",
		"service": {"name": "web", "port": 80, "check": {"ttl": "10s"}}
	}`)
	fromFile := func(base agent.Config) agent.Config {
		base.NodeName, base.Datacenter = "file-node", "file-dc"
		base.Port, base.HTTPAddr, base.DNSAddr = 8301, "0.0.0.0:9500", "0.0.0.0:8600"
		base.RetryJoin, base.RetryInterval = []string{"10.0.0.1"}, 7*time.Second
		base.ConfigFile = file
		base.Services = []api.AgentServiceRegistration{{Name: "web", Port: 80, Check: &api.AgentServiceCheck{TTL: "10s"}}}
		return base
	}
	with := func(c agent.Config, change func(*agent.Config)) agent.Config {
		change(&c)
		return c
	}
	dflt, dev := agent.DefaultConfig(), agent.DevConfig()
	tests := []agentConfigCase{
		{name: "file beats defaults", args: []string{"agent", "--config", file}, want: fromFile(dflt)},
		{name: "file from the environment", args: []string{"agent"}, env: map[string]string{"SHOAL_CONFIG": file}, want: fromFile(dflt)},
		{name: "empty SHOAL_CONFIG is no file", args: []string{"agent"}, env: map[string]string{"SHOAL_CONFIG": ""}, want: dflt},
		{name: "file over dev", args: []string{"agent", "--dev", "--config", file}, want: fromFile(dev)},
		{
			name: "flags beat the file",
			args: []string{"agent", "--config", file, "--node", "flag-node", "--port", "7000",
				"--http-addr", "127.0.0.1:1", "--retry-join", "10.9.9.9", "--retry-interval", "1s"},
			want: with(fromFile(dflt), func(c *agent.Config) {
				c.NodeName, c.Port, c.HTTPAddr = "flag-node", 7000, "127.0.0.1:1"
				c.RetryJoin, c.RetryInterval = []string{"10.9.9.9"}, time.Second
			}),
		},
		{
			name: "environment beats the file",
			args: []string{"agent", "--config", file},
			env:  map[string]string{"SHOAL_NODE": "env-node", "SHOAL_DATACENTER": "env-dc", "SHOAL_HTTP_ADDR": "127.0.0.1:2"},
			want: with(fromFile(dflt), func(c *agent.Config) {
				c.NodeName, c.Datacenter, c.HTTPAddr = "env-node", "env-dc", "127.0.0.1:2"
			}),
		},
		{
			name:    "bad file",
			args:    []string{"agent", "--config", configFile(t, `{"ports": {"serf_lan": 70000}}`)},
			wantErr: "shoal.json:1:24: ports.serf_lan: 70000 is out of range 0-65535",
		},
		{
			name:    "unknown key",
			args:    []string{"agent", "--config", configFile(t, "{\n\"services\": [{\"name\": \"a\", \"port\": 1, \"chekc\": {}}]}")},
			wantErr: "shoal.json:2:39: services[0].chekc: unknown key",
		},
		{
			name:    "missing file",
			args:    []string{"agent", "--config", filepath.Join(t.TempDir(), "none.json")},
			wantErr: "none.json: no such file or directory",
		},
	}
	runAgentConfigCases(t, tests)
}

func TestAgentConfigFileLogging(t *testing.T) {
	debugJSON := configFile(t, `{"log_level": "TRACE", "log_json": true}`)
	tests := []struct {
		args []string
		env  map[string]string
		want []string // substrings of stderr
		not  []string
	}{
		{args: []string{"agent", "--config", debugJSON}, want: []string{`"level":"INFO","msg":"hello"`, `"msg":"debug-line"`}},
		{args: []string{"agent", "--config", debugJSON, "--log-level", "info"}, want: []string{`"msg":"hello"`}, not: []string{"debug-line"}},
		{args: []string{"agent", "--config", debugJSON, "--log-json=false"}, want: []string{"level=DEBUG msg=debug-line"}},
		{args: []string{"agent", "--config", debugJSON}, env: map[string]string{"SHOAL_LOG_LEVEL": "warn"}, not: []string{"hello"}},
	}
	for _, tt := range tests {
		clearEnv(t)
		for k, v := range tt.env {
			t.Setenv(k, v)
		}
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
				t.Errorf("%v %v: log %q lacks %q", tt.args, tt.env, f.err.String(), w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(f.err.String(), n) {
				t.Errorf("%v %v: log %q has %q", tt.args, tt.env, f.err.String(), n)
			}
		}
	}
}
