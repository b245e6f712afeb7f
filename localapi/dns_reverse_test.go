package localapi

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/catalog"
)

// Reverse lookups answer the nodes at an address, else the services
// registered at it, as Consul does; anything else under arpa. is
// NXDOMAIN rather than REFUSED.
func TestDNSReverseLookups(t *testing.T) {
	b := dnsFixture(t)
	b.addService("node-e", catalog.Service{ID: "ext-2", Name: "metrics", Port: 9100, Address: "10.0.1.2"})
	addr := startDNS(t, b, DNSConfig{NodeTTL: 7e9})
	for _, tt := range []struct {
		name   string
		qtype  uint16
		rcode  int
		answer []string
	}{
		{"2.0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"2.0.0.10.in-addr.arpa. IN PTR node-b.node.dc1.shoal."}},
		{"1.0.0.10.IN-ADDR.ARPA.", dns.TypePTR, dns.RcodeSuccess, []string{"1.0.0.10.IN-ADDR.ARPA. IN PTR node-a.node.dc1.shoal."}},
		{"1.0.0.10.in-addr.arpa.", dns.TypeANY, dns.RcodeSuccess, []string{"1.0.0.10.in-addr.arpa. IN PTR node-a.node.dc1.shoal."}},
		// fd00::3, nibble by nibble.
		{reverse(t, "fd00::3"), dns.TypePTR, dns.RcodeSuccess, []string{reverse(t, "fd00::3") + " IN PTR node-c.node.dc1.shoal."}},
		// No node there: the services registered at it.
		{"2.1.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{
			"2.1.0.10.in-addr.arpa. IN PTR metrics.service.shoal.", "2.1.0.10.in-addr.arpa. IN PTR web.service.shoal."}},
		{"2.0.0.10.in-addr.arpa.", dns.TypeA, dns.RcodeSuccess, nil},
		{"9.9.9.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, nil},
		{"0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, nil},
		{"02.0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, nil},
		{"256.0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, nil},
		{"in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, nil},
		{"x.ip6.arpa.", dns.TypePTR, dns.RcodeNameError, nil},
	} {
		r := ask(t, addr, tt.name, tt.qtype)
		if got := rrStrings(r.Answer); r.Rcode != tt.rcode || !slices.Equal(got, tt.answer) || !r.Authoritative {
			t.Errorf("%s %s: %s AA=%v %v, want %s %v", tt.name, dns.TypeToString[tt.qtype], dns.RcodeToString[r.Rcode], r.Authoritative, got,
				dns.RcodeToString[tt.rcode], tt.answer)
		}
		if len(r.Answer) == 0 {
			checkNegative(t, r, tt.rcode, "shoal.")
		}
		for _, rr := range r.Answer {
			if want := map[bool]uint32{true: 7, false: 0}[strings.Contains(rr.(*dns.PTR).Ptr, ".node.")]; rr.Header().Ttl != want {
				t.Errorf("%v: TTL %d, want %d", rr, rr.Header().Ttl, want)
			}
		}
	}
	// A dead node is not answered; the services at its address are not
	// served either.
	b.setStatus("node-b", catalog.StatusDead)
	if r := ask(t, addr, "2.0.0.10.in-addr.arpa.", dns.TypePTR); r.Rcode != dns.RcodeNameError {
		t.Errorf("dead node: %v", r)
	}
	// Names in other arpa zones are not ours.
	if r := ask(t, addr, "1.in-addr.arpa.example.", dns.TypePTR); r.Rcode != dns.RcodeRefused {
		t.Errorf("outside arpa: %s", dns.RcodeToString[r.Rcode])
	}
}

func reverse(t *testing.T, ip string) string {
	t.Helper()
	name, err := dns.ReverseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// With ACLs, DNS reverse lookups answer only what the default token may
// read.
func TestDNSReverseLookupACL(t *testing.T) {
	b := dnsFixture(t)
	res, err := acl.NewResolver(acl.Config{
		Enabled: true, DefaultPolicy: "deny", Default: "dns",
		Policies: []acl.PolicyConfig{{Name: "p", Rules: json.RawMessage(`{"node": {"node-c": {"policy": "read"}}}`)}},
		Tokens:   []acl.TokenConfig{{SecretID: "dns", Policies: []string{"p"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := startDNS(t, b, DNSConfig{ACL: func() *acl.Resolver { return res }})
	if r := ask(t, addr, "2.0.0.10.in-addr.arpa.", dns.TypePTR); r.Rcode != dns.RcodeNameError {
		t.Errorf("unreadable node answered: %v", r.Answer)
	}
	if r := ask(t, addr, reverse(t, "fd00::3"), dns.TypePTR); len(r.Answer) != 1 {
		t.Errorf("readable node: %v", r)
	}
}

// The apex answers its NS, this agent, with its address beside it.
func TestDNSApexNS(t *testing.T) {
	addr := startDNS(t, dnsFixture(t), DNSConfig{})
	r := ask(t, addr, "shoal.", dns.TypeNS)
	if got := rrStrings(r.Answer); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"shoal. IN NS node-a.node.dc1.shoal."}) ||
		!slices.Equal(rrStrings(r.Extra), []string{"node-a.node.dc1.shoal. IN A 10.0.0.1"}) {
		t.Errorf("NS: %v additional %v", got, rrStrings(r.Extra))
	}
	r = ask(t, addr, "SHOAL.", dns.TypeANY)
	if len(r.Answer) != 2 || r.Answer[0].Header().Rrtype != dns.TypeSOA || r.Answer[1].Header().Rrtype != dns.TypeNS {
		t.Errorf("ANY: %v", r.Answer)
	}
	// The NS target resolves.
	if r := ask(t, addr, "node-a.node.dc1.shoal.", dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("NS target: %v", r)
	}
	checkNegative(t, ask(t, addr, "shoal.", dns.TypeA), dns.RcodeSuccess, "shoal.")
}

// A node's metadata is answered as TXT: RFC 1464 "key=value", the value
// alone for rfc1035- keys, long values cut into 255-byte strings; the
// additional TXT records can be turned off as in Consul.
func TestDNSNodeMetaTXT(t *testing.T) {
	b := dnsFixture(t)
	long := strings.Repeat("x", 300)
	b.setNodeMeta("node-b", map[string]string{"rack": "r1", "rfc1035-spf": "v=spf1 -all", "path": `a\b "q"`, "long": long})
	for _, off := range []bool{false, true} {
		addr := startDNS(t, b, DNSConfig{NoNodeMetaTXT: off})
		r := exchangeTCP(t, addr, question("node-b.node.shoal.", dns.TypeTXT))
		var got [][]string
		for _, rr := range r.Answer {
			got = append(got, rr.(*dns.TXT).Txt)
		}
		want := [][]string{{"long=" + long[:250], long[250:]}, {`path=a\\b \"q\"`}, {"rack=r1"}, {"v=spf1 -all"}}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("TXT (off %v): %q, want %q", off, got, want)
		}
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{"node-b.node.shoal.", dns.TypeA}, {"web.service.shoal.", dns.TypeSRV}} {
			r := exchangeTCP(t, addr, question(q.name, q.qtype))
			n := 0
			for _, rr := range r.Extra {
				if txt, ok := rr.(*dns.TXT); ok && strings.HasPrefix(txt.Hdr.Name, "node-b.node.") {
					n++
				}
			}
			if want := map[bool]int{false: 4, true: 0}[off]; n != want {
				t.Errorf("%s %s (off %v): %d TXT records of node-b in additional, want %d", q.name, dns.TypeToString[q.qtype], off, n, want)
			}
		}
	}
}

func TestRFC1464Key(t *testing.T) {
	for k, want := range map[string]string{"a": "a", "a=b": "a`=b", "`": "``", " a b ": "` a b` ", "  ": "` ` "} {
		if got := rfc1464Key(k); got != want {
			t.Errorf("%q: %q, want %q", k, got, want)
		}
	}
}

// reverseIP takes any labels without panicking; a name it reads as an
// address is that address's reverse name.
func FuzzReverseIP(f *testing.F) {
	for _, s := range []string{"1.0.0.127.in-addr.arpa.", "0.0.0.0.in-addr.arpa.", "256.1.1.1.in-addr.arpa.", "1.in-addr.arpa.",
		"3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", "g.ip6.arpa.", "arpa.",
		"2.0.0.0.0.0.a.0.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", "x.arpa.", `\000.0.0.1.in-addr.arpa.`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		labels := dns.SplitDomainName(name)
		ip, ok, arpa := reverseIP(labels)
		if ok != (ok && arpa) {
			t.Fatal("an address outside arpa.")
		}
		if !ok {
			return
		}
		if ip.Is4In6() {
			// ReverseAddr writes these under in-addr.arpa.
			if !strings.EqualFold(labels[len(labels)-2], "ip6") {
				t.Fatalf("%q read as %s", name, ip)
			}
			return
		}
		want, err := dns.ReverseAddr(ip.String())
		if err != nil || !strings.EqualFold(strings.Join(labels, ".")+".", want) {
			t.Fatalf("%q read as %s, whose reverse name is %q", name, ip, want)
		}
		if !ip.Is4() && !ip.Is6() || ip != netip.MustParseAddr(ip.String()) {
			t.Fatalf("bad address %v", ip)
		}
	})
}
