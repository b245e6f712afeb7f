package localapi

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/catalog"
)

// The DNS interface answers, from the agent's own copy of the catalog,
// the names Consul's does (with Shoal's domain in place of "consul."):
//
//	<name>.service[.<dc>].<domain>               A, AAAA, SRV, ANY
//	<tag>[.<tag>...].<name>.service[.<dc>].<domain>  (every tag must match)
//	_<name>._<tag>.service[.<dc>].<domain>       RFC 2782; _tcp and _udp mean no tag
//	<node>.node[.<dc>].<domain>                  A, AAAA, ANY
//	<hex IP>.addr[.<dc>].<domain>                A, AAAA (SRV targets, as in Consul)
//	<reversed IP>.in-addr.arpa, ….ip6.arpa       PTR (reverse lookups, as in Consul)
//	<domain>                                     SOA, NS
//
// A node's metadata is answered as TXT records, one "key=value" per pair
// (RFC 1464; a key starting "rfc1035-" gives its value alone, as in
// Consul): in the answer to a TXT or ANY query of the node, and, unless
// DNSConfig.NoNodeMetaTXT (Consul's enable_additional_node_meta_txt =
// false), in the additional section beside the node's address, in node
// answers and for the node targets of SRV answers.
//
// A PTR query of an address answers the node names of the served nodes
// at that address, <node>.node.<dc>.<domain>; only when no node is there,
// the services with an instance registered at that address,
// <name>.service.<domain>, as Consul does. The apex's NS is this agent,
// <node>.node.<dc>.<domain>, with its address beside it: every agent
// answers for the whole domain.
//
// Names, tags and the datacenter match without regard to case. Only
// instances that are passing or warning are answered: Consul's DNS
// default (only_passing = false) treats warning as healthy, and so does
// Shoal, with the instance's Weights.Warning as its SRV weight. Critical
// instances (maintenance included) and instances of nodes that are not
// alive are never answered. Records are shuffled in every answer.
//
// An instance whose address is a host name is answered in SRV with that
// host name as the target, and in A/AAAA with a CNAME to it when every
// matching instance has a host name (a name that has address records
// cannot also be an alias); otherwise such instances are left out of A
// and AAAA answers. ANY answers A, AAAA and SRV records.
//
// Unknown names get NXDOMAIN, known names without records of the type
// asked an empty NOERROR; both carry the domain's SOA in the authority
// section (minimum TTL 0: a service that comes back is seen at once). A
// service whose instances are all critical is unknown, as in Consul. The
// agent does not recurse: a name outside the domain is REFUSED, and RA is
// never set.
//
// UDP answers fit 512 bytes, or the buffer size the client advertises in
// EDNS0 (up to 4,096); the OPT of the answer gives that same size back. An answer that does not fit keeps the records that
// do and sets TC, and the client asks again over TCP for the whole answer
// (up to 64 KB). Additional records that do not fit are dropped without
// TC (RFC 2181 §9). Consul's udp_answer_limit (3 records over UDP) has no
// equivalent: a UDP answer holds as many records as fit.

// DefaultDomain is the DNS domain an agent answers for unless configured
// otherwise.
const DefaultDomain = "shoal."

// maxUDPSize is the largest UDP answer sent, whatever buffer size a
// client advertises; larger answers go over TCP (RFC 6891 allows a
// server its own limit, and 4,096 is the common one).
const maxUDPSize = 4096

// maxDomainLen leaves room in a 255-byte name for the longest SRV target,
// <node>.node.<dc>.<domain> with a node and a datacenter name of 63 bytes.
const maxDomainLen = 120

// DNSConfig configures the DNS server that NewDNS builds.
type DNSConfig struct {
	// Backend answers every query. Required.
	Backend Backend
	// Logger receives the server's logs, tagged "component"="dns". Nil
	// discards them.
	Logger *slog.Logger
	// Domain is the domain answered for, such as "shoal." (the default
	// when empty). NewDNS panics if CanonicalDomain refuses it.
	Domain string
	// ServiceTTL is the TTL of the records of service answers, in whole
	// seconds. Zero, the default (as in Consul), asks resolvers not to
	// cache them.
	ServiceTTL time.Duration
	// NodeTTL is the TTL of the records of node answers, in whole seconds.
	// Zero is the default, as in Consul.
	NodeTTL time.Duration
	// Observe, if set, is told of every answer: the question's type ("A",
	// "SRV", …, "other", or "none" when the query had no usable question)
	// and the response code ("NOERROR", "NXDOMAIN", …). Both come from a
	// small fixed set, fit for metric labels. It must not block.
	Observe func(qtype, rcode string)
	// ACL, if set, returns the token resolver in force: DNS answers
	// with what the default token may read, as Consul's does.
	ACL func() *acl.Resolver
	// NoNodeMetaTXT leaves nodes' metadata out of the additional section
	// (Consul's dns_config.enable_additional_node_meta_txt = false); a
	// TXT query of a node still answers it.
	NoNodeMetaTXT bool
}

