package localapi

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoal-sd/shoal/catalog"
)

// startDNS serves b's catalog over DNS on a loopback port, UDP and TCP,
// until the test ends, and returns the address.
func startDNS(t testing.TB, b Backend, cfg DNSConfig) string {
	t.Helper()
	pc, ln, err := ListenDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Backend = b
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s := NewDNS(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, pc, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// exchangeUDP sends m over UDP and returns the answer and its size in
// bytes, read with a buffer big enough for any answer.
func exchangeUDP(t testing.TB, addr string, m *dns.Msg) (*dns.Msg, int) {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, dns.MaxMsgSize)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("reading the answer to %s: %v", m.Question[0].String(), err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatalf("unpacking the answer to %s: %v", m.Question[0].String(), err)
	}
	if r.Id != m.Id || !r.Response {
		t.Fatalf("answer %d (response %v) to query %d", r.Id, r.Response, m.Id)
	}
	return r, n
}

func exchangeTCP(t testing.TB, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s over TCP: %v", m.Question[0].String(), err)
	}
	return r
}

func question(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// ask sends one query over UDP, without EDNS0.
func ask(t testing.TB, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	r, _ := exchangeUDP(t, addr, question(name, qtype))
	return r
}

// dnsFixture is a catalog with a bit of everything:
//
//	node-a (local, 10.0.0.1): api
//	node-b (10.0.0.2): web-1 (v1, prod; weights 5/1), web-2 (v2, at 10.0.1.2)
//	node-c (fd00::3): web-3 (v1)
//	node-e (10.0.0.5): ext at ext.example.com
//	node-f (10.0.0.6): web-sick (critical), gone (critical)
//	node-g (10.0.0.7): web-warn (warning; weights 10/2)
func dnsFixture(t testing.TB) *testBackend {
	b := newTestBackend()
	if err := b.RegisterService(catalog.Service{Name: "api", Port: 9000}, nil); err != nil {
		t.Fatal(err)
	}
	b.addRemote("node-b", "10.0.0.2",
		catalog.Service{ID: "web-1", Name: "web", Port: 8080, Tags: []string{"v1", "prod"}, Weights: catalog.Weights{Passing: 5, Warning: 1}},
		catalog.Service{ID: "web-2", Name: "web", Port: 8081, Tags: []string{"v2"}, Address: "10.0.1.2"})
	b.addRemote("node-c", "fd00::3", catalog.Service{ID: "web-3", Name: "web", Port: 8082, Tags: []string{"v1"}})
	b.addRemote("node-e", "10.0.0.5", catalog.Service{ID: "ext", Name: "ext", Port: 443, Address: "ext.example.com"})
	b.addRemote("node-f", "10.0.0.6",
		catalog.Service{ID: "web-sick", Name: "web", Port: 8083},
		catalog.Service{ID: "gone", Name: "gone", Port: 1})
	b.addRemote("node-g", "10.0.0.7", catalog.Service{ID: "web-warn", Name: "web", Port: 8084, Weights: catalog.Weights{Passing: 10, Warning: 2}})
	b.putRemoteCheck("node-f", catalog.Check{ID: "service:web-sick", Name: "sick", ServiceID: "web-sick", Type: "ttl", Status: catalog.HealthCritical})
	b.putRemoteCheck("node-f", catalog.Check{ID: "service:gone", Name: "gone", ServiceID: "gone", Type: "ttl", Status: catalog.HealthCritical})
	b.putRemoteCheck("node-g", catalog.Check{ID: "service:web-warn", Name: "warn", ServiceID: "web-warn", Type: "ttl", Status: catalog.HealthWarning})
	return b
}

// rrStrings renders records without their TTL, sorted, for comparison.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		s := strings.Fields(rr.String())
		out = append(out, strings.Join(append([]string{s[0]}, s[2:]...), " "))
	}
	slices.Sort(out)
	return out
}

