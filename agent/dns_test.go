package agent_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// lookup asks a DNS server one question over net ("udp" or "tcp").
func lookup(addr, network, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// A service registered on one agent is answered over DNS by another, once
// it passes, and is gone from its answers once deregistered.
func TestDNSAnswersWhatAnotherAgentRegistered(t *testing.T) {
	c := testutil.NewCluster(t, 2)
	n0, n1 := c.Node("node-0"), c.Node("node-1")
	addr := n1.Agent.DNSAddr()
	svc := catalog.Service{ID: "web-1", Name: "web", Port: 8080, Tags: []string{"v1"}}
	if err := n0.Agent.RegisterService(svc, []api.AgentServiceCheck{{TTL: "10m", Status: "critical"}}); err != nil {
		t.Fatal(err)
	}
	// node-1 holds the instance, critical, and never answers it.
	testutil.WaitFor(t, converge, func() error {
		if in := n1.Instances("web"); len(in) != 1 || in[0].Status != catalog.HealthCritical {
			return fmt.Errorf("node-1 serves %+v", in)
		}
		return nil
	})
	for _, qt := range []uint16{dns.TypeA, dns.TypeSRV} {
		r, err := lookup(addr, "udp", "web.service.shoal.", qt)
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
			t.Fatalf("a critical instance answered:\n%v", r)
		}
	}

	if err := n0.Agent.UpdateCheck("service:web-1", catalog.HealthPassing, ""); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, converge, func() error {
		r, err := lookup(addr, "udp", "v1.web.service.dc1.shoal.", dns.TypeSRV)
		if err != nil {
			return err
		}
		// The target's address, and its node's metadata as TXT.
		if len(r.Answer) != 1 || len(r.Extra) != 2 {
			return fmt.Errorf("answer:\n%v", r)
		}
		srv, ok := r.Answer[0].(*dns.SRV)
		a, okA := r.Extra[0].(*dns.A)
		txt, okT := r.Extra[1].(*dns.TXT)
		if !ok || !okA || srv.Port != 8080 || srv.Target != "node-0.node.dc1.shoal." || a.Hdr.Name != srv.Target || !a.A.Equal(net.IPv4(127, 0, 0, 1)) ||
			!okT || txt.Hdr.Name != srv.Target || len(txt.Txt) != 1 || txt.Txt[0] != "shoal-version="+agent.Version {
			return fmt.Errorf("answer:\n%v", r)
		}
		return nil
	})
	for _, q := range []struct{ network, name string }{{"tcp", "web.service.shoal."}, {"udp", "node-0.node.shoal."}, {"udp", "_web._tcp.service.shoal."}} {
		r, err := lookup(addr, q.network, q.name, dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) != 1 || !strings.HasSuffix(r.Answer[0].String(), "\tA\t127.0.0.1") {
			t.Errorf("%s over %s:\n%v", q.name, q.network, r)
		}
	}

	if err := n0.Agent.DeregisterService("web-1"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, converge, func() error {
		r, err := lookup(addr, "udp", "web.service.shoal.", dns.TypeA)
		if err != nil {
			return err
		}
		if r.Rcode != dns.RcodeNameError {
			return fmt.Errorf("after deregistration:\n%v", r)
		}
		return nil
	})
	m := scrape(t, n1)
	for _, k := range []string{`shoal_dns_queries_total{rcode="NOERROR",type="SRV"}`, `shoal_dns_queries_total{rcode="NXDOMAIN",type="A"}`} {
		if m[k] < 1 {
			t.Errorf("%s = %v, want at least 1", k, m[k])
		}
	}
}

func TestDNSOffAndTaken(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) { cfg.DNSAddr = "" }
	if n := c.Start("no-dns", 0); n.Agent.DNSAddr() != "" {
		t.Errorf("DNSAddr %q with DNS off", n.Agent.DNSAddr())
	}

	// A DNS port taken for UDP stops the start with an error naming it.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg := agent.DevConfig()
	cfg.NodeName, cfg.Port, cfg.HTTPAddr, cfg.DNSAddr = "taken", 0, "127.0.0.1:0", pc.LocalAddr().String()
	a, err := agent.New(cfg, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Run(ctx); err == nil || !strings.HasPrefix(err.Error(), "dns-addr: listen on "+cfg.DNSAddr) {
		t.Errorf("Run with the DNS port taken: %v", err)
	}
}