// DNSServer answers DNS queries from the agent's catalog. It is a
// miekg/dns Handler; Serve runs it on sockets.
type DNSServer struct {
	acl      func() *acl.Resolver
	b        Backend
	log      *slog.Logger
	domain   string   // canonical: lower case, fully qualified
	labels   []string // of domain
	svcTTL   uint32
	nodeTTL  uint32
	observe  func(qtype, rcode string)
	shutdown time.Duration // how long Serve waits for queries under way
	metaTXT  bool          // node metadata in additional sections
}

var _ dns.Handler = (*DNSServer)(nil)

// CanonicalDomain checks a domain for DNSConfig.Domain and returns it in
// lower case and fully qualified ("Shoal" becomes "shoal."). It must be one
// or more labels of letters, digits and hyphens, at most 120 bytes.
func CanonicalDomain(domain string) (string, error) {
	d := strings.ToLower(domain)
	if d == "" || d == "." {
		return "", errors.New("domain: must not be empty (the agent cannot answer for the root)")
	}
	d = dns.Fqdn(d)
	if len(d) > maxDomainLen {
		return "", fmt.Errorf("domain: %q is %d bytes long; the limit is %d", domain, len(d), maxDomainLen)
	}
	for _, l := range strings.Split(strings.TrimSuffix(d, "."), ".") {
		if catalog.ValidateName("domain", l) != nil {
			return "", fmt.Errorf("domain: %q is not a domain name: each label must be 1-63 letters, digits or '-', not starting or ending with '-'", domain)
		}
	}
	return d, nil
}

// NewDNS returns the DNS server of the agent's catalog. It panics if
// cfg.Backend is nil or cfg.Domain is not a valid domain (the agent's
// configuration is validated before).
func NewDNS(cfg DNSConfig) *DNSServer {
	if cfg.Backend == nil {
		panic("localapi: DNSConfig.Backend is nil")
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	domain, err := CanonicalDomain(cfg.Domain)
	if err != nil {
		panic("localapi: DNSConfig." + err.Error())
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DNSServer{
		acl:      cfg.ACL,
		b:        cfg.Backend,
		log:      log.With("component", "dns"),
		domain:   domain,
		labels:   dns.SplitDomainName(domain),
		svcTTL:   ttlSeconds(cfg.ServiceTTL),
		nodeTTL:  ttlSeconds(cfg.NodeTTL),
		observe:  cfg.Observe,
		shutdown: 5 * time.Second,
		metaTXT:  !cfg.NoNodeMetaTXT,
	}
}

// MaxDNSTTL is the largest TTL a DNS record may carry (RFC 2181 §8).
const MaxDNSTTL = (1<<31 - 1) * time.Second

func ttlSeconds(d time.Duration) uint32 {
	return uint32(min(max(d, 0), MaxDNSTTL) / time.Second)
}

// ListenDNS binds addr ("host:port") for both UDP and TCP, on the same
// port: port 0 picks one free for both.
func ListenDNS(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		p := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, p))
		if err == nil {
			return pc, ln, nil
		}
		_ = ln.Close()
		// A port picked for TCP may be taken for UDP: pick another.
		if port != "0" || attempt == 20 {
			return nil, nil, err
		}
	}
}