// checkNegative checks that r is rcode with no answer and the domain's
// SOA in the authority section.
func checkNegative(t *testing.T, r *dns.Msg, rcode int, domain string) {
	t.Helper()
	if r.Rcode != rcode || len(r.Answer) != 0 {
		t.Errorf("%s: got %s with %d answers, want %s and none", r.Question[0].Name, dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[rcode])
	}
	if len(r.Ns) != 1 {
		t.Fatalf("%s: authority section %v, want the SOA", r.Question[0].Name, r.Ns)
	}
	soa, ok := r.Ns[0].(*dns.SOA)
	if !ok || soa.Hdr.Name != domain || soa.Minttl != 0 || soa.Serial == 0 || soa.Ns != "ns."+domain {
		t.Errorf("%s: authority %v, want the SOA of %s", r.Question[0].Name, r.Ns[0], domain)
	}
}

func TestDNSNames(t *testing.T) {
	b := dnsFixture(t)
	addr := startDNS(t, b, DNSConfig{})
	const (
		a, aaaa = dns.TypeA, dns.TypeAAAA
		ok      = dns.RcodeSuccess
		nx      = dns.RcodeNameError
	)
	web4 := []string{"10.0.0.2", "10.0.0.7", "10.0.1.2"}
	tests := []struct {
		name  string
		qtype uint16
		rcode int
		want  []string // addresses answered; none for an error or NODATA
	}{
		{"web.service.shoal.", a, ok, web4},
		{"web.service.shoal.", aaaa, ok, []string{"fd00::3"}},
		{"v1.web.service.shoal.", a, ok, []string{"10.0.0.2"}},
		{"v1.web.service.shoal.", aaaa, ok, []string{"fd00::3"}},
		{"V1.web.service.shoal.", a, ok, []string{"10.0.0.2"}},
		{"v1.prod.web.service.shoal.", a, ok, []string{"10.0.0.2"}},
		{"prod.v1.web.service.shoal.", a, ok, []string{"10.0.0.2"}},
		{"v1.prod.web.service.shoal.", aaaa, ok, nil}, // known, no AAAA
		{"v1.v2.web.service.shoal.", a, nx, nil},      // every tag must match
		{"v3.web.service.shoal.", a, nx, nil},
		{"_web._v2.service.shoal.", a, ok, []string{"10.0.1.2"}},
		{"_web._tcp.service.shoal.", a, ok, web4},
		{"_web._UDP.service.shoal.", a, ok, web4},
		{"_web._v9.service.shoal.", a, nx, nil},
		{"web.service.dc1.shoal.", a, ok, web4},
		{"WEB.Service.DC1.Shoal.", a, ok, web4},
		{"web.service.dc2.shoal.", a, nx, nil},
		{"api.service.shoal.", a, ok, []string{"10.0.0.1"}},
		{"nope.service.shoal.", a, nx, nil},
		{"gone.service.shoal.", a, nx, nil}, // every instance critical
		{"web.service.shoal.", dns.TypeTXT, ok, nil},
		{"node-b.node.shoal.", a, ok, []string{"10.0.0.2"}},
		{"NODE-B.node.dc1.shoal.", a, ok, []string{"10.0.0.2"}},
		{"node-b.node.shoal.", aaaa, ok, nil},
		{"node-c.node.shoal.", aaaa, ok, []string{"fd00::3"}},
		{"node-a.node.shoal.", a, ok, []string{"10.0.0.1"}},
		{"node-z.node.shoal.", a, nx, nil},
		{"x.node-b.node.shoal.", a, nx, nil},
		{"node-b.node.dc2.shoal.", a, nx, nil},
		{"0a000102.addr.dc1.shoal.", a, ok, []string{"10.0.1.2"}},
		{"fd000000000000000000000000000003.addr.shoal.", aaaa, ok, []string{"fd00::3"}},
		{"0a000102.addr.shoal.", aaaa, ok, nil},
		{"0a0001.addr.shoal.", a, nx, nil},
		{"zz.addr.shoal.", a, nx, nil},
		{"shoal.", a, ok, nil},
		{"service.shoal.", a, ok, nil},
		{"dc1.shoal.", a, ok, nil},
		{"dc2.shoal.", a, nx, nil},
		{"what.shoal.", a, nx, nil},
		{"web.what.shoal.", a, nx, nil},
	}
	for _, tt := range tests {
		r := ask(t, addr, tt.name, tt.qtype)
		if r.RecursionAvailable || !r.Authoritative {
			t.Errorf("%s: RA %v, AA %v; want no RA, AA", tt.name, r.RecursionAvailable, r.Authoritative)
		}
		if tt.rcode != ok || tt.want == nil {
			checkNegative(t, r, tt.rcode, "shoal.")
			continue
		}
		var got []string
		for _, rr := range r.Answer {
			switch rr := rr.(type) {
			case *dns.A:
				got = append(got, rr.A.String())
			case *dns.AAAA:
				got = append(got, rr.AAAA.String())
			default:
				t.Errorf("%s: unexpected %v", tt.name, rr)
			}
			if h := rr.Header(); h.Name != tt.name || h.Ttl != 0 {
				t.Errorf("%s: record %v: want the question's name and TTL 0", tt.name, rr)
			}
		}
		slices.Sort(got)
		if r.Rcode != tt.rcode || !slices.Equal(got, tt.want) {
			t.Errorf("%s %s: got %s %v, want %v", tt.name, dns.TypeToString[tt.qtype], dns.RcodeToString[r.Rcode], got, tt.want)
		}
	}
}

