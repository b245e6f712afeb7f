package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// shoal runs the command line in-process and returns its exit status and
// output.
func shoal(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	t.Logf("shoal %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

// mustShoal runs the command line and fails the test unless it succeeds
// quietly; it returns stdout.
func mustShoal(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errb := shoal(t, args...)
	if code != 0 || errb != "" {
		t.Fatalf("shoal %q: exit %d, stderr %q", args, code, errb)
	}
	return out
}

// failShoal runs the command line and fails the test unless it fails
// with one line of stderr and nothing on stdout; it returns that line.
func failShoal(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errb := shoal(t, args...)
	if code != 1 || out != "" {
		t.Fatalf("shoal %q: exit %d, stdout %q; want 1 and nothing", args, code, out)
	}
	oneErrorLine(t, errb)
	return errb
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output %q is not the JSON wanted: %v", s, err)
	}
	return v
}

// instances runs `shoal services NAME --json` with extra flags.
func instances(t *testing.T, addr, name string, flags ...string) []*api.ServiceEntry {
	t.Helper()
	args := append([]string{"--http-addr", addr, "services", name, "--json"}, flags...)
	return decode[[]*api.ServiceEntry](t, mustShoal(t, args...))
}

// TestEndToEnd drives the client commands against a real dev agent run in
// this process.
func TestEndToEnd(t *testing.T) {
	clearEnv(t)
	cluster := testutil.NewEmptyCluster(t)
	node := cluster.Start("e2e", 0)
	addr := node.Agent.HTTPAddr()
	g := []string{"--http-addr", addr}
	with := func(args ...string) []string { return append(append([]string{}, g...), args...) }

	out := mustShoal(t, with("register", "--name", "web", "--port", "8080", "--id", "web-1",
		"--tag", "v1", "--tag", "primary", "--meta", "env=test", "--meta", "url=http://x/?a=b")...)
	if out != "Registered service \"web-1\".\n" {
		t.Errorf("register said %q", out)
	}
	// --http-addr after the command, and flags after the arguments.
	mustShoal(t, "register", "--name", "web", "--port", "8081", "--id", "web-2", "--tag", "v2", "--http-addr", addr)
	mustShoal(t, with("register", "--name", "db", "--port", "5432")...)

	// services: every service with its tags.
	testutil.WaitFor(t, 10*time.Second, func() error {
		services := decode[map[string][]string](t, mustShoal(t, with("services", "--json")...))
		if len(services["web"]) != 3 || services["db"] == nil {
			return fmt.Errorf("services = %v, want web with v1, primary, v2 and db", services)
		}
		return nil
	})
	table := mustShoal(t, with("services")...)
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "Name") || strings.Fields(lines[1])[0] != "db" ||
		strings.Fields(lines[2])[0] != "web" || !strings.Contains(lines[2], "v1") {
		t.Errorf("services table:\n%s", table)
	}

	// services NAME: the instances, filtered.
	all := instances(t, addr, "web")
	if len(all) != 2 {
		t.Fatalf("services web: %d instances, want 2", len(all))
	}
	v1 := instances(t, addr, "web", "--tag", "v1", "--passing")
	if len(v1) != 1 || v1[0].Service.ID != "web-1" || v1[0].Service.Port != 8080 ||
		v1[0].Service.Meta["url"] != "http://x/?a=b" || v1[0].Node.Node != "e2e" {
		t.Errorf("services web --tag v1 --passing = %s", dump(v1))
	}
	if got := instances(t, addr, "web", "--tag", "v1", "--tag", "v2"); len(got) != 0 {
		t.Errorf("two tags no instance has both: got %s", dump(got))
	}
	if got := instances(t, addr, "nosuch"); len(got) != 0 {
		t.Errorf("unknown service: got %s", dump(got))
	}
	table = mustShoal(t, with("services", "web", "--tag", "v2")...)
	lines = strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "Node Address Port ID Tags Status" {
		t.Fatalf("services web table:\n%s", table)
	}
	if got, want := strings.Fields(lines[1]), []string{"e2e", "127.0.0.1", "8081", "web-2", "v2", "passing"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("row %q, want the fields %q", lines[1], want)
	}

	// members: this agent, alive, in dc1.
	members := decode[[]*api.AgentMember](t, mustShoal(t, with("members", "--json")...))
	if len(members) != 1 || members[0].Name != "e2e" || members[0].Status != api.MemberAlive ||
		members[0].Tags["dc"] != "dc1" || int(members[0].Port) != node.Port {
		t.Errorf("members = %s", dump(members))
	}
	table = mustShoal(t, with("members")...)
	if want := fmt.Sprintf("e2e 127.0.0.1:%d alive dc1", node.Port); !strings.Contains(squeeze(table), want) {
		t.Errorf("members table:\n%s\nwant a row %q", table, want)
	}
	// SHOAL_HTTP_ADDR aims the client when no flag does.
	t.Setenv(api.EnvHTTPAddr, addr)
	mustShoal(t, "members")

	// The agent refuses a bad registration with one line naming the field.
	if line := failShoal(t, with("register", "--name", "web", "--port", "70000")...); !strings.Contains(line, "Port") ||
		!strings.Contains(line, "400") {
		t.Errorf("bad port: %q", line)
	}

	// deregister.
	if out := mustShoal(t, with("deregister", "web-1")...); out != "Deregistered service \"web-1\".\n" {
		t.Errorf("deregister said %q", out)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if got := instances(t, addr, "web"); len(got) != 1 || got[0].Service.ID != "web-2" {
			return fmt.Errorf("after deregister web-1: %s", dump(got))
		}
		return nil
	})
	if line := failShoal(t, with("deregister", "web-1")...); !strings.Contains(line, "404") {
		t.Errorf("deregister twice: %q, want a 404", line)
	}
	mustShoal(t, with("deregister", "web-2")...)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if services := decode[map[string][]string](t, mustShoal(t, with("services", "--json")...)); services["web"] != nil {
			return fmt.Errorf("web is still listed: %v", services)
		}
		return nil
	})

	// leave: the agent leaves and stops answering.
	if out := mustShoal(t, with("leave")...); out != "Graceful leave complete.\n" {
		t.Errorf("leave said %q", out)
	}
	testutil.WaitFor(t, 20*time.Second, func() error {
		code, _, errb := shoal(t, with("members")...)
		if code != 1 || !strings.Contains(errb, api.ErrAgentUnreachable.Error()) {
			return fmt.Errorf("members after leave: exit %d, %q", code, errb)
		}
		return nil
	})
}