// Serve answers queries on pc (UDP) and ln (TCP) until ctx ends or one of
// them fails; it then stops both, waits a while for the queries under way,
// and returns. It closes pc and ln. The error is nil after ctx ended.
func (s *DNSServer) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	type run struct {
		srv     *dns.Server
		started chan struct{}
		done    chan struct{}
		err     error // of ActivateAndServe, once done is closed
	}
	runs := [2]*run{
		{srv: &dns.Server{PacketConn: pc, Handler: s, UDPSize: maxUDPSize}},
		{srv: &dns.Server{Listener: ln, Handler: s}},
	}
	for _, r := range runs {
		r.started, r.done = make(chan struct{}), make(chan struct{})
		r.srv.NotifyStartedFunc = func() { close(r.started) }
		go func() {
			defer close(r.done)
			r.err = r.srv.ActivateAndServe()
		}()
	}
	// A server that has not started yet cannot be shut down (its Shutdown
	// fails and it would serve on): wait until each has started or ended.
	failed := false
	for _, r := range runs {
		select {
		case <-r.started:
		case <-r.done:
			failed = true
		}
	}
	if !failed {
		select {
		case <-ctx.Done():
		case <-runs[0].done:
		case <-runs[1].done:
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.shutdown)
	defer cancel()
	for _, r := range runs {
		_ = r.srv.ShutdownContext(sctx) // fails only for a server that never started
	}
	var err error
	for _, r := range runs {
		select {
		case <-r.done:
			if r.err != nil && err == nil {
				err = fmt.Errorf("dns: %w", r.err)
			}
		case <-sctx.Done():
		}
	}
	// A server that failed to start has not closed its socket.
	_ = pc.Close()
	_ = ln.Close()
	return err
}

// ServeDNS answers one query. It never answers a message that is itself
// a response.
func (s *DNSServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	la := w.LocalAddr()
	tcp := la != nil && la.Network() == "tcp"
	resp, size := s.reply(req, tcp)
	if resp == nil {
		return
	}
	bp := packBufs.Get().(*[]byte)
	defer packBufs.Put(bp)
	out, err := pack(resp, size, *bp)
	if err == nil {
		*bp = out[:0]
		_, err = w.Write(out)
	}
	if err != nil {
		s.log.Debug("writing an answer", "err", err, "client", w.RemoteAddr())
	}
}

// packBufs holds buffers for packing answers: most fit 4 KB.
var packBufs = sync.Pool{New: func() any { b := make([]byte, 0, maxUDPSize); return &b }}

// pack packs resp with name compression into buf (or a bigger buffer),
// cutting it to size bytes first if it does not fit.
func pack(resp *dns.Msg, size int, buf []byte) ([]byte, error) {
	resp.Compress = true
	out, err := resp.PackBuffer(buf[:cap(buf)])
	if err != nil || len(out) <= size {
		return out, err
	}
	fit(resp, size)
	return resp.PackBuffer(out[:cap(out)])
}

