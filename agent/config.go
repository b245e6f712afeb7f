package agent

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-sockaddr/template"
	"github.com/hashicorp/memberlist"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/health"
	"github.com/shoal-sd/shoal/localapi"
)

// Config is everything an agent needs. Start from DefaultConfig (or
// DevConfig) and change what you need; Validate reports the first bad field.
type Config struct {
	// ACL, if set and enabled, makes the HTTP API and DNS check tokens
	// (see package acl). Nil: ACLs off, anyone who reaches the API may do
	// anything.
	ACL *acl.Config
	// AllowedHosts are names besides localhost and the machine's own
	// addresses that requests to the HTTP API may give as their Host
	// (http_config.allowed_hosts); any other Host is refused with 403.
	AllowedHosts []string
	// HTTPSAddr, if set, serves the HTTP API over TLS there too
	// (addresses.https / ports.https, --https-addr), with TLS's files.
	HTTPSAddr string
	TLS       TLSFiles
	// MaxConnsPerClient caps the HTTP connections one client address
	// holds at once (limits.http_max_conns_per_client, as Consul; 0 for
	// no cap). Default DefaultMaxConnsPerClient.
	MaxConnsPerClient int
	// MaxBlocking caps the blocking queries, watch streams and log
	// streams waiting at once across all clients (limits.http_max_blocking,
	// Shoal's own; 0 for no cap); past it they are answered 429. Default
	// DefaultMaxBlocking.
	MaxBlocking int
	// SelfPreservation: when many members fail at once, keep serving
	// their instances (catalog.PreserveConfig); config self_preservation.
	SelfPreservation catalog.PreserveConfig
	// NodeName names this agent in the cluster; unique, DNS-safe.
	// Default: the first label of the host name.
	NodeName string
	// Datacenter is the one datacenter this cluster forms. Queries for any
	// other are refused. Default "dc1".
	Datacenter string
	// NodeMeta is this node's metadata (Consul's node_meta): every agent
	// shows it as the node's Meta and filters on it (?node-meta, ?filter).
	// At most 32 pairs; keys of letters, digits, '_' and '-' up to 128
	// bytes, not starting "shoal-"; values up to 512 bytes. It travels in
	// memberlist's node metadata, so all of it must encode, beside the
	// agent's own facts, in 512 bytes.
	NodeMeta map[string]string
	// BindAddr is the IP (or go-sockaddr template, such as
	// `{{ GetPrivateIP }}`) gossip listens on. Default "0.0.0.0".
	BindAddr string
	// AdvertiseAddr is the IP (or template) other agents reach this one at.
	// Empty: the bind address, or the first private IP if bound to all.
	AdvertiseAddr string
	// Port is the gossip port, TCP and UDP. Default 7946; 0 picks a free one.
	Port int
	// HTTPAddr is where the local HTTP API listens. Default 127.0.0.1:8500.
	HTTPAddr string
	// DNSAddr is where the DNS interface listens, UDP and TCP on the same
	// port. Default 127.0.0.1:8600; port 0 picks a free one; empty turns
	// DNS off.
	DNSAddr string
	// Domain is the DNS domain the agent answers for; names outside it
	// are refused (the agent does not recurse). Default "shoal.".
	Domain string
	// DNSServiceTTL is the TTL of service answers, in whole seconds
	// (0-2^31-1 s). Default 0, as in Consul: a resolver keeps no stale
	// instance.
	DNSServiceTTL time.Duration
	// DNSNodeTTL is the TTL of node answers (<node>.node.<domain>), in
	// whole seconds. Default 0, as in Consul.
	DNSNodeTTL time.Duration
	// DNSNoNodeMetaTXT leaves nodes' metadata (TXT records) out of the
	// additional section of DNS answers: Consul's
	// dns_config.enable_additional_node_meta_txt = false. Default false:
	// they are there, as in Consul.
	DNSNoNodeMetaTXT bool
	// Join lists agents to join at start; the start fails if none answers.
	Join []string
	// RetryJoin lists agents to keep trying, with backoff, until joined.
	RetryJoin []string
	// RetryInterval is the longest wait between retry-join attempts; the
	// wait starts at one second and doubles up to it. Default 30s.
	RetryInterval time.Duration
	// RetryMax gives up retry-join after this many attempts; 0 never does.
	RetryMax int
	// ReconnectInterval is how often the agent tries to rejoin members it
	// holds as failed, so that a cluster split by a partition longer than
	// memberlist remembers dead nodes merges again once it heals.
	// Default 30s.
	ReconnectInterval time.Duration
	// DataDir holds the agent's state across restarts. Empty: none (dev).
	DataDir string
	// EncryptKey is a base64 gossip key of 16, 24 or 32 bytes (see
	// `shoal keygen`); every agent of the cluster needs the same one.
	EncryptKey string
	// EncryptAcceptPlain and EncryptSendPlain are Consul's
	// encrypt_verify_incoming = false and encrypt_verify_outgoing = false:
	// with a key set, accept unencrypted gossip, and send it unencrypted.
	// They let encryption be turned on in a running cluster in three
	// rolling steps (key with both; then send encrypted; then refuse
	// plain) without a split. Both false by default: encrypted only.
	EncryptAcceptPlain, EncryptSendPlain bool
	// TombstoneTTL is how long a deregistration is remembered as such.
	// Once it is reaped, the origin's watermark (the highest counter of a
	// reaped tombstone) still refuses any older copy, however late it
	// comes: a node suspended for a week cannot bring the service back.
	// Default 72h.
	TombstoneTTL time.Duration
	// NodeReapTTL is how long the services of a failed or departed node are
	// kept (hidden) before they are forgotten. Default 72h.
	NodeReapTTL time.Duration
	// EpochMaxSkew is how far ahead of this agent's clock another agent's
	// epoch (its start time, in its node metadata) may be: a later one is
	// refused and counted (shoal_catalog_refused_future_epoch_total), so
	// that no epoch, however forged, comes near wrapping. Default 20 years
	// (catalog.DefaultMaxEpochSkew): an agent whose clock is years off
	// still works.
	EpochMaxSkew time.Duration
	// LeaveTimeout bounds the graceful leave at shutdown. Default 5s.
	LeaveTimeout time.Duration
	// GossipCompression turns on memberlist's LZW compression of every
	// packet and push/pull this agent sends. Off by default: Shoal's
	// messages are small and binary, and compressing each one cost more
	// CPU than the bytes it saved (docs/BENCHMARKS.md, "Gossip
	// compression, off"). Agents always read compressed messages, so a
	// cluster may mix both settings.
	GossipCompression bool
	// Damping holds a flapping check at its worse state (see
	// health.Damping). Default health.DefaultDamping().
	Damping health.Damping
	// Dev marks a development agent: loopback only, no data dir.
	Dev bool
	// ConfigFile is the JSON config file the settings were read from (see
	// LoadConfigFile), or empty; the agent reads it again on reload.
	ConfigFile string
	// Services are the services defined in the config file; the agent
	// registers them at start and replaces them on reload.
	Services []api.AgentServiceRegistration

	// Memberlist, if set, adjusts the memberlist configuration after Shoal
	// has filled it in (tests use it for fast timers and transports).
	Memberlist func(*memberlist.Config)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// PingRTT, if set, replaces the round trip of every ping before it
	// moves the agent's network coordinate (tests give a loopback cluster
	// the latencies of a real network).
	PingRTT func(peer string, measured time.Duration) time.Duration
}

