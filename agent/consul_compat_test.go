package agent_test

import (
	"fmt"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/shoal-sd/shoal/internal/testutil"
)

func consulClient(t *testing.T, n *testutil.Node) *consul.Client {
	t.Helper()
	cfg := consul.DefaultConfig()
	cfg.Address = n.Agent.HTTPAddr()
	cl, err := consul.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// HashiCorp's own Consul client, unchanged, registers on one agent and
// discovers on another.
func TestConsulClientAgainstShoal(t *testing.T) {
	c := testutil.NewCluster(t, 3)
	a, b := consulClient(t, c.Node("node-0")), consulClient(t, c.Node("node-2"))

	reg := &consul.AgentServiceRegistration{
		ID: "web-1", Name: "web", Tags: []string{"v1", "blue"}, Port: 8080, Address: "10.1.2.3",
		Meta: map[string]string{"version": "1.2"}, Weights: &consul.AgentWeights{Passing: 3, Warning: 1},
	}
	if err := a.Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register: %v", err)
	}
	local, err := a.Agent().Services()
	if err != nil || local["web-1"] == nil || local["web-1"].Port != 8080 {
		t.Fatalf("agent services: %v %+v", err, local)
	}

	var entries []*consul.ServiceEntry
	var meta *consul.QueryMeta
	testutil.WaitFor(t, converge, func() error {
		entries, meta, err = b.Health().Service("web", "", true, nil)
		if err != nil {
			return err
		}
		if len(entries) != 1 {
			return fmt.Errorf("%d entries", len(entries))
		}
		return nil
	})
	e := entries[0]
	if e.Service.ID != "web-1" || e.Service.Service != "web" || e.Service.Port != 8080 || e.Service.Address != "10.1.2.3" ||
		e.Service.Meta["version"] != "1.2" || len(e.Service.Tags) != 2 || e.Service.Weights.Passing != 3 {
		t.Errorf("service as read on another agent: %+v", e.Service)
	}
	if e.Node.Node != "node-0" || e.Node.Datacenter != "dc1" || e.Node.Address != "127.0.0.1" {
		t.Errorf("node: %+v", e.Node)
	}
	if len(e.Checks) != 1 || e.Checks[0].CheckID != "serfHealth" || e.Checks[0].Status != consul.HealthPassing {
		t.Errorf("checks: %+v", e.Checks)
	}
	if meta.LastIndex == 0 {
		t.Error("X-Consul-Index missing")
	}

	// Tag filter on the catalog.
	blue, _, err := b.Catalog().Service("web", "blue", nil)
	if err != nil || len(blue) != 1 || blue[0].ServiceAddress != "10.1.2.3" || blue[0].Node != "node-0" {
		t.Fatalf("catalog tag blue: %v %+v", err, blue)
	}
	green, _, err := b.Catalog().Service("web", "green", nil)
	if err != nil || len(green) != 0 {
		t.Fatalf("catalog tag green: %v %+v", err, green)
	}
	services, _, err := b.Catalog().Services(nil)
	if err != nil || len(services["web"]) != 2 {
		t.Fatalf("catalog services: %v %+v", err, services)
	}

	// A blocking query on agent B wakes when agent A registers.
	type result struct {
		entries []*consul.ServiceEntry
		meta    *consul.QueryMeta
		err     error
	}
	done := make(chan result, 1)
	go func() {
		es, m, err := b.Health().Service("web", "", true, &consul.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		done <- result{es, m, err}
	}()
	reg2 := *reg
	reg2.ID, reg2.Port = "web-2", 8081
	if err := a.Agent().ServiceRegister(&reg2); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || len(r.entries) != 2 || r.meta.LastIndex <= meta.LastIndex {
			t.Fatalf("blocking query: %v, %d entries, index %d after %d", r.err, len(r.entries), r.meta.LastIndex, meta.LastIndex)
		}
	case <-time.After(converge):
		t.Fatal("blocking query did not wake on a remote registration")
	}

	members, err := b.Agent().Members(false)
	if err != nil || len(members) != 3 {
		t.Fatalf("members: %v %+v", err, members)
	}
	name, err := b.Agent().NodeName()
	if err != nil || name != "node-2" {
		t.Fatalf("self: %q %v", name, err)
	}
	if leader, err := b.Status().Leader(); err != nil || leader == "" {
		t.Fatalf("status/leader: %q %v", leader, err)
	}

	if err := a.Agent().ServiceDeregister("web-1"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, converge, func() error {
		es, _, err := b.Health().Service("web", "", false, nil)
		if err != nil {
			return err
		}
		if len(es) != 1 || es[0].Service.ID != "web-2" {
			return fmt.Errorf("after deregister: %d entries", len(es))
		}
		return nil
	})
}