// reply builds the answer to req, received over TCP or UDP, and the size
// it must fit; nil means no answer.
func (s *DNSServer) reply(req *dns.Msg, tcp bool) (*dns.Msg, int) {
	if req.Response {
		return nil, 0
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	size := dns.MinMsgSize
	if tcp {
		size = dns.MaxMsgSize
	}
	opt := req.IsEdns0()
	udpSize := dns.MinMsgSize // what the client takes over UDP, as far as this server goes
	if opt != nil {
		udpSize = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
		if !tcp {
			size = udpSize
		}
	}
	qtype := "none"
	switch {
	case req.Opcode != dns.OpcodeQuery:
		resp.Rcode = dns.RcodeNotImplemented
	case len(req.Question) != 1:
		resp.Rcode = dns.RcodeFormatError
	case opt != nil && opt.Version() != 0:
		resp.Rcode = dns.RcodeBadVers // RFC 6891 §6.1.3
	default:
		qtype = typeLabel(req.Question[0].Qtype)
		s.answer(resp, req.Question[0])
	}
	if opt != nil {
		// An EDNS0 query gets an OPT back (RFC 6891 §7) with the client's
		// size, as Consul's does (at least 512, at most what this server
		// sends); DNSSEC (the DO bit) is not supported.
		resp.SetEdns0(uint16(udpSize), false)
	}
	if s.observe != nil {
		s.observe(qtype, rcodeLabel(resp.Rcode))
	}
	return resp, size
}

// fit cuts resp to size bytes. Answers that do not fit set TC; additional
// records are optional and are dropped without it (RFC 2181 §9), keeping
// only those of SRV targets still answered.
func fit(resp *dns.Msg, size int) {
	resp.Compress = true
	answers := len(resp.Answer)
	resp.Truncate(size) // may clear Compress when it fits without
	resp.Truncated = len(resp.Answer) < answers
	if len(resp.Extra) == 0 || answers == len(resp.Answer) {
		return
	}
	targets := make(map[string]bool, len(resp.Answer))
	for _, rr := range resp.Answer {
		if srv, ok := rr.(*dns.SRV); ok {
			targets[srv.Target] = true
		}
	}
	extra := resp.Extra[:0]
	for _, rr := range resp.Extra {
		if h := rr.Header(); h.Rrtype == dns.TypeOPT || targets[h.Name] {
			extra = append(extra, rr)
		}
	}
	resp.Extra = extra
}

// answer fills in resp for one question.
func (s *DNSServer) answer(resp *dns.Msg, q dns.Question) {
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		resp.Rcode = dns.RcodeRefused
		return
	}
	labels := dns.SplitDomainName(q.Name)
	if ip, ok, arpa := reverseIP(labels); arpa {
		s.ptr(resp, q, ip, ok)
		return
	}
	n := len(labels) - len(s.labels)
	if n < 0 || !equalLabels(labels[n:], s.labels) {
		// Not ours, and the agent does not recurse.
		resp.Rcode = dns.RcodeRefused
		return
	}
	resp.Authoritative = true
	rest := labels[:n]
	kind, dc := "", ""
	switch {
	case n == 0: // the domain itself
		s.apex(resp, q)
		return
	case kindOf(rest[n-1]) != "":
		kind, rest = kindOf(rest[n-1]), rest[:n-1]
	case n >= 2 && kindOf(rest[n-2]) != "":
		kind, dc, rest = kindOf(rest[n-2]), unescapeLabel(rest[n-1]), rest[:n-2]
	case n == 1 && strings.EqualFold(unescapeLabel(rest[0]), s.b.Datacenter()):
		s.negative(resp, dns.RcodeSuccess, 0) // <dc>.<domain>: names exist below
		return
	default:
		s.negative(resp, dns.RcodeNameError, 0)
		return
	}
	if dc != "" && !strings.EqualFold(dc, s.b.Datacenter()) {
		// One datacenter per cluster: another is unknown here.
		s.negative(resp, dns.RcodeNameError, 0)
		return
	}
	if len(rest) == 0 { // service.<domain> and the like: names exist below
		s.negative(resp, dns.RcodeSuccess, 0)
		return
	}
	switch kind {
	case "service":
		s.service(resp, q, rest)
	case "node":
		s.node(resp, q, rest)
	case "addr":
		s.addr(resp, q, rest)
	}
}

func kindOf(label string) string {
	for _, k := range [...]string{"service", "node", "addr"} {
		if strings.EqualFold(label, k) {
			return k
		}
	}
	return ""
}

func equalLabels(a, b []string) bool {
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

// apex answers for the domain itself: its SOA and its NS, this agent.
func (s *DNSServer) apex(resp *dns.Msg, q dns.Question) {
	any := q.Qtype == dns.TypeANY
	if q.Qtype != dns.TypeSOA && q.Qtype != dns.TypeNS && !any {
		s.negative(resp, dns.RcodeSuccess, 0)
		return
	}
	if q.Qtype == dns.TypeSOA || any {
		resp.Answer = append(resp.Answer, s.soa(s.serial()))
	}
	if q.Qtype == dns.TypeNS || any {
		self := s.b.Self()
		target := self.Config.NodeName + ".node." + s.b.Datacenter() + "." + s.domain
		resp.Answer = append(resp.Answer, &dns.NS{
			Hdr: dns.RR_Header{Name: s.domain, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: s.nodeTTL},
			Ns:  target,
		})
		if ip, err := netip.ParseAddr(self.Member.Addr); err == nil {
			h := dns.RR_Header{Name: target, Class: dns.ClassINET, Ttl: s.nodeTTL}
			if rr := addrRecord(h, ip.Unmap().WithZone(""), true, true); rr != nil {
				resp.Extra = append(resp.Extra, rr)
			}
		}
	}
}

// negative makes resp an NXDOMAIN (rcode RcodeNameError) or an empty
// NOERROR, with the SOA in the authority section as negative caching needs
// (RFC 2308). serial 0 reads the catalog's.
func (s *DNSServer) negative(resp *dns.Msg, rcode int, serial uint32) {
	if serial == 0 {
		serial = s.serial()
	}
	resp.Rcode = rcode
	resp.Answer = nil
	resp.Ns = append(resp.Ns[:0], s.soa(serial))
}

// serial is the SOA serial: the catalog's change index, which moves with
// every change a query could see.
func (s *DNSServer) serial() uint32 {
	var serial uint32
	s.b.Read(func(c *catalog.Catalog) { serial = soaSerial(c) })
	return serial
}

func soaSerial(c *catalog.Catalog) uint32 { return max(uint32(c.Index()), 1) }

func (s *DNSServer) soa(serial uint32) dns.RR {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: s.domain, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 0},
		Ns:      "ns." + s.domain,
		Mbox:    "hostmaster." + s.domain,
		Serial:  serial,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  0,
	}
}