func TestDNSRecordTypes(t *testing.T) {
	b := dnsFixture(t)
	addr := startDNS(t, b, DNSConfig{ServiceTTL: 30 * time.Second, NodeTTL: 90*time.Second + 500*time.Millisecond})
	tests := []struct {
		name        string
		qtype       uint16
		answer, add []string
	}{
		{
			"web.service.shoal.", dns.TypeSRV,
			[]string{
				"web.service.shoal. IN SRV 1 1 8081 0a000102.addr.dc1.shoal.",
				"web.service.shoal. IN SRV 1 1 8082 node-c.node.dc1.shoal.",
				"web.service.shoal. IN SRV 1 2 8084 node-g.node.dc1.shoal.", // warning: Weights.Warning
				"web.service.shoal. IN SRV 1 5 8080 node-b.node.dc1.shoal.",
			},
			[]string{
				"0a000102.addr.dc1.shoal. IN A 10.0.1.2",
				"node-b.node.dc1.shoal. IN A 10.0.0.2",
				`node-b.node.dc1.shoal. IN TXT "rack=r1"`, // the node's metadata beside its address
				"node-c.node.dc1.shoal. IN AAAA fd00::3",
				`node-c.node.dc1.shoal. IN TXT "rack=r1"`,
				"node-g.node.dc1.shoal. IN A 10.0.0.7",
				`node-g.node.dc1.shoal. IN TXT "rack=r1"`,
			},
		},
		{
			"_web._v1.service.shoal.", dns.TypeSRV,
			[]string{
				"_web._v1.service.shoal. IN SRV 1 1 8082 node-c.node.dc1.shoal.",
				"_web._v1.service.shoal. IN SRV 1 5 8080 node-b.node.dc1.shoal.",
			},
			[]string{"node-b.node.dc1.shoal. IN A 10.0.0.2", `node-b.node.dc1.shoal. IN TXT "rack=r1"`,
				"node-c.node.dc1.shoal. IN AAAA fd00::3", `node-c.node.dc1.shoal. IN TXT "rack=r1"`},
		},
		{
			"api.service.shoal.", dns.TypeSRV,
			[]string{"api.service.shoal. IN SRV 1 1 9000 node-a.node.dc1.shoal."},
			[]string{"node-a.node.dc1.shoal. IN A 10.0.0.1", `node-a.node.dc1.shoal. IN TXT "shoal-epoch=100"`},
		},
		{
			"v2.web.service.shoal.", dns.TypeANY,
			[]string{"v2.web.service.shoal. IN A 10.0.1.2", "v2.web.service.shoal. IN SRV 1 1 8081 0a000102.addr.dc1.shoal."},
			[]string{"0a000102.addr.dc1.shoal. IN A 10.0.1.2"},
		},
		{"ext.service.shoal.", dns.TypeSRV, []string{"ext.service.shoal. IN SRV 1 1 443 ext.example.com."}, nil},
		{"ext.service.shoal.", dns.TypeA, []string{"ext.service.shoal. IN CNAME ext.example.com."}, nil},
		{"ext.service.shoal.", dns.TypeAAAA, []string{"ext.service.shoal. IN CNAME ext.example.com."}, nil},
		{"node-c.node.shoal.", dns.TypeANY, []string{"node-c.node.shoal. IN AAAA fd00::3", `node-c.node.shoal. IN TXT "rack=r1"`}, nil},
		{"node-c.node.shoal.", dns.TypeAAAA, []string{"node-c.node.shoal. IN AAAA fd00::3"}, []string{`node-c.node.shoal. IN TXT "rack=r1"`}},
		{"node-c.node.shoal.", dns.TypeTXT, []string{`node-c.node.shoal. IN TXT "rack=r1"`}, nil},
		{"shoal.", dns.TypeSOA, []string{"shoal. IN SOA ns.shoal. hostmaster.shoal. 0 3600 600 86400 0"}, nil},
	}
	for _, tt := range tests {
		for _, tcp := range []bool{false, true} {
			var r *dns.Msg
			if tcp {
				r = exchangeTCP(t, addr, question(tt.name, tt.qtype))
			} else {
				r = ask(t, addr, tt.name, tt.qtype)
			}
			got := rrStrings(r.Answer)
			if tt.qtype == dns.TypeSOA && len(r.Answer) == 1 {
				r.Answer[0].(*dns.SOA).Serial = 0
				got = rrStrings(r.Answer)
			}
			if r.Rcode != dns.RcodeSuccess || !slices.Equal(got, tt.answer) || !slices.Equal(rrStrings(r.Extra), tt.add) || r.Truncated {
				t.Errorf("%s %s (tcp %v): got %s TC=%v\n%s\nadditional\n%s\nwant\n%s\nadditional\n%s", tt.name, dns.TypeToString[tt.qtype], tcp,
					dns.RcodeToString[r.Rcode], r.Truncated, strings.Join(got, "\n"), strings.Join(rrStrings(r.Extra), "\n"),
					strings.Join(tt.answer, "\n"), strings.Join(tt.add, "\n"))
			}
			for _, rr := range append(r.Answer, r.Extra...) {
				want := uint32(30)
				switch {
				case rr.Header().Rrtype == dns.TypeSOA:
					want = 0
				case strings.HasSuffix(tt.name, ".node.shoal."):
					want = 90
				}
				if rr.Header().Ttl != want {
					t.Errorf("%s: TTL of %v, want %d", tt.name, rr, want)
				}
			}
		}
	}
}

