package agent_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/hashicorp/consul/api/watch"
	"github.com/hashicorp/go-hclog"
	"github.com/miekg/dns"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// compatCluster is three agents with node metadata, as a Prometheus
// consul_sd job or consul-template would find them:
//
//	node-0 env=prod rack=r1:  web-1 [v1 prod] :8080 (TTL check, passing), db-1 [primary]
//	node-1 env=prod rack=r2:  web-2 [v2] :8081
//	node-2 env=staging:       web-3 [v1] :8082
//
// It returns a Go client on each agent, by node name, once node-2 serves
// every instance.
func compatCluster(t *testing.T) (*testutil.Cluster, map[string]*consul.Client) {
	t.Helper()
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) {
		cfg.NodeMeta = map[string]map[string]string{
			"node-0": {"env": "prod", "rack": "r1"},
			"node-1": {"env": "prod", "rack": "r2"},
			"node-2": {"env": "staging"},
		}[cfg.NodeName]
	}
	for i := range 3 {
		c.Start(fmt.Sprintf("node-%d", i), 0)
	}
	c.JoinAll()
	cls := map[string]*consul.Client{}
	for _, n := range c.Nodes() {
		cls[n.Name] = consulClient(t, n)
	}
	register := func(node string, reg *consul.AgentServiceRegistration) {
		t.Helper()
		if err := cls[node].Agent().ServiceRegister(reg); err != nil {
			t.Fatalf("register %s on %s: %v", reg.ID, node, err)
		}
	}
	register("node-0", &consul.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 8080, Tags: []string{"v1", "prod"},
		Meta: map[string]string{"version": "1"}, Check: &consul.AgentServiceCheck{CheckID: "web-1-ttl", TTL: "10m", Status: consul.HealthPassing}})
	register("node-0", &consul.AgentServiceRegistration{ID: "db-1", Name: "db", Port: 5432, Tags: []string{"primary"}})
	register("node-1", &consul.AgentServiceRegistration{ID: "web-2", Name: "web", Port: 8081, Tags: []string{"v2"}, Meta: map[string]string{"version": "2"}})
	register("node-2", &consul.AgentServiceRegistration{ID: "web-3", Name: "web", Port: 8082, Tags: []string{"v1"}, Meta: map[string]string{"version": "1"}})
	testutil.WaitFor(t, converge, func() error {
		for _, n := range c.Nodes() {
			if got := len(n.Instances("web")) + len(n.Instances("db")); got != 4 {
				return fmt.Errorf("%s serves %d instances", n.Name, got)
			}
		}
		return nil
	})
	return c, cls
}

