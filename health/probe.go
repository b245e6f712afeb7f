package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoal-sd/shoal/catalog"
)

// outcome is what one run of a check found, before thresholds.
type outcome struct {
	status catalog.Health
	output string
}

// tlsKey tells apart the HTTP clients checks share: one per way of
// checking the server's certificate, never one per check.
type tlsKey struct {
	skipVerify bool
	serverName string
}

// clients holds the HTTP clients of a Manager.
type clients struct {
	mu sync.Mutex
	m  map[tlsKey]*http.Client
}

func (c *clients) get(k tlsKey) *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.m[k]; ok {
		return cl
	}
	if c.m == nil {
		c.m = make(map[tlsKey]*http.Client)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	// As in Consul, every run opens its own connection: a check proves
	// the service accepts connections now, and 1,000 checks of 1,000
	// services hold no idle sockets between runs.
	t.DisableKeepAlives = true
	t.Proxy = nil // a health check talks to the service itself, never through a proxy
	t.TLSClientConfig = &tls.Config{InsecureSkipVerify: k.skipVerify, ServerName: k.serverName}
	cl := &http.Client{Transport: t}
	c.m[k] = cl
	return cl
}

func (c *clients) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.m {
		cl.CloseIdleConnections()
	}
}

// cleanOutput makes s valid UTF-8 and cuts it to at most n bytes without
// splitting a character.
func cleanOutput(s string, n int) string {
	return catalog.TruncateOutput(strings.ToValidUTF8(s, "\uFFFD"), n)
}

// probeHTTP requests d.HTTP once; ctx bounds the whole exchange, body
// included, so a server that stalls mid-body cannot hold the check.
func probeHTTP(ctx context.Context, cl *http.Client, d *Definition) outcome {
	method := d.method()
	var body io.Reader
	if d.Body != "" {
		body = strings.NewReader(d.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.HTTP, body)
	if err != nil {
		return outcome{catalog.HealthCritical, cleanOutput(redactIn(err.Error(), d.HTTP), d.outputMax())}
	}
	for k, vs := range d.Header {
		if http.CanonicalHeaderKey(k) == "Host" && len(vs) > 0 {
			req.Host = vs[0]
			continue
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "Shoal Health Check")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/plain, text/*, */*")
	}
	resp, err := cl.Do(req)
	if err != nil {
		return outcome{catalog.HealthCritical, cleanOutput(redactIn(err.Error(), d.HTTP), d.outputMax())}
	}
	defer resp.Body.Close()
	limit := d.outputMax()
	// As in Consul the status code decides; a body cut short (or still
	// coming at the deadline) only shows in the output.
	head, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)))
	status := catalog.HealthCritical
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		status = catalog.HealthPassing
	case resp.StatusCode == http.StatusTooManyRequests:
		status = catalog.HealthWarning
	}
	shown := RedactURL(d.HTTP)
	out := fmt.Sprintf("HTTP %s %s: %s Output: %s", method, shown, resp.Status, head)
	if err != nil {
		out = fmt.Sprintf("HTTP %s %s: %s (reading the body: %v) Output: %s", method, shown, resp.Status, redactIn(err.Error(), d.HTTP), head)
	}
	return outcome{status, cleanOutput(out, limit)}
}

// probeTCP connects to d.TCP and hangs up.
func probeTCP(ctx context.Context, d *Definition) outcome {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", d.TCP)
	if err != nil {
		return outcome{catalog.HealthCritical, cleanOutput(err.Error(), d.outputMax())}
	}
	conn.Close()
	return outcome{catalog.HealthPassing, cleanOutput("TCP connect "+d.TCP+": Success", d.outputMax())}
}

// probeGRPC asks the standard health service once over a connection of
// its own. A connection kept per check would save a handshake a run (see
// BenchmarkGRPCProbe), but it would hold a socket and goroutines per check
// between runs, and its reconnect backoff would let a restarted server
// look dead for longer than an Interval.
func probeGRPC(ctx context.Context, d *Definition) outcome {
	addr, service, _ := strings.Cut(d.GRPC, "/")
	creds := insecure.NewCredentials()
	if d.GRPCUseTLS {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: d.TLSSkipVerify, ServerName: d.TLSServerName})
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return outcome{catalog.HealthCritical, cleanOutput(err.Error(), d.outputMax())}
	}
	defer conn.Close()
	return grpcCheck(ctx, healthpb.NewHealthClient(conn), d, service)
}

func grpcCheck(ctx context.Context, hc healthpb.HealthClient, d *Definition, service string) outcome {
	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return outcome{catalog.HealthCritical, cleanOutput(fmt.Sprintf("gRPC check %s: %v", d.GRPC, err), d.outputMax())}
	}
	st := resp.GetStatus()
	out := cleanOutput(fmt.Sprintf("gRPC check %s: %s", d.GRPC, st), d.outputMax())
	if st != healthpb.HealthCheckResponse_SERVING {
		return outcome{catalog.HealthCritical, out}
	}
	return outcome{catalog.HealthPassing, out}
}

// runProbe runs one check of an active kind (not TTL) within its timeout.
func runProbe(ctx context.Context, cls *clients, d *Definition) outcome {
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	switch d.Type() {
	case TypeHTTP:
		return probeHTTP(ctx, cls.get(tlsKey{d.TLSSkipVerify, d.TLSServerName}), d)
	case TypeTCP:
		return probeTCP(ctx, d)
	case TypeGRPC:
		return probeGRPC(ctx, d)
	}
	return outcome{catalog.HealthCritical, "unknown kind of check"}
}
