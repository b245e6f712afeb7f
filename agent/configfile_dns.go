package agent

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-sd/shoal/localapi"
)

// applyDNS sets in cfg the DNS settings the file has. The address is
// assembled like the HTTP API's: addresses.dns (or client_addr, which in
// Consul binds DNS too) and ports.dns, each keeping cfg's host or port
// when the file does not say. client_addr alone leaves DNS off if it is.
func (f *FileConfig) applyDNS(cfg *Config) {
	if f.Domain != nil {
		cfg.Domain = *f.Domain
	}
	if f.DNSServiceTTL != nil {
		cfg.DNSServiceTTL = *f.DNSServiceTTL
	}
	if f.DNSNodeTTL != nil {
		cfg.DNSNodeTTL = *f.DNSNodeTTL
	}
	if f.DNSNodeMetaTXT != nil {
		cfg.DNSNoNodeMetaTXT = !*f.DNSNodeMetaTXT
	}
	if f.DNSPort != nil && *f.DNSPort < 0 {
		cfg.DNSAddr = ""
		return
	}
	if cfg.DNSAddr == "" && f.DNSAddress == nil && f.DNSPort == nil {
		return
	}
	if addr, ok := assembleAddr(cfg.DNSAddr, DefaultDNSAddr, f.DNSPort, f.ClientAddr, f.DNSAddress); ok {
		cfg.DNSAddr = addr
	}
}

// assembleAddr puts into addr (or dflt, if addr is not host:port) the
// last host of hosts that is given and the port, if given; ok is false,
// and addr unchanged, when none is.
func assembleAddr(addr, dflt string, port *int, hosts ...*string) (string, bool) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		h, p, _ = net.SplitHostPort(dflt)
	}
	changed := false
	for _, host := range hosts {
		if host != nil {
			h, changed = *host, true
		}
	}
	if port != nil {
		p, changed = strconv.Itoa(*port), true
	}
	if !changed {
		return addr, false
	}
	return net.JoinHostPort(h, p), true
}

// domain reads the DNS domain; it is kept as written (the agent
// canonicalises it).
func (d *configDecoder) domain(path string, v *jsonNode) (*string, error) {
	s, err := d.str(path, v)
	if err != nil {
		return nil, err
	}
	if _, err := localapi.CanonicalDomain(*s); err != nil {
		return nil, d.errAt(v.off, path, "%s", strings.TrimPrefix(err.Error(), "domain: "))
	}
	return s, nil
}

// dnsConfig reads Consul's dns_config object: the keys Shoal has.
func (d *configDecoder) dnsConfig(f *FileConfig, path string, v *jsonNode) error {
	return d.object(path, v, func(m *jsonMember) (err error) {
		p := path + "." + m.key
		switch m.key {
		case "node_ttl":
			f.DNSNodeTTL, err = d.ttl(p, m.val)
		case "enable_additional_node_meta_txt":
			f.DNSNodeMetaTXT, err = d.boolean(p, m.val)
		case "service_ttl":
			// Consul maps service names (or prefixes ending in '*') to
			// TTLs; Shoal has one TTL for every service.
			err = d.object(p, m.val, func(s *jsonMember) (err error) {
				if s.key != "*" {
					return d.errAt(s.keyOff, p+"."+s.key, `per-service TTLs are not supported; give one TTL for all under "*"`)
				}
				f.DNSServiceTTL, err = d.ttl(p+".*", s.val)
				return err
			})
		default:
			err = d.unknown(p, m)
		}
		return err
	})
}

// ttl reads a DNS TTL written as a duration string: "0s" to 2^31-1 s.
func (d *configDecoder) ttl(path string, v *jsonNode) (*time.Duration, error) {
	if v.kind != kindString {
		return nil, d.errAt(v.off, path, "expected a duration such as \"30s\", got %s", v.kind)
	}
	dur, err := time.ParseDuration(v.str)
	if err != nil {
		return nil, d.errAt(v.off, path, "%q is not a duration such as \"30s\"", v.str)
	}
	if dur < 0 || dur > localapi.MaxDNSTTL {
		return nil, d.errAt(v.off, path, "%q is out of range 0s-%s", v.str, localapi.MaxDNSTTL)
	}
	return &dur, nil
}