// consul-template's {{ node }}, {{ node "x" }} and {{ datacenters }},
// through the Go client calls it makes.
func TestConsulTemplateNodeAndDatacenters(t *testing.T) {
	_, cls := compatCluster(t)
	cl := cls["node-2"]

	dcs, err := cl.Catalog().Datacenters()
	if err != nil || !slices.Equal(dcs, []string{"dc1"}) {
		t.Fatalf("datacenters: %v %v", dcs, err)
	}

	// {{ node }}: the agent's own node, by the name agent/self gives.
	name, err := cl.Agent().NodeName()
	if err != nil || name != "node-2" {
		t.Fatalf("node name: %q %v", name, err)
	}
	node, meta, err := cl.Catalog().Node(name, nil)
	if err != nil || node == nil || node.Node.Node != "node-2" || node.Node.Meta["env"] != "staging" || node.Services["web-3"] == nil ||
		node.Services["web-3"].Port != 8082 || meta.LastIndex == 0 {
		t.Fatalf("catalog/node/%s: %+v %v", name, node, err)
	}
	// {{ with node "node-0" }}: another agent's node and services.
	node, meta, err = cl.Catalog().Node("node-0", nil)
	if err != nil || node == nil || node.Node.Address != "127.0.0.1" || node.Node.Datacenter != "dc1" ||
		!slices.Equal(slices.Sorted(maps.Keys(node.Services)), []string{"db-1", "web-1"}) ||
		!slices.Equal(node.Services["web-1"].Tags, []string{"v1", "prod"}) {
		t.Fatalf("catalog/node/node-0: %+v %v", node, err)
	}
	// A node that does not exist: nil, no error (consul-template then
	// renders nothing rather than retrying).
	if none, _, err := cl.Catalog().Node("nope", nil); err != nil || none != nil {
		t.Fatalf("unknown node: %+v %v", none, err)
	}

	// The template re-renders when the node's services change: a
	// blocking query wakes.
	done := make(chan *consul.CatalogNode, 1)
	go func() {
		n, _, err := cl.Catalog().Node("node-0", &consul.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		if err != nil {
			t.Error(err)
		}
		done <- n
	}()
	if err := cls["node-0"].Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "cache-1", Name: "cache", Port: 6379}); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-done:
		if n == nil || n.Services["cache-1"] == nil {
			// Woken by another change first (the query blocks on the
			// catalog's index): the next read has it.
			testutil.WaitFor(t, converge, func() error {
				n, _, err := cl.Catalog().Node("node-0", nil)
				if err != nil || n == nil || n.Services["cache-1"] == nil {
					return fmt.Errorf("cache-1 not on node-0: %v", err)
				}
				return nil
			})
		}
	case <-time.After(converge):
		t.Fatal("catalog/node did not wake on a registration")
	}

	list, _, err := cl.Catalog().NodeServiceList("node-0", &consul.QueryOptions{Filter: `"primary" in Tags`})
	if err != nil || list == nil || list.Node.Node != "node-0" || len(list.Services) != 1 || list.Services[0].ID != "db-1" {
		t.Fatalf("node-services: %+v %v", list, err)
	}
}

// A Prometheus consul_sd job with filter: and node_meta:, as it queries:
// the datacenter from agent/self, the services with both, then each
// service's health with both.
func TestConsulSDFilterAndNodeMeta(t *testing.T) {
	_, cls := compatCluster(t)
	cl := cls["node-1"]

	self, err := cl.Agent().Self()
	if err != nil || self["Config"]["Datacenter"] != "dc1" {
		t.Fatalf("agent/self: %v %v", self["Config"], err)
	}
	opts := &consul.QueryOptions{NodeMeta: map[string]string{"env": "prod"}, Filter: `ServiceMeta.version == "1" or "primary" in ServiceTags`, AllowStale: true}
	svcs, meta, err := cl.Catalog().Services(opts)
	if err != nil || meta.LastIndex == 0 {
		t.Fatal(err)
	}
	want := map[string][]string{"web": {"prod", "v1"}, "db": {"primary"}}
	if !maps.EqualFunc(svcs, want, slices.Equal) {
		t.Fatalf("catalog/services: %v, want %v", svcs, want)
	}
	entries, _, err := cl.Health().ServiceMultipleTags("web", nil, false, &consul.QueryOptions{
		NodeMeta: opts.NodeMeta, Filter: `Service.Meta.version == "1"`})
	if err != nil || len(entries) != 1 || entries[0].Service.ID != "web-1" || entries[0].Node.Meta["rack"] != "r1" {
		t.Fatalf("health/service: %+v %v", entries, err)
	}

	// The job's blocking query on catalog/services wakes for a new
	// matching service.
	done := make(chan map[string][]string, 1)
	go func() {
		o := *opts
		o.WaitIndex, o.WaitTime = meta.LastIndex, time.Minute
		s, _, err := cl.Catalog().Services(&o)
		if err != nil {
			t.Error(err)
		}
		done <- s
	}()
	if err := cls["node-1"].Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "api-1", Name: "api", Port: 9000, Meta: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-done:
		if _, ok := s["api"]; !ok {
			testutil.WaitFor(t, converge, func() error {
				s, _, err := cl.Catalog().Services(opts)
				if err != nil || s["api"] == nil {
					return fmt.Errorf("api not listed: %v %v", s, err)
				}
				return nil
			})
		}
	case <-time.After(converge):
		t.Fatal("catalog/services did not wake")
	}

	// A bad filter is a 400 naming the parameter.
	_, _, err = cl.Catalog().Services(&consul.QueryOptions{Filter: `Nope == 1`})
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "filter") {
		t.Fatalf("bad filter: %v", err)
	}
}