// dnsInstance is what an answer needs of one instance.
type dnsInstance struct {
	node     string
	nodeAddr string // the node's address; empty for a local node the catalog has no address for yet
	addr     string // the instance's own address; empty means its node's
	port     uint16
	weight   uint16
	local    bool
}

// service answers <tags...>.<name>.service and _<name>._<tag>.service.
func (s *DNSServer) service(resp *dns.Msg, q dns.Question, rest []string) {
	var name string
	var tags []string
	if len(rest) == 2 && strings.HasPrefix(rest[0], "_") && strings.HasPrefix(rest[1], "_") {
		// RFC 2782. Service names cannot hold '_', so no other form
		// looks like this.
		name = unescapeLabel(rest[0][1:])
		if tag := unescapeLabel(rest[1][1:]); !strings.EqualFold(tag, "tcp") && !strings.EqualFold(tag, "udp") {
			tags = []string{tag}
		}
	} else {
		name = unescapeLabel(rest[len(rest)-1])
		if len(rest)-1 > catalog.MaxTags {
			s.negative(resp, dns.RcodeNameError, 0) // no instance has that many tags
			return
		}
		for _, l := range rest[:len(rest)-1] {
			tags = append(tags, unescapeLabel(l))
		}
	}
	var (
		insts  []dnsInstance
		serial uint32
		meta   map[string][]string // TXT strings of the nodes, for SRV answers
	)
	withMeta := s.metaTXT && (q.Qtype == dns.TypeSRV || q.Qtype == dns.TypeANY)
	s.b.Read(func(c *catalog.Catalog) {
		serial = soaSerial(c)
		if catalog.ValidateName("name", name) != nil {
			return
		}
		if n, ok := c.FoldServiceName(name); ok {
			name = n
		}
		local := c.LocalName()
		authz := s.authz()
		c.EachInstance(name, func(n catalog.Node, svc *catalog.Service, status catalog.Health) {
			if !authz.Unrestricted() && !canRead(authz, svc.Name, n.Name) {
				return
			}
			// The catalog serves only instances of live nodes; warning
			// counts as healthy, as in Consul's DNS.
			if status > catalog.HealthWarning || !hasTags(svc.Tags, tags) {
				return
			}
			w := svc.Weights.Passing
			if status == catalog.HealthWarning {
				w = svc.Weights.Warning
			}
			if withMeta {
				if _, ok := meta[n.Name]; !ok {
					if meta == nil {
						meta = make(map[string][]string)
					}
					meta[n.Name] = metaStrings(n.Meta)
				}
			}
			insts = append(insts, dnsInstance{
				node:     n.Name,
				nodeAddr: n.Address,
				addr:     svc.Address,
				port:     uint16(svc.Port),
				weight:   uint16(min(max(w, 0), catalog.MaxWeight)),
				local:    n.Name == local,
			})
		})
	})
	if len(insts) == 0 {
		s.negative(resp, dns.RcodeNameError, serial)
		return
	}
	s.fillLocalAddr(insts)
	rand.Shuffle(len(insts), func(i, j int) { insts[i], insts[j] = insts[j], insts[i] })

	wantA, wantAAAA, wantSRV := q.Qtype == dns.TypeA, q.Qtype == dns.TypeAAAA, q.Qtype == dns.TypeSRV
	if q.Qtype == dns.TypeANY {
		wantA, wantAAAA, wantSRV = true, true, true
	}
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: s.svcTTL}
	}
	var (
		seenIP    = make(map[netip.Addr]bool, len(insts))
		hostnames []string
		anyIP     bool
	)
	for _, in := range insts {
		ip, host, ok := in.address()
		switch {
		case !ok:
			continue
		case host != "":
			hostnames = append(hostnames, host)
			continue
		}
		anyIP = true
		if (wantA || wantAAAA) && !seenIP[ip] {
			if rr := addrRecord(hdr(q.Name, 0), ip, wantA, wantAAAA); rr != nil {
				seenIP[ip] = true
				resp.Answer = append(resp.Answer, rr)
			}
		}
	}
	if !anyIP && len(hostnames) > 0 && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA) {
		// Every instance is known by a host name only: the name is an
		// alias of one of them.
		resp.Answer = append(resp.Answer, &dns.CNAME{Hdr: hdr(q.Name, dns.TypeCNAME), Target: dns.Fqdn(hostnames[0])})
	}
	if wantSRV {
		// SRV records answered, by target and port; port 0 marks a
		// target whose address is in the additional section.
		type srvKey struct {
			target string
			port   uint16
		}
		seen := make(map[srvKey]bool, 2*len(insts))
		dc := s.b.Datacenter()
		for _, in := range insts {
			ip, host, ok := in.address()
			if !ok {
				continue
			}
			var target string
			nodeTarget := false
			switch {
			case host != "":
				target = dns.Fqdn(host)
			case in.addr == "" || in.addr == in.nodeAddr:
				target, nodeTarget = in.node+".node."+dc+"."+s.domain, true
			default:
				target = hexIP(ip) + ".addr." + dc + "." + s.domain
			}
			if seen[srvKey{target, in.port}] {
				continue
			}
			seen[srvKey{target, in.port}] = true
			resp.Answer = append(resp.Answer, &dns.SRV{Hdr: hdr(q.Name, dns.TypeSRV), Priority: 1, Weight: in.weight, Port: in.port, Target: target})
			if host == "" && !seen[srvKey{target, 0}] {
				seen[srvKey{target, 0}] = true
				resp.Extra = append(resp.Extra, addrRecord(hdr(target, 0), ip, true, true))
				if nodeTarget && withMeta {
					resp.Extra = appendTXT(resp.Extra, hdr(target, dns.TypeTXT), meta[in.node])
				}
			}
		}
	}
	if len(resp.Answer) == 0 {
		s.negative(resp, dns.RcodeSuccess, serial)
	}
}