// A critical instance is never answered, in any record type, and one
// that turns critical disappears from the next answer.
func TestDNSNeverAnswersCriticalInstances(t *testing.T) {
	b := dnsFixture(t)
	addr := startDNS(t, b, DNSConfig{})
	contains := func(r *dns.Msg, s string) bool {
		return strings.Contains(strings.Join(rrStrings(append(r.Answer, r.Extra...)), "\n"), s)
	}
	for i := 0; i < 20; i++ {
		for _, qt := range []uint16{dns.TypeA, dns.TypeSRV, dns.TypeANY} {
			r := ask(t, addr, "web.service.shoal.", qt)
			if contains(r, "10.0.0.6") || contains(r, "node-f") || contains(r, "8083") {
				t.Fatalf("critical instance answered:\n%v", r)
			}
		}
	}
	if r := ask(t, addr, "web.service.shoal.", dns.TypeA); !contains(r, "10.0.0.7") {
		t.Fatalf("the warning instance is missing:\n%v", r)
	}
	b.putRemoteCheck("node-g", catalog.Check{ID: "service:web-warn", Name: "warn", ServiceID: "web-warn", Type: "ttl", Status: catalog.HealthCritical})
	if r := ask(t, addr, "web.service.shoal.", dns.TypeA); contains(r, "10.0.0.7") {
		t.Fatalf("an instance that turned critical is still answered:\n%v", r)
	}
	// A node that fails takes its instances with it.
	b.setStatus("node-b", catalog.StatusDead)
	r := ask(t, addr, "web.service.shoal.", dns.TypeA)
	if got := rrStrings(r.Answer); contains(r, "10.0.0.2") || contains(r, "10.0.1.2") || len(got) != 0 {
		t.Fatalf("instances of a dead node answered:\n%v", r)
	}
	checkNegative(t, r, dns.RcodeSuccess, "shoal.") // web-3 still has an AAAA
	checkNegative(t, ask(t, addr, "node-b.node.shoal.", dns.TypeA), dns.RcodeNameError, "shoal.")
}