// HashiCorp's Go client over every read route the README lists as
// answered, and the refused ones, against a Shoal cluster.
func TestConsulClientEveryRoute(t *testing.T) {
	c, cls := compatCluster(t)
	cl, other := cls["node-0"], cls["node-2"]
	ok := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// agent/*
	self, err := cl.Agent().Self()
	ok("agent/self", err)
	// As `consul info` reads it: sections of string values.
	stats, found := self["Stats"]
	if !found || self["Coord"] == nil || self["DebugConfig"] == nil || self["xDS"] == nil {
		t.Fatalf("agent/self lacks a section: %v", slices.Sorted(maps.Keys(self)))
	}
	for _, sec := range []string{"agent", "runtime", "build", "serf_lan"} {
		if _, ok := stats[sec].(map[string]any); !ok {
			t.Errorf("Stats[%s] = %v", sec, stats[sec])
		}
	}
	// memberlist's health score moves with load (Lifeguard): only there.
	if serf := stats["serf_lan"].(map[string]any); serf["members"] != "3" || serf["health_score"] == nil || serf["encrypted"] != "false" {
		t.Errorf("serf_lan %v", serf)
	}
	if a := stats["agent"].(map[string]any); a["services"] != "2" || a["check_ttls"] != "1" {
		t.Errorf("agent %v", a)
	}
	host, err := cl.Agent().Host()
	ok("agent/host", err)
	if host["Host"] == nil || host["CollectionTime"] == nil {
		t.Errorf("agent/host %v", host)
	}
	ver, err := cl.Agent().Version()
	ok("agent/version", err)
	if ver["HumanVersion"] != agent.Version {
		t.Errorf("agent/version %v", ver)
	}
	members, err := cl.Agent().Members(false)
	ok("agent/members", err)
	if len(members) != 3 {
		t.Errorf("members %d", len(members))
	}
	// consul members -filter
	members, err = cl.Agent().MembersOpts(consul.MembersOpts{Filter: `Name != "node-1"`})
	ok("agent/members?filter", err)
	if len(members) != 2 {
		t.Errorf("members with a filter: %d", len(members))
	}
	local, err := cl.Agent().Services()
	ok("agent/services", err)
	if len(local) != 2 {
		t.Errorf("agent/services %v", slices.Sorted(maps.Keys(local)))
	}
	if f, err := cl.Agent().ServicesWithFilter(`Port == 5432`); err != nil || len(f) != 1 || f["db-1"] == nil {
		t.Errorf("agent/services?filter: %v %v", f, err)
	}
	checks, err := cl.Agent().Checks()
	ok("agent/checks", err)
	if checks["web-1-ttl"] == nil || checks["web-1-ttl"].Status != consul.HealthPassing {
		t.Errorf("agent/checks %v", checks)
	}
	svc, qm, err := cl.Agent().Service("web-1", nil)
	ok("agent/service/:id", err)
	if svc.Port != 8080 || svc.ContentHash == "" {
		t.Errorf("agent/service %+v", svc)
	}
	// Hash blocking, as api/watch's agent_service watch uses it.
	woke := make(chan *consul.AgentService, 1)
	go func() {
		s, _, err := cl.Agent().Service("web-1", &consul.QueryOptions{WaitHash: qm.LastContentHash, WaitTime: time.Minute})
		if err != nil {
			t.Error(err)
		}
		woke <- s
	}()
	ok("re-register", cl.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 8090, Tags: []string{"v1", "prod"},
		Meta: map[string]string{"version": "1"}}))
	select {
	case s := <-woke:
		if s == nil || s.Port != 8090 {
			t.Fatalf("hash-blocking query woke with %+v", s)
		}
	case <-time.After(converge):
		t.Fatal("hash-blocking query did not wake")
	}
	status, info, err := cl.Agent().AgentHealthServiceByID("web-1")
	ok("agent/health/service/id", err)
	if status != consul.HealthPassing || info == nil || info.Service.ID != "web-1" || len(info.Checks) != 1 {
		t.Errorf("agent/health/service/id: %s %+v", status, info)
	}
	ok("fail", cl.Agent().FailTTL("web-1-ttl", "down"))
	status, infos, err := cl.Agent().AgentHealthServiceByName("web")
	ok("agent/health/service/name", err)
	if status != consul.HealthCritical || len(infos) != 1 {
		t.Errorf("agent/health/service/name: %s %+v", status, infos)
	}
	ok("pass", cl.Agent().PassTTL("web-1-ttl", "up"))
	if status, _, err := cl.Agent().AgentHealthServiceByID("nope"); err != nil || status != consul.HealthCritical {
		t.Errorf("unknown service: %s %v", status, err)
	}
	stop := make(chan struct{})
	logs, err := cl.Agent().Monitor("debug", stop, nil)
	ok("agent/monitor", err)
	close(stop)
	for range logs {
	}
	if _, err := cl.Agent().Metrics(); err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("agent/metrics without format=prometheus: %v", err)
	}

	// agent writes
	ok("check/register", cl.Agent().CheckRegister(&consul.AgentCheckRegistration{ID: "disk", Name: "disk", AgentServiceCheck: consul.AgentServiceCheck{TTL: "10m"}}))
	ok("check/pass", cl.Agent().PassTTL("disk", "ok"))
	ok("check/warn", cl.Agent().WarnTTL("disk", "hmm"))
	ok("check/fail", cl.Agent().FailTTL("disk", "full"))
	ok("check/update", cl.Agent().UpdateTTL("disk", "fine", consul.HealthPassing))
	ok("service/maintenance", cl.Agent().EnableServiceMaintenance("db-1", "test"))
	ok("service/maintenance off", cl.Agent().DisableServiceMaintenance("db-1"))
	ok("maintenance", cl.Agent().EnableNodeMaintenance("test"))
	ok("maintenance off", cl.Agent().DisableNodeMaintenance())
	ok("check/deregister", cl.Agent().CheckDeregister("disk"))
	ok("join", cl.Agent().Join(c.Node("node-1").Gossip, false))
	if err := cl.Agent().Reload(); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("reload without a config file: %v", err)
	}

	// catalog/*
	waitIndex := func(what string, m *consul.QueryMeta, err error) {
		t.Helper()
		ok(what, err)
		if m.LastIndex == 0 {
			t.Errorf("%s: no X-Consul-Index", what)
		}
	}
	var m *consul.QueryMeta
	testutil.WaitFor(t, converge, func() error {
		svcs, _, err := other.Catalog().Service("web", "", nil)
		if err != nil || len(svcs) != 3 || !slices.ContainsFunc(svcs, func(s *consul.CatalogService) bool { return s.ServicePort == 8090 }) {
			return fmt.Errorf("web as node-2 serves it: %v", err)
		}
		return nil
	})
	nodes, m, err := other.Catalog().Nodes(&consul.QueryOptions{NodeMeta: map[string]string{"env": "prod"}, Near: "_agent"})
	waitIndex("catalog/nodes", m, err)
	if len(nodes) != 2 {
		t.Errorf("catalog/nodes?node-meta: %d", len(nodes))
	}
	svcs, m, err := other.Catalog().Services(nil)
	waitIndex("catalog/services", m, err)
	if len(svcs) != 2 {
		t.Errorf("catalog/services %v", svcs)
	}
	inst, m, err := other.Catalog().Service("web", "v1", &consul.QueryOptions{Filter: `NodeMeta.env == "prod"`, Near: "node-0"})
	waitIndex("catalog/service", m, err)
	if len(inst) != 1 || inst[0].ServiceID != "web-1" {
		t.Errorf("catalog/service?tag&filter: %+v", inst)
	}
	node, m, err := other.Catalog().Node("node-1", nil)
	waitIndex("catalog/node", m, err)
	if node == nil || node.Services["web-2"] == nil {
		t.Errorf("catalog/node %+v", node)
	}
	list, m, err := other.Catalog().NodeServiceList("node-1", nil)
	waitIndex("catalog/node-services", m, err)
	if list == nil || len(list.Services) != 1 {
		t.Errorf("catalog/node-services %+v", list)
	}
	dcs, err := other.Catalog().Datacenters()
	ok("catalog/datacenters", err)
	if len(dcs) != 1 {
		t.Errorf("datacenters %v", dcs)
	}
	conn, m, err := other.Catalog().Connect("web", "", nil)
	waitIndex("catalog/connect", m, err)
	if len(conn) != 0 {
		t.Errorf("catalog/connect %v", conn)
	}

	// health/*
	// web-1's check and node-0's maintenance went back to passing just
	// now: wait until node-2 has heard.
	testutil.WaitFor(t, converge, func() error {
		entries, m, err := other.Health().Service("web", "", true, &consul.QueryOptions{Filter: `Service.Port != 8082`})
		if err != nil || m.LastIndex == 0 || len(entries) != 2 {
			return fmt.Errorf("health/service?passing&filter: %d entries, %v", len(entries), err)
		}
		return nil
	})
	hc, m, err := other.Health().Checks("web", nil)
	waitIndex("health/checks", m, err)
	if len(hc) != 1 || hc[0].CheckID != "web-1-ttl" {
		t.Errorf("health/checks %+v", hc)
	}
	hn, m, err := other.Health().Node("node-0", nil)
	waitIndex("health/node", m, err)
	if len(hn) == 0 || hn[0].CheckID != "serfHealth" {
		t.Errorf("health/node %+v", hn)
	}
	hs, m, err := other.Health().State(consul.HealthAny, &consul.QueryOptions{NodeMeta: map[string]string{"env": "staging"}})
	waitIndex("health/state", m, err)
	if len(hs) != 1 || hs[0].Node != "node-2" {
		t.Errorf("health/state?node-meta %+v", hs)
	}
	hconn, m, err := other.Health().Connect("web", "", true, nil)
	waitIndex("health/connect", m, err)
	ing, m2, err2 := other.Health().Ingress("web", true, nil)
	waitIndex("health/ingress", m2, err2)
	if len(hconn) != 0 || len(ing) != 0 {
		t.Errorf("health/connect %v, health/ingress %v", hconn, ing)
	}

	// coordinate/* and status/*
	testutil.WaitFor(t, converge, func() error {
		cs, _, err := other.Coordinate().Nodes(nil)
		if err != nil || len(cs) != 3 {
			return fmt.Errorf("coordinate/nodes: %d %v", len(cs), err)
		}
		return nil
	})
	cn, m, err := other.Coordinate().Node("node-0", nil)
	waitIndex("coordinate/node", m, err)
	if len(cn) != 1 || cn[0].Coord == nil {
		t.Errorf("coordinate/node %+v", cn)
	}
	leader, err := other.Status().Leader()
	ok("status/leader", err)
	peers, err := other.Status().Peers()
	ok("status/peers", err)
	if leader == "" || len(peers) != 1 {
		t.Errorf("leader %q peers %v", leader, peers)
	}

	// Refused on purpose: an error naming what is not served, never an
	// empty answer.
	refused := map[string]error{}
	_, _, refused["kv"] = cl.KV().Get("config/app", nil)
	_, _, refused["session"] = cl.Session().List(nil)
	_, _, refused["query"] = cl.PreparedQuery().List(nil)
	_, _, refused["acl"] = cl.ACL().TokenReadSelf(nil)
	_, _, refused["agent/connect"] = cl.Agent().ConnectCARoots(nil)
	_, _, refused["event"] = cl.Event().List("", nil)
	_, refused["catalog/register"] = cl.Catalog().Register(&consul.CatalogRegistration{Node: "x", Address: "10.0.0.1"}, nil)
	for what, err := range refused {
		if err == nil || !strings.Contains(err.Error(), "501") || !strings.Contains(err.Error(), "not supported") {
			t.Errorf("%s: %v, want a 501 saying it is not supported", what, err)
		}
	}
}

