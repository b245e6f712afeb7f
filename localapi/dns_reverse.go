package localapi

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/catalog"
)

// reverseIP reads a reverse-lookup name, as labels: arpa is set for any
// name under in-addr.arpa. or ip6.arpa., and ok when it names one whole
// address (4 decimal labels, or 32 hex nibbles), least significant first.
func reverseIP(labels []string) (ip netip.Addr, ok, arpa bool) {
	n := len(labels)
	if n < 2 || !strings.EqualFold(labels[n-1], "arpa") {
		return ip, false, false
	}
	switch {
	case strings.EqualFold(labels[n-2], "in-addr"):
		if n-2 != 4 {
			return ip, false, true
		}
		var b [4]byte
		for i := range 4 {
			l := labels[3-i]
			v, err := strconv.ParseUint(l, 10, 8)
			if err != nil || len(l) > 1 && l[0] == '0' {
				return ip, false, true
			}
			b[i] = byte(v)
		}
		return netip.AddrFrom4(b), true, true
	case strings.EqualFold(labels[n-2], "ip6"):
		if n-2 != 32 {
			return ip, false, true
		}
		var b [16]byte
		for i := range 32 {
			l := labels[31-i]
			if len(l) != 1 {
				return ip, false, true
			}
			v, err := strconv.ParseUint(l, 16, 8)
			if err != nil {
				return ip, false, true
			}
			b[i/2] |= byte(v) << (4 * (1 - i%2))
		}
		return netip.AddrFrom16(b), true, true
	}
	return ip, false, false
}

// sameAddr reports whether addr (as the catalog holds it) is ip.
func sameAddr(addr string, ip netip.Addr) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && a.Unmap().WithZone("") == ip
}

// ptr answers a reverse lookup: the served nodes at the address, or,
// when there are none, the services with an instance registered at it.
func (s *DNSServer) ptr(resp *dns.Msg, q dns.Question, ip netip.Addr, ok bool) {
	resp.Authoritative = true
	if !ok {
		s.negative(resp, dns.RcodeNameError, 0)
		return
	}
	ip = ip.Unmap()
	var (
		nodes, services []string
		serial          uint32
		localNoAddr     string // the local node, when the catalog has no address for it
	)
	authz := s.authz()
	s.b.Read(func(c *catalog.Catalog) {
		serial = soaSerial(c)
		local := c.LocalName()
		localNoAddr = local
		for _, n := range c.Nodes() {
			if n.Name == local && n.Address != "" {
				localNoAddr = ""
			}
			if (n.Serving() || n.Name == local) && sameAddr(n.Address, ip) && authz.Can(acl.Node, n.Name, acl.Read) {
				nodes = append(nodes, n.Name)
			}
		}
		if len(nodes) > 0 {
			return
		}
		seen := map[string]bool{}
		for name := range c.Services() {
			c.EachInstance(name, func(n catalog.Node, svc *catalog.Service, _ catalog.Health) {
				if !seen[svc.Name] && sameAddr(svc.Address, ip) && canRead(authz, svc.Name, n.Name) {
					seen[svc.Name] = true
				}
			})
		}
		services = slices.Sorted(maps.Keys(seen))
	})
	// The catalog may not know the local node's address yet: it is the
	// agent's own.
	if localNoAddr != "" && len(nodes) == 0 && sameAddr(s.b.Self().Member.Addr, ip) && authz.Can(acl.Node, localNoAddr, acl.Read) {
		nodes, services = []string{localNoAddr}, nil
	}
	if len(nodes) == 0 && len(services) == 0 {
		s.negative(resp, dns.RcodeNameError, serial)
		return
	}
	if q.Qtype != dns.TypePTR && q.Qtype != dns.TypeANY {
		s.negative(resp, dns.RcodeSuccess, serial)
		return
	}
	hdr := dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: s.nodeTTL}
	dc := s.b.Datacenter()
	for _, n := range nodes {
		resp.Answer = append(resp.Answer, &dns.PTR{Hdr: hdr, Ptr: n + ".node." + dc + "." + s.domain})
	}
	hdr.Ttl = s.svcTTL
	for _, name := range services {
		resp.Answer = append(resp.Answer, &dns.PTR{Hdr: hdr, Ptr: name + ".service." + s.domain})
	}
}

// metaStrings is a node's metadata as the strings of its TXT records,
// sorted by key: "key=value" with the key escaped as RFC 1464 asks
// ('`' before '`', '=' and leading or trailing spaces), or the value
// alone for a key starting "rfc1035-", as Consul writes them. nil for
// none.
func metaStrings(meta map[string]string) []string {
	if len(meta) == 0 {
		return nil
	}
	out := make([]string, 0, len(meta))
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		v := meta[k]
		if strings.HasPrefix(k, "rfc1035-") {
			out = append(out, v)
			continue
		}
		out = append(out, rfc1464Key(k)+"="+v)
	}
	return out
}

func rfc1464Key(k string) string {
	if !strings.ContainsAny(k, "`= ") {
		return k
	}
	var b strings.Builder
	lead := len(k) - len(strings.TrimLeft(k, " "))
	trail := len(k) - len(strings.TrimRight(k, " "))
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '`' || c == '=' || c == ' ' && (i < lead || i >= len(k)-trail) {
			b.WriteByte('`')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// appendTXT appends one TXT record per string, each cut into the
// character-strings of at most 255 bytes a TXT record holds, and escaped
// for miekg/dns (which reads '\' as an escape when it packs).
func appendTXT(rrs []dns.RR, h dns.RR_Header, strs []string) []dns.RR {
	h.Rrtype = dns.TypeTXT
	for _, s := range strs {
		var parts []string
		for len(s) > 255 {
			parts = append(parts, escapeTXT(s[:255]))
			s = s[255:]
		}
		parts = append(parts, escapeTXT(s))
		rrs = append(rrs, &dns.TXT{Hdr: h, Txt: parts})
	}
	return rrs
}

func escapeTXT(s string) string {
	return strings.ReplaceAll(s, `\`, `\\`)
}