func TestDNSShufflesAnswers(t *testing.T) {
	b := newTestBackend()
	for i := 0; i < 10; i++ {
		b.addRemote(fmt.Sprintf("node-%d", i), fmt.Sprintf("10.2.0.%d", i), catalog.Service{Name: "many", Port: 80})
	}
	addr := startDNS(t, b, DNSConfig{})
	for _, qt := range []uint16{dns.TypeA, dns.TypeSRV} {
		orders := map[string]bool{}
		for i := 0; i < 20; i++ {
			r := ask(t, addr, "many.service.shoal.", qt)
			if len(r.Answer) != 10 {
				t.Fatalf("%d answers, want 10:\n%v", len(r.Answer), r)
			}
			var order []string
			for _, rr := range r.Answer {
				order = append(order, rr.String())
			}
			orders[strings.Join(order, "|")] = true
		}
		// 20 draws of 10! orders: one order only is (1/3628800)^19.
		if len(orders) < 2 {
			t.Errorf("%s: the same order in 20 answers", dns.TypeToString[qt])
		}
	}
}

// bigFixture has 60 instances of "big", each on a node of its own.
func bigFixture(t testing.TB) string {
	b := newTestBackend()
	for i := 0; i < 60; i++ {
		b.addRemote(fmt.Sprintf("node-%02d", i), fmt.Sprintf("10.1.0.%d", i+1), catalog.Service{Name: "big", Port: 1000 + i})
	}
	return startDNS(t, b, DNSConfig{})
}

// An answer too big for UDP keeps what fits and sets TC; over TCP it is
// whole.
func TestDNSTruncatesUDPAndAnswersInFullOverTCP(t *testing.T) {
	addr := bigFixture(t)
	for _, qt := range []uint16{dns.TypeA, dns.TypeSRV, dns.TypeANY} {
		r, n := exchangeUDP(t, addr, question("big.service.shoal.", qt))
		if !r.Truncated || n > dns.MinMsgSize || len(r.Answer) == 0 || len(r.Answer) >= 60 {
			t.Errorf("%s over UDP: TC %v, %d bytes, %d answers; want TC, at most 512 bytes and some answers",
				dns.TypeToString[qt], r.Truncated, n, len(r.Answer))
		}
		checkExtraMatchesAnswers(t, r)
		full := exchangeTCP(t, addr, question("big.service.shoal.", qt))
		want := 60
		if qt == dns.TypeANY {
			want = 120
		}
		if full.Truncated || len(full.Answer) != want {
			t.Errorf("%s over TCP: TC %v, %d answers; want all %d", dns.TypeToString[qt], full.Truncated, len(full.Answer), want)
		}
		// Each target's address and its node's metadata (one pair).
		if qt != dns.TypeA && len(full.Extra) != 120 {
			t.Errorf("%s over TCP: %d additional records, want 120", dns.TypeToString[qt], len(full.Extra))
		}
		checkExtraMatchesAnswers(t, full)
	}
}

// checkExtraMatchesAnswers checks that every additional record is the
// address of an SRV target answered.
func checkExtraMatchesAnswers(t *testing.T, r *dns.Msg) {
	t.Helper()
	targets := map[string]bool{}
	for _, rr := range r.Answer {
		if srv, ok := rr.(*dns.SRV); ok {
			targets[srv.Target] = true
		}
	}
	for _, rr := range r.Extra {
		if h := rr.Header(); h.Rrtype != dns.TypeOPT && !targets[h.Name] {
			t.Errorf("additional %v is no answered target", rr)
		}
	}
}