// HashiCorp's api/watch, as tools use it: an agent_service watch (hash
// blocking) and a services watch (index blocking) each run their handler
// again after a change.
func TestConsulWatchPlans(t *testing.T) {
	c, _ := compatCluster(t)
	n := c.Node("node-0")
	type seen struct {
		mu    sync.Mutex
		calls []any
	}
	run := func(params map[string]any) (*seen, func()) {
		p, err := watch.Parse(params)
		if err != nil {
			t.Fatal(err)
		}
		s := &seen{}
		p.Handler = func(_ uint64, raw any) {
			s.mu.Lock()
			s.calls = append(s.calls, raw)
			s.mu.Unlock()
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := p.RunWithClientAndHclog(consulClient(t, n), hclog.NewNullLogger()); err != nil {
				t.Error(err)
			}
		}()
		return s, func() { p.Stop(); <-done }
	}
	last := func(s *seen) (any, int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.calls) == 0 {
			return nil, 0
		}
		return s.calls[len(s.calls)-1], len(s.calls)
	}
	svcWatch, stopSvc := run(map[string]any{"type": "agent_service", "service_id": "web-1"})
	defer stopSvc()
	allWatch, stopAll := run(map[string]any{"type": "services"})
	defer stopAll()
	testutil.WaitFor(t, converge, func() error {
		if _, n := last(svcWatch); n == 0 {
			return fmt.Errorf("agent_service handler not run")
		}
		if _, n := last(allWatch); n == 0 {
			return fmt.Errorf("services handler not run")
		}
		return nil
	})
	cl := consulClient(t, n)
	if err := cl.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "web-1", Name: "web", Port: 9999}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Agent().ServiceRegister(&consul.AgentServiceRegistration{ID: "new-1", Name: "new", Port: 1}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, converge, func() error {
		raw, _ := last(svcWatch)
		if s, ok := raw.(*consul.AgentService); !ok || s.Port != 9999 {
			return fmt.Errorf("agent_service watch saw %+v", raw)
		}
		raw, _ = last(allWatch)
		if m, ok := raw.(map[string][]string); !ok || m["new"] == nil {
			return fmt.Errorf("services watch saw %v", raw)
		}
		return nil
	})
}

