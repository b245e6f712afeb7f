package localapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/catalog"
)

// discardWriter is a ResponseWriter that keeps nothing, so that a
// benchmark measures the handler and not a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// benchServer has 100 instances of web, one on each of 100 remote nodes,
// each with three tags and two meta keys, as a typical deployment has.
func benchServer(b *testing.B) (*testBackend, http.Handler) {
	be := newTestBackend()
	for i := range 100 {
		be.addRemote(fmt.Sprintf("node-%03d", i), fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), catalog.Service{
			ID: fmt.Sprintf("web-%03d", i), Name: "web", Port: 8080,
			Tags: []string{"prod", "v2", "http"}, Meta: map[string]string{"version": "2.4.1", "zone": "eu-west-1a"},
		})
	}
	return be, New(Config{Backend: be})
}

// benchServerChecks is benchServer with checks: a node check on every
// node and an HTTP check on every instance, as a deployment with health
// checks has them.
func benchServerChecks(b *testing.B) (*testBackend, http.Handler) {
	be, h := benchServer(b)
	for i := range 100 {
		node := fmt.Sprintf("node-%03d", i)
		be.putRemoteCheck(node, catalog.Check{ID: "disk", Name: "Disk space", Type: "tcp", Status: catalog.HealthPassing,
			Output: "TCP connect 127.0.0.1:9100: Success"})
		be.putRemoteCheck(node, catalog.Check{ID: fmt.Sprintf("service:web-%03d", i), Name: "Service 'web' check",
			ServiceID: fmt.Sprintf("web-%03d", i), Type: "http", Status: catalog.HealthPassing,
			Output: "HTTP GET http://10.1.0.1:8080/health: 200 OK Output: ok"})
	}
	return be, h
}

func benchmarkHandler(b *testing.B, target string) {
	_, h := benchServer(b)
	benchmarkRequests(b, h, target)
}

func benchmarkRequests(b *testing.B, h http.Handler, target string) {
	req := localRequest("GET", target, nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

func BenchmarkHealthService100(b *testing.B) { benchmarkHandler(b, "/v1/health/service/web") }

func BenchmarkHealthServicePassingTag100(b *testing.B) {
	benchmarkHandler(b, "/v1/health/service/web?passing=1&tag=prod&stale")
}

func BenchmarkHealthServiceChecks100(b *testing.B) {
	_, h := benchServerChecks(b)
	benchmarkRequests(b, h, "/v1/health/service/web")
}

func BenchmarkHealthServiceChecksPassing100(b *testing.B) {
	_, h := benchServerChecks(b)
	benchmarkRequests(b, h, "/v1/health/service/web?passing")
}

func BenchmarkCatalogService100(b *testing.B) { benchmarkHandler(b, "/v1/catalog/service/web") }

// BenchmarkHealthService100HTTP goes through a real loopback HTTP server
// and client, as a benchmark against Consul would.
func BenchmarkHealthService100HTTP(b *testing.B) {
	_, h := benchServer(b)
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.Get(srv.URL + "/v1/health/service/web")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkHealthService100ACL is BenchmarkHealthService100 with ACLs on:
// the token (a read-all policy plus a deny) is resolved and every instance
// is checked against it. Compare with BenchmarkHealthService100.
func BenchmarkHealthService100ACL(b *testing.B) {
	be, _ := benchServer(b)
	res, err := acl.NewResolver(acl.Config{
		Enabled: true, DefaultPolicy: "deny",
		Policies: []acl.PolicyConfig{{Name: "read", Rules: json.RawMessage(
			`{"service_prefix": {"": {"policy": "read"}}, "node_prefix": {"": {"policy": "read"}}, "service": {"secret": {"policy": "deny"}}}`)}},
		Tokens: []acl.TokenConfig{{SecretID: "reader", Policies: []string{"read"}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	h := New(Config{Backend: be, ACL: func() *acl.Resolver { return res }})
	req := localRequest("GET", "/v1/health/service/web", nil)
	req.Header.Set("X-Consul-Token", "reader")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}
