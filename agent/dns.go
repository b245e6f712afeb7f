package agent

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-sd/shoal/localapi"
)

// DNSAddr is the address the DNS interface listens on, UDP and TCP (valid
// after Ready); empty when DNS is off.
func (a *Agent) DNSAddr() string { return a.dnsAddr }

// validateDNS checks the DNS settings of c.
func (c *Config) validateDNS() error {
	if c.DNSAddr != "" {
		if _, _, err := net.SplitHostPort(c.DNSAddr); err != nil {
			return fmt.Errorf("dns-addr: %q is not host:port: %w", c.DNSAddr, err)
		}
	}
	if _, err := localapi.CanonicalDomain(c.Domain); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		ttl  time.Duration
	}{{"dns-service-ttl", c.DNSServiceTTL}, {"dns-node-ttl", c.DNSNodeTTL}} {
		if f.ttl < 0 || f.ttl > localapi.MaxDNSTTL {
			return fmt.Errorf("%s: %s is out of range 0s-%s", f.name, f.ttl, localapi.MaxDNSTTL)
		}
	}
	return nil
}

// listenDNS binds the DNS address, UDP and TCP; nothing when DNS is off.
func (a *Agent) listenDNS() (net.PacketConn, net.Listener, error) {
	if a.cfg.DNSAddr == "" {
		return nil, nil, nil
	}
	pc, ln, err := localapi.ListenDNS(a.cfg.DNSAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("dns-addr: listen on %s: %w", a.cfg.DNSAddr, err)
	}
	a.dnsAddr = ln.Addr().String()
	return pc, ln, nil
}

// serveDNS answers DNS on pc and ln until ctx ends, in a goroutine that
// wg waits for; nothing when DNS is off.
func (a *Agent) serveDNS(ctx context.Context, wg *sync.WaitGroup, pc net.PacketConn, ln net.Listener, m *metrics) {
	if pc == nil {
		return
	}
	srv := localapi.NewDNS(localapi.DNSConfig{
		Backend:       a,
		Logger:        a.log,
		Domain:        a.cfg.Domain,
		ServiceTTL:    a.cfg.DNSServiceTTL,
		NodeTTL:       a.cfg.DNSNodeTTL,
		Observe:       m.dnsObserver(),
		ACL:           a.acl.Load,
		NoNodeMetaTXT: a.cfg.DNSNoNodeMetaTXT,
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, pc, ln); err != nil {
			a.log.Error("dns server stopped", "err", err)
		}
	}()
}

// dnsObserver registers the DNS query counter and returns what counts.
func (m *metrics) dnsObserver() func(qtype, rcode string) {
	queries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_dns_queries_total",
		Help: "DNS queries answered, by question type and response code.",
	}, []string{"type", "rcode"})
	m.reg.MustRegister(queries)
	return func(qtype, rcode string) { queries.WithLabelValues(qtype, rcode).Inc() }
}