// Defaults for Config.
const (
	DefaultDatacenter = "dc1"
	DefaultPort       = 7946
	DefaultHTTPAddr   = api.DefaultAddr
	DefaultDNSAddr    = "127.0.0.1:8600"
	DefaultDomain     = localapi.DefaultDomain
)

// DefaultConfig returns a production configuration with every field set.
func DefaultConfig() Config {
	return Config{
		NodeName:          defaultNodeName(),
		Datacenter:        DefaultDatacenter,
		BindAddr:          "0.0.0.0",
		Port:              DefaultPort,
		HTTPAddr:          DefaultHTTPAddr,
		DNSAddr:           DefaultDNSAddr,
		Domain:            DefaultDomain,
		RetryInterval:     30 * time.Second,
		ReconnectInterval: 30 * time.Second,
		EpochMaxSkew:      catalog.DefaultMaxEpochSkew,
		MaxConnsPerClient: DefaultMaxConnsPerClient,
		MaxBlocking:       DefaultMaxBlocking,
		TombstoneTTL:      72 * time.Hour,
		NodeReapTTL:       72 * time.Hour,
		LeaveTimeout:      5 * time.Second,
		Damping:           health.DefaultDamping(),
		SelfPreservation:  catalog.DefaultPreserveConfig(),
	}
}

