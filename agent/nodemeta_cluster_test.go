package agent_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	consul "github.com/hashicorp/consul/api"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// metaCluster starts three agents: node-0 env=prod rack=r1, node-1
// env=staging, node-2 without metadata, each with an instance of web.
func metaCluster(t *testing.T) *testutil.Cluster {
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) {
		switch cfg.NodeName {
		case "node-0":
			cfg.NodeMeta = map[string]string{"env": "prod", "rack": "r1"}
		case "node-1":
			cfg.NodeMeta = map[string]string{"env": "staging"}
		}
	}
	for i := range 3 {
		n := c.Start(fmt.Sprintf("node-%d", i), 0)
		cl := &api.Client{Addr: n.Agent.HTTPAddr()}
		err := cl.Register(context.Background(), &api.AgentServiceRegistration{
			ID: fmt.Sprintf("web-%d", i), Name: "web", Port: 8080 + i, Tags: []string{fmt.Sprintf("t%d", i)},
			Meta: map[string]string{"version": fmt.Sprint(i % 2)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c.JoinAll()
	// Every agent has every instance, and every node's metadata.
	for _, n := range c.Nodes() {
		cl := &api.Client{Addr: n.Agent.HTTPAddr()}
		testutil.WaitFor(t, converge, func() error {
			entries, _, err := cl.HealthService(context.Background(), "web", nil)
			if err != nil {
				return err
			}
			if len(entries) != 3 {
				return fmt.Errorf("%s has %d instances of web", n.Name, len(entries))
			}
			if entries[0].Node.Meta["rack"] != "r1" || entries[1].Node.Meta["env"] != "staging" {
				return fmt.Errorf("%s shows node metadata %v, %v", n.Name, entries[0].Node.Meta, entries[1].Node.Meta)
			}
			return nil
		})
	}
	return c
}

// Node metadata set on one agent is shown and filterable on the others.
func TestNodeMetaFilterAcrossCluster(t *testing.T) {
	c := metaCluster(t)
	ctx := context.Background()
	cl := &api.Client{Addr: c.Node("node-2").Agent.HTTPAddr()}
	prod := map[string]string{"env": "prod"}

	testutil.WaitFor(t, converge, func() error {
		entries, _, err := cl.HealthService(ctx, "web", &api.QueryOptions{NodeMeta: prod})
		if err != nil {
			return err
		}
		if len(entries) != 1 || entries[0].Service.ID != "web-0" {
			return fmt.Errorf("node-meta env:prod: %d entries", len(entries))
		}
		if m := entries[0].Node.Meta; m["env"] != "prod" || m["rack"] != "r1" || m["shoal-version"] != agent.Version {
			return fmt.Errorf("node-0's Meta as node-2 shows it: %v", m)
		}
		return nil
	})
	instances := func(name string, q *api.QueryOptions) []string {
		t.Helper()
		entries, _, err := cl.HealthService(ctx, name, q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		var ids []string
		for _, e := range entries {
			ids = append(ids, e.Service.ID)
		}
		return ids
	}
	for _, tc := range []struct {
		q    *api.QueryOptions
		want []string
	}{
		{&api.QueryOptions{NodeMeta: map[string]string{"env": "staging"}}, []string{"web-1"}},
		{&api.QueryOptions{NodeMeta: map[string]string{"env": "prod", "rack": "r2"}}, nil},
		{&api.QueryOptions{Filter: `Node.Meta.env == staging or Node.Meta is empty`}, []string{"web-1"}}, // node-2 has shoal-version
		{&api.QueryOptions{Filter: `Node.Meta.env != prod`}, []string{"web-1", "web-2"}},
		{&api.QueryOptions{Filter: `Node.Meta.env == staging or "env" not in Node.Meta`}, []string{"web-1", "web-2"}},
		{&api.QueryOptions{Filter: `Service.Meta.version == "1" and Checks.Status == passing`}, []string{"web-1"}},
		{&api.QueryOptions{Filter: `"t2" in Service.Tags`, Passing: true}, []string{"web-2"}},
		{&api.QueryOptions{NodeMeta: prod, Filter: `Service.Port == 8080`, Tags: []string{"t0"}}, []string{"web-0"}},
	} {
		if got := instances("web", tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.q, got, tc.want)
		}
	}

	nodes, _, err := cl.CatalogNodes(ctx, &api.QueryOptions{NodeMeta: prod})
	if err != nil || len(nodes) != 1 || nodes[0].Node != "node-0" || nodes[0].Meta["rack"] != "r1" {
		t.Fatalf("catalog/nodes node-meta env:prod: %v %+v", err, nodes)
	}
	nodes, _, err = cl.CatalogNodes(ctx, &api.QueryOptions{Filter: `Meta.env == staging`})
	if err != nil || len(nodes) != 1 || nodes[0].Node != "node-1" {
		t.Fatalf("catalog/nodes filter: %v %+v", err, nodes)
	}
	cs, _, err := cl.CatalogService(ctx, "web", &api.QueryOptions{Filter: `NodeMeta.rack == r1`})
	if err != nil || len(cs) != 1 || cs[0].ServiceID != "web-0" || cs[0].NodeMeta["env"] != "prod" {
		t.Fatalf("catalog/service filter: %v %+v", err, cs)
	}
	self, err := (&api.Client{Addr: c.Node("node-0").Agent.HTTPAddr()}).Self(ctx)
	if err != nil || self.Meta["env"] != "prod" || self.Meta["shoal-version"] != agent.Version {
		t.Fatalf("agent/self Meta: %v %+v", err, self)
	}

	// A bad filter is the caller's error, and names the filter.
	_, _, err = cl.HealthService(ctx, "web", &api.QueryOptions{Filter: `Node.Meta.env = prod`})
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != 400 || !strings.HasPrefix(se.Body, "filter: ") {
		t.Fatalf("bad filter: %v", err)
	}
	// catalog/services narrows too, as in Consul: only web runs on a
	// prod node; a bad node-meta names the parameter.
	svcs, _, err := cl.CatalogServices(ctx, &api.QueryOptions{NodeMeta: prod})
	if err != nil || len(svcs) != 1 || svcs["web"] == nil {
		t.Fatalf("node-meta on catalog/services: %v %v", err, svcs)
	}
	_, _, err = cl.CatalogServices(ctx, &api.QueryOptions{Filter: `Nope == 1`})
	if !errors.As(err, &se) || se.Code != 400 || !strings.HasPrefix(se.Body, "filter: ") {
		t.Fatalf("bad filter on catalog/services: %v", err)
	}
}

// HashiCorp's Consul client filters with its own QueryOptions against a
// Shoal agent.
func TestConsulClientFilters(t *testing.T) {
	c := metaCluster(t)
	b := consulClient(t, c.Node("node-1"))
	prod := map[string]string{"env": "prod"}

	testutil.WaitFor(t, converge, func() error {
		entries, _, err := b.Health().Service("web", "", true, &consul.QueryOptions{NodeMeta: prod})
		if err != nil {
			return err
		}
		if len(entries) != 1 || entries[0].Service.ID != "web-0" || entries[0].Node.Meta["rack"] != "r1" {
			return fmt.Errorf("node-meta env:prod: %d entries", len(entries))
		}
		return nil
	})
	entries, _, err := b.Health().Service("web", "", false, &consul.QueryOptions{
		Filter: `Service.Meta.version == "0" and "t2" in Service.Tags and Checks.Status == passing`})
	if err != nil || len(entries) != 1 || entries[0].Service.ID != "web-2" {
		t.Fatalf("health filter: %v %+v", err, entries)
	}
	cs, _, err := b.Catalog().Service("web", "", &consul.QueryOptions{Filter: `ServicePort != 8081`, NodeMeta: prod})
	if err != nil || len(cs) != 1 || cs[0].ServiceID != "web-0" || cs[0].NodeMeta["env"] != "prod" {
		t.Fatalf("catalog filter: %v %+v", err, cs)
	}
	nodes, _, err := b.Catalog().Nodes(&consul.QueryOptions{NodeMeta: map[string]string{"env": "staging"}})
	if err != nil || len(nodes) != 1 || nodes[0].Node != "node-1" || nodes[0].Meta["env"] != "staging" {
		t.Fatalf("catalog nodes: %v %+v", err, nodes)
	}
	local, err := b.Agent().ServicesWithFilter(`Service == web and Port == 8081`)
	if err != nil || len(local) != 1 || local["web-1"] == nil {
		t.Fatalf("agent services: %v %+v", err, local)
	}
	_, _, err = b.Health().Service("web", "", false, &consul.QueryOptions{Filter: `Service.Nope == 1`})
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), `filter: selector "Service.Nope" is not valid`) {
		t.Fatalf("bad filter: %v", err)
	}
}
