package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// BenchmarkDNS measures the DNS interface of one real `shoal agent --dev`
// process (built by the benchmark) holding 100 instances of "web" (3 tags
// each, an address of their own, as in scripts/bench-http.sh) and one of
// "api". A load generator in the test process keeps SHOAL_BENCH_CONNS
// (default 16) queries in flight, each client waiting for its answer
// before asking again, and reports queries per second and the latency
// percentiles. Every answer is checked (ID, rcode, TC, answer count).
//
//	go test -run '^$' -bench DNS -benchtime 5s ./bench/
func BenchmarkDNS(b *testing.B) {
	conns := 16
	if v := os.Getenv("SHOAL_BENCH_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("SHOAL_BENCH_CONNS=%q: want a positive number", v)
		}
		conns = n
	}
	addr := startDNSAgent(b)
	for _, q := range []dnsLoad{
		{name: "A-1", qname: "api.service.shoal.", qtype: dns.TypeA, answers: 1},
		{name: "A-100-edns", qname: "web.service.shoal.", qtype: dns.TypeA, edns: 4096, answers: 100},
		{name: "SRV-34-tag", qname: "zone-0.web.service.shoal.", qtype: dns.TypeSRV, edns: 4096, answers: 34},
		{name: "SRV-100-tcp", qname: "web.service.shoal.", qtype: dns.TypeSRV, tcp: true, answers: 100},
		{name: "NXDOMAIN", qname: "nope.service.shoal.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
	} {
		b.Run(fmt.Sprintf("%s/conns=%d", q.name, conns), func(b *testing.B) { q.run(b, addr, conns) })
	}
}

// startDNSAgent runs an agent process with the benchmark's services and
// returns its DNS address once it answers for all of them.
func startDNSAgent(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "shoal")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/shoal").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	httpAddr, dnsAddr := testutil.FreeAddr(b), testutil.FreeAddr(b)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "agent", "--dev", "--node", "bench", "--port", "0",
		"--http-addr", httpAddr, "--dns-addr", dnsAddr, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); _ = cmd.Wait() })
	client := &api.Client{Addr: httpAddr}
	testutil.WaitFor(b, 30*time.Second, func() error {
		_, err := client.Self(ctx)
		return err
	})
	regs := []api.AgentServiceRegistration{{Name: "api", Port: 9000}}
	for i := 0; i < 100; i++ {
		regs = append(regs, api.AgentServiceRegistration{
			ID: fmt.Sprintf("web-%d", i), Name: "web", Port: 8000 + i,
			Address: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1),
			Tags:    []string{"v1", fmt.Sprintf("zone-%d", i%3)}, Meta: map[string]string{"version": "1.2"},
		})
	}
	for i := range regs {
		if err := client.Register(ctx, &regs[i]); err != nil {
			b.Fatal(err)
		}
	}
	testutil.WaitFor(b, 30*time.Second, func() error {
		m := new(dns.Msg)
		m.SetQuestion("web.service.shoal.", dns.TypeA)
		r, _, err := (&dns.Client{Net: "tcp", Timeout: time.Second}).Exchange(m, dnsAddr)
		if err != nil {
			return err
		}
		if len(r.Answer) != 100 {
			return fmt.Errorf("%d answers", len(r.Answer))
		}
		return nil
	})
	return dnsAddr
}

// dnsLoad is one query the benchmark repeats.
type dnsLoad struct {
	name    string
	qname   string
	qtype   uint16
	edns    uint16 // EDNS0 buffer size; 0: none
	tcp     bool
	answers int // expected in every answer
	rcode   int
}

// run sends b.N queries over conns clients and reports the rate and the
// latency.
func (q dnsLoad) run(b *testing.B, addr string, conns int) {
	m := new(dns.Msg)
	m.SetQuestion(q.qname, q.qtype)
	if q.edns > 0 {
		m.SetEdns0(q.edns, false)
	}
	query, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	lats := make([][]time.Duration, conns)
	errs := make([]error, conns)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < conns; w++ {
		n := b.N / conns
		if w < b.N%conns {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lats[w], errs[w] = q.client(addr, query, n)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "queries/s")
	b.ReportMetric(us(percentile(all, 0.50)), "p50-µs")
	b.ReportMetric(us(percentile(all, 0.99)), "p99-µs")
}

// client sends n queries one after another and returns their latencies.
// It works on bytes, so that the load generator takes little of the CPU
// the agent needs: only the header of an answer is read.
func (q dnsLoad) client(addr string, query []byte, n int) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	msg := append([]byte{0, 0}, query...) // a TCP length prefix, then the query
	binary.BigEndian.PutUint16(msg, uint16(len(query)))
	buf := make([]byte, dns.MaxMsgSize)
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for i := 0; i < n; i++ {
		id := uint16(i)
		binary.BigEndian.PutUint16(msg[2:], id)
		t0 := time.Now()
		var resp []byte
		for attempt := 0; resp == nil; attempt++ {
			if attempt == 3 {
				return nil, fmt.Errorf("%s: no answer to query %d after %d tries", q.name, i, attempt)
			}
			if conn == nil {
				network := "udp"
				if q.tcp {
					network = "tcp"
				}
				c, err := net.Dial(network, addr)
				if err != nil {
					return nil, err
				}
				conn = c
			}
			var err error
			resp, err = q.exchange(conn, msg, buf, id)
			if err != nil {
				// The server closes a TCP connection after 128 queries
				// (miekg/dns's default), and UDP may lose a packet.
				conn.Close()
				conn, resp = nil, nil
			}
		}
		lat = append(lat, time.Since(t0))
		rcode, tc, an := int(resp[3]&0x0f), resp[2]&0x02 != 0, int(binary.BigEndian.Uint16(resp[6:]))
		if rcode != q.rcode || tc || an != q.answers {
			return nil, fmt.Errorf("%s: rcode %d, TC %v, %d answers; want rcode %d, %d answers", q.name, rcode, tc, an, q.rcode, q.answers)
		}
	}
	return lat, nil
}

// exchange sends one query and reads the answer with its ID.
func (q dnsLoad) exchange(conn net.Conn, msg, buf []byte, id uint16) ([]byte, error) {
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return nil, err
	}
	if !q.tcp {
		if _, err := conn.Write(msg[2:]); err != nil {
			return nil, err
		}
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return nil, err
			}
			if n >= 12 && binary.BigEndian.Uint16(buf) == id {
				return buf[:n], nil
			}
			// A late answer to an earlier try: read on.
		}
	}
	if _, err := conn.Write(msg); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(conn, buf[:2]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(buf))
	if _, err := io.ReadFull(conn, buf[:n]); err != nil {
		return nil, err
	}
	if n < 12 || binary.BigEndian.Uint16(buf) != id {
		return nil, fmt.Errorf("%s: a short or foreign answer over TCP", q.name)
	}
	return buf[:n], nil
}