// DNS through a miekg/dns client against a cluster: reverse lookups of
// the agents' address, node metadata as TXT, the apex NS.
func TestDNSPTRAndTXTInCluster(t *testing.T) {
	c, _ := compatCluster(t)
	addr := c.Node("node-2").Agent.DNSAddr()
	ask := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		r, err := lookup(addr, "udp", name, qtype)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Every agent is at 127.0.0.1.
	var ptrs []string
	for _, rr := range ask("1.0.0.127.in-addr.arpa.", dns.TypePTR).Answer {
		ptrs = append(ptrs, rr.(*dns.PTR).Ptr)
	}
	slices.Sort(ptrs)
	if !slices.Equal(ptrs, []string{"node-0.node.dc1.shoal.", "node-1.node.dc1.shoal.", "node-2.node.dc1.shoal."}) {
		t.Fatalf("PTR of 127.0.0.1: %v", ptrs)
	}
	var txts []string
	for _, rr := range ask("node-0.node.shoal.", dns.TypeTXT).Answer {
		txts = append(txts, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	if want := []string{"env=prod", "rack=r1", "shoal-version=" + agent.Version}; !slices.Equal(txts, want) {
		t.Fatalf("TXT of node-0: %v, want %v", txts, want)
	}
	r := ask("web.service.shoal.", dns.TypeSRV)
	extraTXT := map[string]int{}
	for _, rr := range r.Extra {
		if txt, ok := rr.(*dns.TXT); ok {
			extraTXT[txt.Hdr.Name]++
		}
	}
	want := map[string]int{"node-0.node.dc1.shoal.": 3, "node-1.node.dc1.shoal.": 3, "node-2.node.dc1.shoal.": 2}
	if len(r.Answer) != 3 || !maps.Equal(extraTXT, want) {
		t.Fatalf("SRV: %d answers, TXT in additional %v, want %v", len(r.Answer), extraTXT, want)
	}
	r = ask("shoal.", dns.TypeNS)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.NS).Ns != "node-2.node.dc1.shoal." || len(r.Extra) != 1 || r.Extra[0].(*dns.A).A.String() != "127.0.0.1" {
		t.Fatalf("NS: %v %v", r.Answer, r.Extra)
	}
}
