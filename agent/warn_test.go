package agent_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// startLogged runs an agent of cfg until the test ends and returns its log
// once it is ready.
func startLogged(t *testing.T, cfg agent.Config) string {
	t.Helper()
	var buf testutil.Buffer
	a, err := agent.New(cfg, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("agent not ready")
	}
	return buf.String()
}

// The agent warns at start when gossip is unencrypted on an address other
// hosts reach, or the API is served beyond loopback without ACLs; not
// when both are closed.
func TestStartWarnsOfOpenSettings(t *testing.T) {
	open := agent.DevConfig()
	open.NodeName, open.Port, open.DNSAddr = "open", 0, "127.0.0.1:0"
	open.BindAddr, open.HTTPAddr = "0.0.0.0", "0.0.0.0:0"
	log := startLogged(t, open)
	if !strings.Contains(log, "gossip is not encrypted") || !strings.Contains(log, "HTTP API is served beyond loopback without ACLs") {
		t.Errorf("no warnings for an open agent:\n%s", log)
	}

	closed := agent.DevConfig()
	closed.NodeName, closed.Port, closed.DNSAddr = "closed", 0, "127.0.0.1:0"
	closed.HTTPAddr = "0.0.0.0:0"
	closed.ACL = &acl.Config{Enabled: true, DefaultPolicy: "deny", InitialManagement: "root"}
	log = startLogged(t, closed)
	if strings.Contains(log, "not encrypted") || strings.Contains(log, "without ACLs") {
		t.Errorf("warnings for a closed agent:\n%s", log)
	}
}
