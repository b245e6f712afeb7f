package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shoal-sd/shoal/catalog"
)

// BenchmarkGRPCProbe compares the gRPC probe as it runs (a connection of
// its own for every run) with a connection kept between runs, which the
// probe does not do (see probeGRPC). Both ends run in this process.
func BenchmarkGRPCProbe(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, grpchealth.NewServer())
	go srv.Serve(ln)
	b.Cleanup(srv.Stop)
	d := Definition{ID: "g", Name: "g", GRPC: ln.Addr().String(), Interval: time.Second, Timeout: time.Second}
	ctx := context.Background()

	b.Run("dial-per-run", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if o := probeGRPC(ctx, &d); o.status != catalog.HealthPassing {
				b.Fatal(o.output)
			}
		}
	})
	b.Run("kept-conn", func(b *testing.B) {
		conn, err := grpc.NewClient("passthrough:///"+d.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		hc := healthpb.NewHealthClient(conn)
		b.ReportAllocs()
		for b.Loop() {
			if o := grpcCheck(ctx, hc, &d, ""); o.status != catalog.HealthPassing {
				b.Fatal(o.output)
			}
		}
	})
}

// BenchmarkHTTPProbe compares the HTTP probe as it runs (a connection of
// its own for every run, as in Consul) with keep-alive connections.
func BenchmarkHTTPProbe(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	b.Cleanup(srv.Close)
	d := Definition{ID: "h", Name: "h", HTTP: srv.URL, Interval: time.Second, Timeout: time.Second}
	ctx := context.Background()
	var cls clients
	keepAlive := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	for _, bc := range []struct {
		name string
		cl   *http.Client
	}{{"new-conn", cls.get(tlsKey{})}, {"keep-alive", keepAlive}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if o := probeHTTP(ctx, bc.cl, &d); o.status != catalog.HealthPassing {
					b.Fatal(o.output)
				}
			}
		})
	}
}
