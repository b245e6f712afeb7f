package agent

import (
	"net"
	"strings"
	"sync"
	"time"
)

// hostAllowlist decides which Host headers name this agent (see
// localapi.Config.AllowedHost): the names configured in
// http_config.allowed_hosts, and any address of the machine's own
// interfaces, the bind and advertise addresses included. The interfaces
// are read again when an unknown address comes, at most once a second,
// so that an address added after start (DHCP) is taken.
type hostAllowlist struct {
	names map[string]bool // lower case, without a trailing dot

	mu     sync.Mutex
	ips    map[string]bool
	listed time.Time
}

func newHostAllowlist(names []string, extra ...string) *hostAllowlist {
	h := &hostAllowlist{names: make(map[string]bool), ips: make(map[string]bool)}
	for _, n := range names {
		h.names[strings.ToLower(strings.TrimSuffix(n, "."))] = true
	}
	for _, ip := range extra {
		if p := net.ParseIP(ip); p != nil {
			h.ips[p.String()] = true
		}
	}
	h.relist(time.Now())
	return h
}

// relist reads the interfaces' addresses; the caller holds mu, or is New.
func (h *hostAllowlist) relist(now time.Time) {
	h.listed = now
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			h.ips[n.IP.String()] = true
		}
	}
}

func (h *hostAllowlist) allowed(host string) bool {
	if h.names[strings.ToLower(strings.TrimSuffix(host, "."))] {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	key := ip.String()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ips[key] {
		return true
	}
	if now := time.Now(); now.Sub(h.listed) >= time.Second {
		h.relist(now)
	}
	return h.ips[key]
}

// warnInsecure logs, at start, the settings that leave the agent open
// beyond its machine: gossip without encryption on an address other
// hosts can reach, and the HTTP API beyond loopback without ACLs.
func (a *Agent) warnInsecure() {
	gossipIP, _ := a.g.Advertised()
	if !a.encrypted && !gossipIP.IsLoopback() {
		a.log.Warn("gossip is not encrypted and other hosts can reach it: any of them can join and announce services; set encrypt (shoal keygen)",
			"gossip", a.GossipAddr())
	}
	host, _, err := net.SplitHostPort(a.httpAddr)
	if ip := net.ParseIP(host); err == nil && (ip == nil || !ip.IsLoopback()) && !a.acl.Load().Enabled() {
		a.log.Warn("the HTTP API is served beyond loopback without ACLs: anyone who reaches it may register, deregister, join or stop this agent; enable acl with default_policy deny",
			"http", a.httpAddr)
	}
}
