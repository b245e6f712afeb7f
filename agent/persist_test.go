package agent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// withDataDir gives the named node a data dir (and makes it a non-dev
// agent, since a dev agent keeps nothing).
func withDataDir(node, dir string) func(*agent.Config) {
	return func(cfg *agent.Config) {
		if cfg.NodeName == node {
			cfg.Dev, cfg.DataDir = false, dir
		}
	}
}

// A restarted agent brings back the services registered before, finds
// the cluster again through the peers it saved, and the cluster serves
// exactly those services.
func TestRestartRestoresServicesAndRejoins(t *testing.T) {
	dir := t.TempDir()
	c := testutil.NewEmptyCluster(t)
	c.Configure = withDataDir("node-2", dir)
	for _, name := range []string{"node-0", "node-1", "node-2"} {
		c.Start(name, 0)
	}
	c.JoinAll()
	n2 := c.Node("node-2")
	for _, id := range []string{"web-a", "web-b"} {
		if err := n2.Agent.RegisterService(web(id, 8080), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := n2.Agent.DeregisterService("web-a"); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-2/web-b")

	port := n2.Port
	c.Stop("node-2")
	seenBy(t, c)
	// No join given: the saved peers lead it back.
	c.Start("node-2", port)
	c.WaitMembers(converge, 3)
	seenBy(t, c, "node-2/web-b")
}

// A corrupt or truncated service file is set aside and reported; the
// agent starts with everything else.
func TestCorruptServiceFileIsSetAside(t *testing.T) {
	dir := t.TempDir()
	c := testutil.NewEmptyCluster(t)
	c.Configure = withDataDir("node-0", dir)
	n := c.Start("node-0", 0)
	if err := n.Agent.RegisterService(web("good", 8080), nil); err != nil {
		t.Fatal(err)
	}
	port := n.Port
	c.Stop("node-0")

	services := filepath.Join(dir, "services")
	if err := os.WriteFile(filepath.Join(services, "truncated.json"), []byte(`{"Version":1,"Service":{"ID":"x"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(services, "invalid.json"), []byte(`{"Version":1,"Service":{"ID":"bad/id","Name":"web","Port":1}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	n = c.Start("node-0", port)
	got := n.Instances("web")
	if len(got) != 1 || got[0].Service.ID != "good" {
		t.Fatalf("restored %+v, want only good", got)
	}
	files, err := os.ReadDir(services)
	if err != nil {
		t.Fatal(err)
	}
	aside := 0
	for _, f := range files {
		if strings.Contains(f.Name(), ".corrupt-") {
			aside++
		}
	}
	if aside != 2 {
		t.Errorf("%d files set aside, want 2 (%v)", aside, files)
	}
	var local []catalog.Service
	n.Agent.Read(func(cat *catalog.Catalog) { local = cat.LocalServices() })
	if len(local) != 1 {
		t.Errorf("local services %+v", local)
	}
}