// TestJoin joins two agents through `shoal join`.
func TestJoin(t *testing.T) {
	clearEnv(t)
	cluster := testutil.NewEmptyCluster(t)
	a, b := cluster.Start("join-a", 0), cluster.Start("join-b", 0)
	addr := b.Agent.HTTPAddr()

	if line := failShoal(t, "join", "--http-addr", addr, testutil.FreeAddr(t)); !strings.Contains(line, "join 127.0.0.1:") {
		t.Errorf("join to nowhere: %q", line)
	}
	if out := mustShoal(t, "join", "--http-addr", addr, a.Gossip); out != "Joined the cluster through "+a.Gossip+".\n" {
		t.Errorf("join said %q", out)
	}
	testutil.WaitFor(t, 20*time.Second, func() error {
		members := decode[[]*api.AgentMember](t, mustShoal(t, "members", "--json", "--http-addr", addr))
		alive := 0
		for _, m := range members {
			if m.Status == api.MemberAlive {
				alive++
			}
		}
		if alive != 2 {
			return fmt.Errorf("members = %s, want join-a and join-b alive", dump(members))
		}
		return nil
	})
}

// TestAgentCommand runs `shoal agent` itself with a real agent, and stops
// it once by a leave request and once by a signal. While it runs the test
// talks to it through package api, not run: urfave/cli/v2 keeps the help
// flag in a package variable, so two runs must not overlap.
func TestAgentCommand(t *testing.T) {
	for _, stopBy := range []string{"leave", "signal"} {
		t.Run(stopBy, func(t *testing.T) {
			clearEnv(t)
			addr := testutil.FreeAddr(t)
			a := startAgentCommand(t, "--dev", "--node", "cli-"+stopBy, "--port", "0", "--http-addr", addr)
			c := &api.Client{Addr: addr}
			ctx := context.Background()
			testutil.WaitFor(t, 30*time.Second, func() error {
				a.running(t)
				m, err := c.Members(ctx)
				if err != nil {
					return err
				}
				if len(m) != 1 || m[0].Name != "cli-"+stopBy {
					return fmt.Errorf("members = %s", dump(m))
				}
				return nil
			})
			if err := c.Register(ctx, &api.AgentServiceRegistration{Name: "web", Port: 80}); err != nil {
				t.Fatal(err)
			}

			switch stopBy {
			case "leave":
				if err := c.Leave(ctx); err != nil {
					t.Fatal(err)
				}
			case "signal":
				a.sigs <- os.Interrupt
			}
			a.wait(t)
			select {
			case code := <-a.exits:
				t.Errorf("exit(%d) was called", code)
			default:
			}
			if !strings.Contains(a.logs.String(), "level=INFO") {
				t.Errorf("no text log lines on stderr: %q", a.logs.String())
			}
		})
	}
}