// DevConfig returns the configuration of a single-node development agent:
// everything on loopback, nothing written to disk.
func DevConfig() Config {
	c := DefaultConfig()
	c.Dev = true
	c.BindAddr = "127.0.0.1"
	return c
}

func defaultNodeName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "shoal"
	}
	h = strings.SplitN(h, ".", 2)[0]
	if catalog.ValidateName("node", h) != nil {
		return "shoal"
	}
	return h
}

// Validate checks the configuration and returns an error naming the first
// bad field.
func (c *Config) Validate() error {
	if err := catalog.ValidateName("node", c.NodeName); err != nil {
		return fmt.Errorf("invalid node name: %w", err)
	}
	if err := catalog.ValidateName("datacenter", c.Datacenter); err != nil {
		return fmt.Errorf("invalid datacenter: %w", err)
	}
	if err := c.validateNodeMeta(); err != nil {
		return err
	}
	if err := validateServices(c.Services); err != nil {
		return err
	}
	if _, err := resolveIP("bind", c.BindAddr); err != nil {
		return err
	}
	if c.AdvertiseAddr != "" {
		if _, err := resolveIP("advertise", c.AdvertiseAddr); err != nil {
			return err
		}
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port: %d is out of range 0-65535", c.Port)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("http-addr: %q is not host:port: %w", c.HTTPAddr, err)
	}
	if err := c.validateDNS(); err != nil {
		return err
	}
	if c.RetryInterval <= 0 {
		return fmt.Errorf("retry-interval: must be positive, got %s", c.RetryInterval)
	}
	if c.ReconnectInterval <= 0 {
		return fmt.Errorf("reconnect-interval: must be positive, got %s", c.ReconnectInterval)
	}
	if c.EpochMaxSkew < time.Hour {
		return fmt.Errorf("epoch-max-skew: %s is below an hour; agents whose clocks differ that little would refuse each other", c.EpochMaxSkew)
	}
	if c.RetryMax < 0 {
		return fmt.Errorf("retry-max: must not be negative, got %d", c.RetryMax)
	}
	if c.EncryptKey != "" {
		if _, err := DecodeKey(c.EncryptKey); err != nil {
			return err
		}
	}
	if c.Dev && c.DataDir != "" {
		return fmt.Errorf("data-dir: a dev agent keeps nothing on disk; drop --data-dir or --dev")
	}
	if c.TombstoneTTL <= 0 || c.NodeReapTTL <= 0 || c.LeaveTimeout <= 0 {
		return fmt.Errorf("tombstone-ttl, node-reap-ttl and leave-timeout must be positive")
	}
	return nil
}

// DecodeKey decodes a base64 gossip encryption key and checks its length.
func DecodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("encrypt: key is not valid base64: %w", err)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("encrypt: key is %d bytes; it must be 16, 24 or 32 bytes (use `shoal keygen`)", len(k))
}

// resolveIP turns an IP or a go-sockaddr template into one IP address.
func resolveIP(field, s string) (string, error) {
	out := s
	if strings.Contains(s, "{{") {
		r, err := template.Parse(s)
		if err != nil {
			return "", fmt.Errorf("%s: template %q: %w", field, s, err)
		}
		out = strings.TrimSpace(r)
	}
	if out == "" {
		return "", fmt.Errorf("%s: template %q matched no address", field, s)
	}
	if strings.ContainsAny(out, " \t") {
		return "", fmt.Errorf("%s: %q matched several addresses (%s); narrow it to one", field, s, out)
	}
	if net.ParseIP(out) == nil {
		return "", fmt.Errorf("%s: %q is not an IP address", field, out)
	}
	return out, nil
}
