package localapi

import (
	"testing"

	"github.com/miekg/dns"
)

// benchmarkDNS measures the DNS handler alone, packing included, on
// benchServerChecks' 100 instances of web (each with two checks).
func benchmarkDNS(b *testing.B, name string, qtype uint16, edns uint16, tcp bool) {
	be, _ := benchServerChecks(b)
	s := NewDNS(DNSConfig{Backend: be})
	req := question(name, qtype)
	if edns > 0 {
		req.SetEdns0(edns, false)
	}
	w := &discardDNSWriter{recordingWriter{tcp: tcp}}
	b.ReportAllocs()
	for b.Loop() {
		s.ServeDNS(w, req)
	}
}

// discardDNSWriter keeps nothing, so that a benchmark measures the
// handler and not a recorder.
type discardDNSWriter struct{ recordingWriter }

func (w *discardDNSWriter) Write(p []byte) (int, error) { return len(p), nil }

func BenchmarkDNSServiceA(b *testing.B) {
	benchmarkDNS(b, "web.service.shoal.", dns.TypeA, 4096, false)
}
func BenchmarkDNSServiceSRVTCP(b *testing.B) {
	benchmarkDNS(b, "web.service.shoal.", dns.TypeSRV, 0, true)
}
func BenchmarkDNSServiceATruncated(b *testing.B) {
	benchmarkDNS(b, "web.service.shoal.", dns.TypeA, 0, false)
}
func BenchmarkDNSTagA(b *testing.B) {
	benchmarkDNS(b, "prod.web.service.shoal.", dns.TypeA, 4096, false)
}
func BenchmarkDNSNode(b *testing.B)     { benchmarkDNS(b, "node-042.node.shoal.", dns.TypeA, 0, false) }
func BenchmarkDNSNXDOMAIN(b *testing.B) { benchmarkDNS(b, "nope.service.shoal.", dns.TypeA, 0, false) }