// agentCommand is `shoal agent` run in this process with a real agent.
type agentCommand struct {
	*fakeShell
	logs *syncBuffer
	done chan int // its exit status
}

// startAgentCommand runs `shoal agent args...` in this process with a
// real agent.
func startAgentCommand(t *testing.T, args ...string) *agentCommand {
	t.Helper()
	a := &agentCommand{fakeShell: newFakeShell(), logs: &syncBuffer{}, done: make(chan int, 1)}
	a.runAgent, a.stderr = runAgent, a.logs
	// Any free DNS port: the default one may be taken by another test.
	go func() { a.done <- a.run(append([]string{"agent", "--dns-addr", "127.0.0.1:0"}, args...)) }()
	return a
}

// running fails the test if the command has exited.
func (a *agentCommand) running(t *testing.T) {
	t.Helper()
	select {
	case code := <-a.done:
		t.Fatalf("shoal agent exited %d: %s", code, a.logs.String())
	default:
	}
}

// wait waits until the command exits, which must be with status 0.
func (a *agentCommand) wait(t *testing.T) {
	t.Helper()
	select {
	case code := <-a.done:
		if code != 0 {
			t.Errorf("shoal agent exited %d: %s", code, a.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("shoal agent did not stop: %s", a.logs.String())
	}
}

// syncBuffer is what the agent's goroutines write to while the test reads.
type syncBuffer = testutil.Buffer

// squeeze folds runs of blanks into one space.
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The CLI sends --token, or $SHOAL_HTTP_TOKEN, or $CONSUL_HTTP_TOKEN; a
// denied command exits 1 with the agent's one line.
func TestToken(t *testing.T) {
	clearEnv(t)
	cluster := testutil.NewEmptyCluster(t)
	cluster.Configure = func(cfg *agent.Config) {
		cfg.ACL = &acl.Config{Enabled: true, DefaultPolicy: "deny", InitialManagement: "root"}
	}
	addr := cluster.Start("tok-a", 0).Agent.HTTPAddr()
	reg := []string{"register", "--http-addr", addr, "--name", "web", "--port", "80"}
	if line := failShoal(t, reg...); !strings.Contains(line, "Permission denied: token lacks permission 'service:write' on \"web\"") {
		t.Errorf("without a token: %q", line)
	}
	if line := failShoal(t, append([]string{"--token", "nope"}, reg...)...); !strings.Contains(line, "ACL not found") {
		t.Errorf("unknown token: %q", line)
	}
	mustShoal(t, append([]string{"--token", "root"}, reg...)...)
	for _, env := range []string{api.EnvHTTPToken, api.EnvConsulHTTPToken} {
		t.Setenv(env, "root")
		if out := mustShoal(t, "services", "--http-addr", addr); !strings.Contains(out, "web") {
			t.Errorf("%s: services %q", env, out)
		}
		t.Setenv(env, "")
	}
	// Without a token the default policy hides every service.
	if out := mustShoal(t, "services", "--http-addr", addr); strings.Contains(out, "web") {
		t.Errorf("no token: services %q", out)
	}
}

// A CA file that does not load fails the command with one line naming it.
func TestTLSFlagErrors(t *testing.T) {
	clearEnv(t)
	t.Setenv("CONSUL_CACERT", "")
	if line := failShoal(t, "--ca-file", "/nonexistent/ca.pem", "members", "--http-addr", "https://127.0.0.1:1"); !strings.Contains(line, "ca-file: ") {
		t.Errorf("missing CA file: %q", line)
	}
}