func TestDNSHonoursTheEDNS0BufferSize(t *testing.T) {
	addr := bigFixture(t)
	tests := []struct {
		qtype   uint16
		bufsize uint16
		full    bool
	}{
		{dns.TypeA, 1232, true},    // 60 A records take about 1,000 bytes
		{dns.TypeSRV, 1232, false}, // 60 SRV and their addresses about 2,700
		{dns.TypeSRV, 4096, true},
		{dns.TypeSRV, 65000, true}, // served up to 4,096
		{dns.TypeA, 100, false},    // less than 512 means 512 (RFC 6891)
	}
	for _, tt := range tests {
		m := question("big.service.shoal.", tt.qtype)
		m.SetEdns0(tt.bufsize, false)
		r, n := exchangeUDP(t, addr, m)
		limit := min(max(int(tt.bufsize), 512), 4096)
		opt := r.IsEdns0()
		if opt == nil || int(opt.UDPSize()) != limit || opt.Version() != 0 {
			t.Errorf("%s at %d: OPT %v, want one with the client's size, %d", dns.TypeToString[tt.qtype], tt.bufsize, opt, limit)
		}
		if n > limit || r.Truncated == tt.full || tt.full && len(r.Answer) != 60 {
			t.Errorf("%s at %d: %d bytes, TC %v, %d answers; want at most %d bytes, whole %v",
				dns.TypeToString[tt.qtype], tt.bufsize, n, r.Truncated, len(r.Answer), limit, tt.full)
		}
		if !tt.full && n < limit-100 {
			t.Errorf("%s at %d: a truncated answer of %d bytes leaves room unused", dns.TypeToString[tt.qtype], tt.bufsize, n)
		}
		checkExtraMatchesAnswers(t, r)
	}
	// An EDNS version the server does not speak.
	m := question("big.service.shoal.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().SetVersion(1)
	if r, _ := exchangeUDP(t, addr, m); r.Rcode != dns.RcodeBadVers || len(r.Answer) != 0 {
		t.Errorf("EDNS version 1: %s with %d answers, want BADVERS", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
}

func TestDNSRefusesNamesOutsideItsDomain(t *testing.T) {
	addr := startDNS(t, dnsFixture(t), DNSConfig{})
	for _, name := range []string{"example.com.", ".", "shoal.example.", "web.service.consul.", "xshoal."} {
		for _, tcp := range []bool{false, true} {
			m := question(name, dns.TypeA)
			var r *dns.Msg
			if tcp {
				r = exchangeTCP(t, addr, m)
			} else {
				r, _ = exchangeUDP(t, addr, m)
			}
			if r.Rcode != dns.RcodeRefused || r.RecursionAvailable || len(r.Answer)+len(r.Ns) != 0 || !r.RecursionDesired {
				t.Errorf("%s: %s RA %v RD %v, %d records; want REFUSED, RA 0, RD echoed, nothing else", name,
					dns.RcodeToString[r.Rcode], r.RecursionAvailable, r.RecursionDesired, len(r.Answer)+len(r.Ns))
			}
		}
	}
	m := question("web.service.shoal.", dns.TypeA)
	m.Question[0].Qclass = dns.ClassCHAOS
	if r, _ := exchangeUDP(t, addr, m); r.Rcode != dns.RcodeRefused {
		t.Errorf("CHAOS class: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	m = question("web.service.shoal.", dns.TypeA)
	m.Opcode = dns.OpcodeNotify
	if r, _ := exchangeUDP(t, addr, m); r.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY: %s, want NOTIMP", dns.RcodeToString[r.Rcode])
	}
}

func TestDNSDomainAndObserve(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	addr := startDNS(t, dnsFixture(t), DNSConfig{Domain: "Consul", Observe: func(qtype, rcode string) {
		mu.Lock()
		defer mu.Unlock()
		seen[qtype+" "+rcode]++
	}})
	if r := ask(t, addr, "web.service.consul.", dns.TypeA); len(r.Answer) != 3 {
		t.Errorf("web.service.consul.: %v", r)
	}
	checkNegative(t, ask(t, addr, "nope.service.consul.", dns.TypeSRV), dns.RcodeNameError, "consul.")
	if r := ask(t, addr, "web.service.shoal.", dns.TypeAAAA); r.Rcode != dns.RcodeRefused {
		t.Errorf("the default domain answered with another configured: %v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"A NOERROR": 1, "SRV NXDOMAIN": 1, "AAAA REFUSED": 1}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("observed %v, want %v", seen, want)
	}
}

func TestCanonicalDomain(t *testing.T) {
	for in, want := range map[string]string{
		"shoal": "shoal.", "Shoal.": "shoal.", "service.example.internal": "service.example.internal.",
		"": "", ".": "", "a..b": "", "-a.": "", "a_b.": "", "a b": "", strings.Repeat("a.", 61): "",
	} {
		got, err := CanonicalDomain(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("CanonicalDomain(%q) = %q, %v; want %q", in, got, err, want)
		} else if err != nil && !strings.HasPrefix(err.Error(), "domain: ") {
			t.Errorf("CanonicalDomain(%q): error %q does not name the field", in, err)
		}
	}
}

// recordingWriter is a dns.ResponseWriter that keeps what is written.
type recordingWriter struct {
	tcp   bool
	wires [][]byte // as written
}

func (w *recordingWriter) LocalAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8600}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8600}
}

func (w *recordingWriter) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
}

func (w *recordingWriter) WriteMsg(m *dns.Msg) error { panic("the handler writes bytes only") }
func (w *recordingWriter) Write(b []byte) (int, error) {
	w.wires = append(w.wires, slices.Clone(b))
	return len(b), nil
}
func (w *recordingWriter) Close() error        { return nil }
func (w *recordingWriter) TsigStatus() error   { return nil }
func (w *recordingWriter) TsigTimersOnly(bool) {}
func (w *recordingWriter) Hijack()             {}

// FuzzDNSQuery feeds arbitrary bytes to the handler as a DNS message, as
// the server would after parsing them (it drops or refuses with FORMERR
// what does not parse). The handler must never panic, must answer every
// query exactly once and never a response, and every answer must pack,
// carry the query's ID and fit the transport's size.
func FuzzDNSQuery(f *testing.F) {
	seed := func(name string, qtype uint16, edns uint16, change func(*dns.Msg)) {
		m := question(name, qtype)
		if edns > 0 {
			m.SetEdns0(edns, false)
		}
		if change != nil {
			change(m)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, name := range []string{"web.service.shoal.", "v1.prod.web.service.dc1.shoal.", "_web._tcp.service.shoal.",
		"node-b.node.shoal.", "0a000102.addr.dc1.shoal.", "shoal.", "example.com.", "big.service.shoal.", `a\.b\032c.web.service.shoal.`,
		"2.0.0.10.in-addr.arpa.", "2.1.0.10.in-addr.arpa.", "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa."} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeANY, dns.TypeSOA, dns.TypeNS, dns.TypeTXT, dns.TypePTR} {
			seed(name, qt, 0, nil)
		}
	}
	seed("big.service.shoal.", dns.TypeSRV, 1232, nil)
	seed("big.service.shoal.", dns.TypeSRV, 1232, func(m *dns.Msg) { m.IsEdns0().SetVersion(3) })
	seed("web.service.shoal.", dns.TypeA, 0, func(m *dns.Msg) { m.Response = true })
	seed("web.service.shoal.", dns.TypeA, 0, func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate })
	seed("web.service.shoal.", dns.TypeA, 0, func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) })
	seed("web.service.shoal.", dns.TypeA, 0, func(m *dns.Msg) { m.Question = nil })
	f.Add([]byte{})
	f.Add([]byte{0, 1, 2})

	b := dnsFixture(f)
	for i := 0; i < 60; i++ {
		b.addRemote(fmt.Sprintf("big-%02d", i), fmt.Sprintf("10.1.0.%d", i+1), catalog.Service{Name: "big", Port: 1000 + i})
	}
	s := NewDNS(DNSConfig{Backend: b})
	f.Fuzz(func(t *testing.T, data []byte) {
		req := new(dns.Msg)
		if req.Unpack(data) != nil {
			return
		}
		for _, tcp := range []bool{false, true} {
			w := &recordingWriter{tcp: tcp}
			s.ServeDNS(w, req)
			if req.Response {
				if len(w.wires) != 0 {
					t.Fatalf("answered a response: %x", w.wires[0])
				}
				continue
			}
			if len(w.wires) != 1 {
				t.Fatalf("%d answers to one query", len(w.wires))
			}
			out, resp := w.wires[0], new(dns.Msg)
			if err := resp.Unpack(out); err != nil {
				t.Fatalf("the answer does not unpack: %v\n%x", err, out)
			}
			limit := dns.MaxMsgSize
			if !tcp {
				limit = 512
				if opt := req.IsEdns0(); opt != nil {
					limit = min(max(int(opt.UDPSize()), 512), 4096)
				}
			}
			if len(out) > limit {
				t.Fatalf("answer of %d bytes, limit %d (tcp %v)", len(out), limit, tcp)
			}
			if resp.Id != req.Id || !resp.Response || resp.RecursionAvailable {
				t.Fatalf("answer ID %d response %v RA %v to query %d", resp.Id, resp.Response, resp.RecursionAvailable, req.Id)
			}
		}
	})
}