// fillLocalAddr gives the local node's instances the agent's own address
// when the catalog has none for it yet (it learns it from memberlist).
func (s *DNSServer) fillLocalAddr(insts []dnsInstance) {
	addr := ""
	for i := range insts {
		if in := &insts[i]; in.local && in.nodeAddr == "" {
			if addr == "" {
				addr = s.b.Self().Member.Addr
			}
			in.nodeAddr = addr
		}
	}
}

// address is where an instance is reached: an IP, or else a host name; ok
// is false when it has neither.
func (in *dnsInstance) address() (ip netip.Addr, host string, ok bool) {
	a := in.addr
	if a == "" {
		a = in.nodeAddr
	}
	if a == "" {
		return netip.Addr{}, "", false
	}
	if ip, err := netip.ParseAddr(a); err == nil {
		return ip.Unmap().WithZone(""), "", true
	}
	return netip.Addr{}, a, true
}

// addrRecord is an A record for an IPv4 address if withA, an AAAA record
// for an IPv6 one if withAAAA, and nil otherwise. h's type is set here.
func addrRecord(h dns.RR_Header, ip netip.Addr, withA, withAAAA bool) dns.RR {
	switch {
	case ip.Is4() && withA:
		h.Rrtype = dns.TypeA
		b := ip.As4()
		return &dns.A{Hdr: h, A: net.IP(b[:])}
	case ip.Is6() && withAAAA:
		h.Rrtype = dns.TypeAAAA
		b := ip.As16()
		return &dns.AAAA{Hdr: h, AAAA: net.IP(b[:])}
	}
	return nil
}

// hexIP is the label of an address in <hex>.addr names, as Consul writes
// it: 8 hex digits for IPv4, 32 for IPv6.
func hexIP(ip netip.Addr) string {
	b := ip.AsSlice()
	return hex.EncodeToString(b)
}

