package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/internal/testutil"
)

const (
	key1 = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
	key2 = "H2HJBKPqRXvxdb9wT8MiWWs6XiPC0ZrF5D0oq9pM6mE="
)

// keyring lists the cluster's keys through HashiCorp's client and checks
// the one LAN pool answered.
func keyring(t *testing.T, cl *consul.Client) *consul.KeyringResponse {
	t.Helper()
	rs, err := cl.Operator().KeyringList(nil)
	if err != nil {
		t.Fatalf("keyring list: %v", err)
	}
	if len(rs) != 1 || rs[0].WAN || rs[0].Datacenter != "dc1" {
		t.Fatalf("keyring list: %+v", rs)
	}
	return rs[0]
}

func wantKeys(t *testing.T, r *consul.KeyringResponse, nodes int, keys map[string]int, primary string) {
	t.Helper()
	if r.NumNodes != nodes || len(r.Messages) != 0 {
		t.Fatalf("keyring of %d nodes, messages %v; want %d nodes", r.NumNodes, r.Messages, nodes)
	}
	if fmt.Sprint(r.Keys) != fmt.Sprint(keys) {
		t.Fatalf("keys %v, want %v", r.Keys, keys)
	}
	if fmt.Sprint(r.PrimaryKeys) != fmt.Sprint(map[string]int{primary: nodes}) {
		t.Fatalf("primary keys %v, want %s on %d", r.PrimaryKeys, primary, nodes)
	}
}

// watchWhole polls every agent until ctx ends and returns the first moment
// any of them saw fewer than n members alive or fewer than n passing
// instances of web: during a rotation nothing may be lost or hidden.
func watchWhole(ctx context.Context, c *testutil.Cluster, n int) <-chan error {
	out := make(chan error, 1)
	go func() {
		defer close(out)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, node := range c.Nodes() {
				if got := node.Alive(); got < n {
					out <- fmt.Errorf("%s saw %d members alive", node.Name, got)
					return
				}
				passing := 0
				for _, in := range node.Instances("web") {
					if in.Status == catalog.HealthPassing {
						passing++
					}
				}
				if passing < n {
					out <- fmt.Errorf("%s served %d passing instances of web", node.Name, passing)
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// The gossip key of a live 5-agent cluster is rotated through HashiCorp's
// client (install, use, remove), as Consul's keyring is: at every moment
// every agent sees every member alive and every instance passing; the new
// key carries new writes; the old key no longer joins; each agent keeps
// its keyring in its data dir, so a restart with the old key in its config
// still speaks the new one.
func TestKeyringRotationOnLiveCluster(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	dirs := map[string]string{}
	var dmu sync.Mutex
	c.Configure = func(cfg *agent.Config) {
		dmu.Lock()
		defer dmu.Unlock()
		if dirs[cfg.NodeName] == "" {
			dirs[cfg.NodeName] = t.TempDir()
		}
		cfg.Dev, cfg.DataDir = false, dirs[cfg.NodeName]
		cfg.EncryptKey = key1
	}
	const n = 5
	for i := range n {
		c.Start(fmt.Sprintf("node-%d", i), 0)
	}
	c.JoinAll()
	for i, node := range c.Nodes() {
		if err := node.Agent.RegisterService(web(fmt.Sprintf("web-%d", i), 8080+i), nil); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, converge, func() error {
		for _, node := range c.Nodes() {
			if got := len(node.Instances("web")); got != n {
				return fmt.Errorf("%s serves %d instances of web", node.Name, got)
			}
		}
		return nil
	})
	cl := consulClient(t, c.Node("node-2"))
	wantKeys(t, keyring(t, cl), n, map[string]int{key1: n}, key1)

	ctx, cancel := context.WithCancel(context.Background())
	broken := watchWhole(ctx, c, n)
	op := cl.Operator()
	if err := op.KeyringInstall(key2, nil); err != nil {
		t.Fatalf("install: %v", err)
	}
	wantKeys(t, keyring(t, cl), n, map[string]int{key1: n, key2: n}, key1)
	if err := op.KeyringUse(key2, nil); err != nil {
		t.Fatalf("use: %v", err)
	}
	wantKeys(t, keyring(t, cl), n, map[string]int{key1: n, key2: n}, key2)
	if err := op.KeyringRemove(key1, nil); err != nil {
		t.Fatalf("remove: %v", err)
	}
	wantKeys(t, keyring(t, cl), n, map[string]int{key2: n}, key2)
	if err := op.KeyringRemove(key2, nil); err == nil || !strings.Contains(err.Error(), "removing the primary key is not allowed") ||
		!strings.Contains(err.Error(), "5/5 nodes reported failure") {
		t.Fatalf("removing the primary key: %v", err)
	}
	// A write under the new key reaches everyone.
	if err := c.Node("node-4").Agent.RegisterService(web("extra", 9000), nil); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-0/web-0", "node-1/web-1", "node-2/web-2", "node-3/web-3", "node-4/extra", "node-4/web-4")
	cancel()
	if err := <-broken; err != nil {
		t.Fatalf("during the rotation %v", err)
	}

	for name, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "local.keyring"))
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		if err := json.Unmarshal(b, &keys); err != nil || len(keys) != 1 || keys[0] != key2 {
			t.Fatalf("%s keeps %s (%v)", name, b, err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "local.keyring")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s keyring file mode: %v %v", name, fi.Mode(), err)
		}
	}

	// An agent with only the old key is no longer let in.
	c.Configure = func(cfg *agent.Config) { cfg.EncryptKey = key1 }
	old := c.Start("outsider", 0)
	if _, err := old.Agent.Join(context.Background(), []string{c.Node("node-0").Gossip}); err == nil {
		t.Fatal("an agent with the removed key joined")
	}
	c.Stop("outsider")

	// A restart keeps the rotated keyring, though the config still says key1.
	c.Configure = func(cfg *agent.Config) {
		cfg.Dev, cfg.DataDir, cfg.EncryptKey = false, dirs[cfg.NodeName], key1
	}
	port := c.Node("node-3").Port
	c.Stop("node-3")
	c.Start("node-3", port)
	c.WaitMembers(converge, n)
	wantKeys(t, keyring(t, consulClient(t, c.Node("node-3"))), n, map[string]int{key2: n}, key2)
}

// Keyring operations answer clear errors: a malformed key is a 400 naming
// Key, an agent without encryption says so, and the keyring resource
// needs keyring:read to list and keyring:write to change.
func TestKeyringErrorsAndACLs(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	c.Start("plain", 0)
	cl := consulClient(t, c.Node("plain"))
	if _, err := cl.Operator().KeyringList(nil); err == nil || !strings.Contains(err.Error(), "gossip encryption is not enabled") {
		t.Fatalf("list without encryption: %v", err)
	}
	c.Configure = func(cfg *agent.Config) {
		cfg.EncryptKey = key1
		cfg.ACL = aclConfig()
		cfg.ACL.Policies = append(cfg.ACL.Policies, aclPolicy("keys-read", `{"keyring": "read"}`))
		cfg.ACL.Tokens = append(cfg.ACL.Tokens, aclToken("auditor", "keys-read"))
	}
	n := c.Start("secure", 0)
	root, auditor, anon := tokenClient(t, n, "root"), tokenClient(t, n, "auditor"), tokenClient(t, n, "")
	for _, bad := range []struct{ key, want string }{
		{"", "Key: missing"},
		{"not base64!", "Key: not base64"},
		{"c2hvcnQ=", "Key: 5 bytes"},
	} {
		err := root.Operator().KeyringInstall(bad.key, nil)
		if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("install %q: %v", bad.key, err)
		}
	}
	if rs, err := auditor.Operator().KeyringList(nil); err != nil || rs[0].Keys[key1] != 1 {
		t.Fatalf("auditor lists: %v %+v", err, rs)
	}
	err := auditor.Operator().KeyringInstall(key2, nil)
	if statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "keyring:write") {
		t.Fatalf("auditor installs: %v", err)
	}
	if _, err := anon.Operator().KeyringList(nil); statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "keyring:read") {
		t.Fatalf("anonymous lists: %v", err)
	}
	if rs, err := root.Operator().KeyringList(nil); err != nil || len(rs[0].Keys) != 1 {
		t.Fatalf("after refused writes: %v %+v", err, rs)
	}
	var se consul.StatusError
	if !errors.As(auditor.Operator().KeyringUse(key2, nil), &se) {
		t.Fatal("use without write succeeded")
	}
}

func aclPolicy(name, rules string) acl.PolicyConfig {
	return acl.PolicyConfig{Name: name, Rules: json.RawMessage(rules)}
}

func aclToken(secret string, policies ...string) acl.TokenConfig {
	return acl.TokenConfig{SecretID: secret, Policies: policies}
}