// node answers <node>.node.
func (s *DNSServer) node(resp *dns.Msg, q dns.Question, rest []string) {
	if len(rest) != 1 {
		s.negative(resp, dns.RcodeNameError, 0)
		return
	}
	name := unescapeLabel(rest[0])
	var (
		addr          string
		found, isSelf bool
		serial        uint32
		meta          []string
	)
	s.b.Read(func(c *catalog.Catalog) {
		serial = soaSerial(c)
		if catalog.ValidateName("node", name) != nil {
			return
		}
		if strings.EqualFold(name, c.LocalName()) {
			if !s.authz().Can(acl.Node, c.LocalName(), acl.Read) {
				return
			}
			found, isSelf = true, true
		}
		n, ok := c.FoldNodeName(name)
		if !ok {
			return
		}
		if !s.authz().Can(acl.Node, n, acl.Read) {
			found = false
			return
		}
		nd, _ := c.Node(n)
		if nd.Serving() || nd.Name == c.LocalName() {
			found, addr, meta = true, nd.Address, metaStrings(nd.Meta)
		}
	})
	if !found {
		s.negative(resp, dns.RcodeNameError, serial)
		return
	}
	if isSelf && (addr == "" || meta == nil) {
		self := s.b.Self()
		if addr == "" {
			addr = self.Member.Addr
		}
		if meta == nil {
			meta = metaStrings(self.Meta)
		}
	}
	any := q.Qtype == dns.TypeANY
	if ip, err := netip.ParseAddr(addr); err == nil {
		ip = ip.Unmap().WithZone("")
		h := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: s.nodeTTL}
		if rr := addrRecord(h, ip, any || q.Qtype == dns.TypeA, any || q.Qtype == dns.TypeAAAA); rr != nil {
			resp.Answer = append(resp.Answer, rr)
		}
	}
	txt := dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: s.nodeTTL}
	switch {
	case any || q.Qtype == dns.TypeTXT:
		resp.Answer = appendTXT(resp.Answer, txt, meta)
	case s.metaTXT && len(resp.Answer) > 0:
		resp.Extra = appendTXT(resp.Extra, txt, meta)
	}
	if len(resp.Answer) == 0 {
		s.negative(resp, dns.RcodeSuccess, serial)
	}
}

// addr answers <hex IP>.addr, the SRV targets of instances at an address
// of their own.
func (s *DNSServer) addr(resp *dns.Msg, q dns.Question, rest []string) {
	var ip netip.Addr
	b, err := hex.DecodeString(rest[0])
	if err == nil && len(rest) == 1 {
		ip, _ = netip.AddrFromSlice(b) // 4 or 16 bytes; anything else stays invalid
	}
	if !ip.IsValid() {
		s.negative(resp, dns.RcodeNameError, 0)
		return
	}
	h := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: s.svcTTL}
	any := q.Qtype == dns.TypeANY
	if rr := addrRecord(h, ip.Unmap(), any || q.Qtype == dns.TypeA, any || q.Qtype == dns.TypeAAAA); rr != nil {
		resp.Answer = append(resp.Answer, rr)
		return
	}
	s.negative(resp, dns.RcodeSuccess, 0)
}

// unescapeLabel turns a label in presentation format (as miekg/dns gives
// names: "\." and "\032" for bytes that need escaping) into its bytes.
func unescapeLabel(l string) string {
	if strings.IndexByte(l, '\\') < 0 {
		return l
	}
	b := make([]byte, 0, len(l))
	for i := 0; i < len(l); i++ {
		c := l[i]
		if c == '\\' && i+1 < len(l) {
			if i+3 < len(l) && isDigit(l[i+1]) && isDigit(l[i+2]) && isDigit(l[i+3]) {
				if n := int(l[i+1]-'0')*100 + int(l[i+2]-'0')*10 + int(l[i+3]-'0'); n <= 255 {
					b = append(b, byte(n))
					i += 3
					continue
				}
			}
			i++
			c = l[i]
		}
		b = append(b, c)
	}
	return string(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// typeLabel names a question type for DNSConfig.Observe.
func typeLabel(t uint16) string {
	switch t {
	case dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeANY, dns.TypeCNAME, dns.TypeSOA,
		dns.TypeNS, dns.TypePTR, dns.TypeTXT, dns.TypeMX, dns.TypeHTTPS:
		return dns.TypeToString[t]
	}
	return "other"
}

// rcodeLabel names a response code for DNSConfig.Observe.
func rcodeLabel(rcode int) string {
	if rcode == dns.RcodeBadVers {
		return "BADVERS" // miekg/dns calls 16 BADSIG, its TSIG meaning
	}
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "other"
}

// authz is what the default token may read.
func (s *DNSServer) authz() *acl.Authorizer {
	if s.acl == nil {
		return acl.AllowAll()
	}
	a, err := s.acl().Resolve("")
	if err != nil {
		return &acl.Authorizer{} // reads nothing
	}
	return a
}
