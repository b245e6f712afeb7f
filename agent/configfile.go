package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-sd/shoal/acl"
	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// FileConfig is what an agent config file sets. A nil pointer (or nil
// slice) is a key the file leaves out, so that Apply changes only what
// the file names. The keys are Consul's where Consul has one.
type FileConfig struct {
	NodeName      *string // node_name
	Datacenter    *string // datacenter
	BindAddr      *string // bind_addr: IP or go-sockaddr template
	AdvertiseAddr *string // advertise_addr: IP or go-sockaddr template
	// ClientAddr (client_addr) is the HTTP API's host when addresses.http
	// is not given, as in Consul. A template is resolved at load.
	ClientAddr *string
	// HTTPAddress (addresses.http) is the HTTP API's host; it beats
	// client_addr. A template is resolved at load.
	HTTPAddress *string
	HTTPPort    *int // ports.http
	SerfLANPort *int // ports.serf_lan: the gossip port; 0 picks a free one
	// DNSAddress (addresses.dns) is the DNS interface's host; it beats
	// client_addr. DNSPort (ports.dns) is its port; -1 turns DNS off, as
	// in Consul. Domain (domain) and the TTLs (dns_config.service_ttl
	// with the key "*" only, dns_config.node_ttl) are as in Consul.
	DNSAddress    *string
	DNSPort       *int
	Domain        *string
	DNSServiceTTL *time.Duration
	DNSNodeTTL    *time.Duration
	// DNSNodeMetaTXT is dns_config.enable_additional_node_meta_txt.
	DNSNodeMetaTXT *bool
	// RetryJoin (retry_join) and StartJoin (start_join, which sets
	// Config.Join) are non-nil when the file has the key, even if the
	// list is empty: an empty list clears what the defaults had.
	RetryJoin         []string
	StartJoin         []string
	RetryInterval     *time.Duration // retry_interval, such as "30s"
	RetryMax          *int           // retry_max
	ReconnectInterval *time.Duration // reconnect_interval (Shoal's own)
	EpochMaxSkew      *time.Duration // epoch_max_skew (Shoal's own)
	DataDir           *string        // data_dir
	Encrypt           *string        // encrypt: base64 gossip key
	// EncryptVerifyIncoming and EncryptVerifyOutgoing are Consul's
	// encrypt_verify_incoming / encrypt_verify_outgoing (default true).
	EncryptVerifyIncoming, EncryptVerifyOutgoing *bool

	ACL          *acl.Config // acl: tokens and policies
	AllowedHosts []string    // http_config.allowed_hosts (Shoal's own)
	// HTTPSAddress (addresses.https) and HTTPSPort (ports.https; -1 or
	// unset: no HTTPS) place the HTTPS API; TLS holds tls.defaults'
	// cert_file, key_file, ca_file and verify_incoming (or Consul's older
	// top-level keys of those names).
	HTTPSAddress      *string
	HTTPSPort         *int
	TLS               TLSFiles
	MaxConnsPerClient *int // limits.http_max_conns_per_client
	MaxBlocking       *int // limits.http_max_blocking (Shoal's own)
	// self_preservation (Shoal's own): enabled, share, min_members,
	// window, max.
	Preserve *catalog.PreserveConfig
	// LogLevel (log_level) and LogJSON (log_json) configure the logger,
	// which is the command line's, not the agent's: Apply ignores them.
	LogLevel *string
	LogJSON  *bool
	// NodeMeta (node_meta) is the node's metadata; the command line's
	// pairs are added to it, replacing those of the same key.
	NodeMeta map[string]string
	// Services holds the file's service definitions (`service` and the
	// items of `services`) in the order the file has them, as written: an
	// empty ID is left empty (it defaults to the name when registered),
	// and checks are decoded but not converted.
	Services []api.AgentServiceRegistration
}

// ConfigFileError is a fault in a config file: where it is and which key.
type ConfigFileError struct {
	File   string // the path given to LoadConfigFile
	Line   int    // 1-based; 0 when the fault has no place in the file
	Column int    // 1-based byte column
	// Key is the path of the faulty key as written in the file, such as
	// "services[1].check.interval"; empty for syntax errors.
	Key string
	Err error
}

// Error is "file:line:column: key: message", without the parts unknown.
func (e *ConfigFileError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the fault itself.
func (e *ConfigFileError) Unwrap() error { return e.Err }

// LoadConfigFile reads one agent config file. The file is JSON in the
// format of Consul's agent configuration (HCL is not supported): the keys
// FileConfig lists, plus `service` (one service definition) and `services`
// (a list of them). A service definition takes Consul's keys in snake_case
// or CamelCase ("check_id" or "CheckID"); the other keys are snake_case
// only. An unknown key, a value of the wrong type or out of range, or a
// service the catalog would refuse is an error that names the file, the
// line and the key's path. A file may be read again at any time (the agent
// does so on reload): loading has no effect but reading it.
func LoadConfigFile(path string) (*FileConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return decodeConfigFile(path, data)
}

// Apply sets in cfg every setting the file has. The HTTP API's address is
// assembled from addresses.http (or client_addr) and ports.http, each of
// them keeping cfg's host or port when the file does not say.
func (f *FileConfig) Apply(cfg *Config) {
	setStr := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setStr(&cfg.NodeName, f.NodeName)
	setStr(&cfg.Datacenter, f.Datacenter)
	if f.NodeMeta != nil {
		cfg.NodeMeta = maps.Clone(f.NodeMeta)
	}
	setStr(&cfg.BindAddr, f.BindAddr)
	setStr(&cfg.AdvertiseAddr, f.AdvertiseAddr)
	setStr(&cfg.DataDir, f.DataDir)
	setStr(&cfg.EncryptKey, f.Encrypt)
	if f.EncryptVerifyIncoming != nil {
		cfg.EncryptAcceptPlain = !*f.EncryptVerifyIncoming
	}
	if f.EncryptVerifyOutgoing != nil {
		cfg.EncryptSendPlain = !*f.EncryptVerifyOutgoing
	}
	if f.ACL != nil {
		c := *f.ACL
		cfg.ACL = &c
	}
	if f.MaxConnsPerClient != nil {
		cfg.MaxConnsPerClient = *f.MaxConnsPerClient
	}
	if f.Preserve != nil {
		cfg.SelfPreservation = *f.Preserve
	}
	if f.MaxBlocking != nil {
		cfg.MaxBlocking = *f.MaxBlocking
	}
	if f.HTTPSPort != nil && *f.HTTPSPort >= 0 {
		host := "127.0.0.1"
		if h, _, err := net.SplitHostPort(cfg.HTTPAddr); err == nil {
			host = h
		}
		for _, h := range []*string{f.ClientAddr, f.HTTPSAddress} {
			if h != nil {
				host = *h
			}
		}
		cfg.HTTPSAddr = net.JoinHostPort(host, strconv.Itoa(*f.HTTPSPort))
	}
	if f.TLS != (TLSFiles{}) {
		cfg.TLS = f.TLS
	}
	if f.AllowedHosts != nil {
		cfg.AllowedHosts = slices.Clone(f.AllowedHosts)
	}
	if f.SerfLANPort != nil {
		cfg.Port = *f.SerfLANPort
	}
	if addr, ok := assembleAddr(cfg.HTTPAddr, DefaultHTTPAddr, f.HTTPPort, f.ClientAddr, f.HTTPAddress); ok {
		cfg.HTTPAddr = addr
	}
	f.applyDNS(cfg)
	if f.StartJoin != nil {
		cfg.Join = listOrNil(f.StartJoin)
	}
	if f.RetryJoin != nil {
		cfg.RetryJoin = listOrNil(f.RetryJoin)
	}
	if f.RetryInterval != nil {
		cfg.RetryInterval = *f.RetryInterval
	}
	if f.RetryMax != nil {
		cfg.RetryMax = *f.RetryMax
	}
	if f.ReconnectInterval != nil {
		cfg.ReconnectInterval = *f.ReconnectInterval
	}
	if f.EpochMaxSkew != nil {
		cfg.EpochMaxSkew = *f.EpochMaxSkew
	}
	if f.Services != nil {
		cfg.Services = slices.Clone(f.Services)
	}
}

// listOrNil copies a list, and makes an empty one nil, as a config
// without the setting has it.
func listOrNil(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return slices.Clone(l)
}

// ParseLogLevel turns a log level name into a slog level. It takes
// Consul's names too ("trace" logs as debug, "err" as error), so that a
// Consul config file's log_level works.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "trace", "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "err", "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not one of debug, info, warn, error", s)
}

// maxConfigDepth bounds the nesting of a config file; a valid one nests
// six deep (services[0].check.header.name[0]).
const maxConfigDepth = 32

// decodeConfigFile decodes the bytes of a config file; name is the file
// named in errors.
func decodeConfigFile(name string, data []byte) (*FileConfig, error) {
	d := &configDecoder{name: name, data: data}
	root, err := d.parse()
	if err != nil {
		return nil, err
	}
	if root.kind != kindObject {
		return nil, d.errAt(root.off, "", "expected a JSON object, got %s", root.kind)
	}
	f := &FileConfig{}
	ids := map[string]string{} // service ID → the path of its definition
	for _, m := range root.members {
		if err := d.topLevel(f, m, ids); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// topLevel decodes one key of the file's top-level object into f.
func (d *configDecoder) topLevel(f *FileConfig, m *jsonMember, ids map[string]string) error {
	k, v := m.key, m.val
	if v.kind == kindNull {
		return nil // as if left out, like encoding/json
	}
	var err error
	switch k {
	case "node_name":
		f.NodeName, err = d.dnsName(k, v, "node")
	case "datacenter":
		f.Datacenter, err = d.dnsName(k, v, "datacenter")
	case "node_meta":
		f.NodeMeta, err = d.nodeMeta(k, v)
	case "bind_addr":
		f.BindAddr, err = d.str(k, v)
	case "advertise_addr":
		f.AdvertiseAddr, err = d.str(k, v)
	case "client_addr":
		f.ClientAddr, err = d.host(k, v)
	case "data_dir":
		f.DataDir, err = d.str(k, v)
	case "encrypt":
		if f.Encrypt, err = d.str(k, v); err == nil {
			if _, kerr := DecodeKey(*f.Encrypt); kerr != nil {
				// DecodeKey's message starts "encrypt: ".
				err = d.errAt(v.off, k, "%s", strings.TrimPrefix(kerr.Error(), "encrypt: "))
			}
		}
	case "log_level":
		if f.LogLevel, err = d.str(k, v); err == nil {
			if _, lerr := ParseLogLevel(*f.LogLevel); lerr != nil {
				err = d.errAt(v.off, k, "%v", lerr)
			}
		}
	case "log_json":
		f.LogJSON, err = d.boolean(k, v)
	case "retry_join":
		f.RetryJoin, err = d.list(k, v)
	case "start_join":
		f.StartJoin, err = d.list(k, v)
	case "retry_interval":
		f.RetryInterval, err = d.duration(k, v)
	case "reconnect_interval":
		f.ReconnectInterval, err = d.duration(k, v)
	case "epoch_max_skew":
		f.EpochMaxSkew, err = d.duration(k, v)
	case "retry_max":
		f.RetryMax, err = d.integer(k, v, 0, 1<<31-1)
	case "ports":
		err = d.object(k, v, func(m *jsonMember) (err error) {
			p := k + "." + m.key
			switch m.key {
			case "serf_lan":
				f.SerfLANPort, err = d.integer(p, m.val, 0, 65535)
			case "http":
				f.HTTPPort, err = d.integer(p, m.val, 0, 65535)
			case "dns":
				f.DNSPort, err = d.integer(p, m.val, -1, 65535)
			case "https":
				f.HTTPSPort, err = d.integer(p, m.val, -1, 65535)
			default:
				err = d.unknown(p, m)
			}
			return err
		})
	case "addresses":
		err = d.object(k, v, func(m *jsonMember) (err error) {
			p := k + "." + m.key
			switch m.key {
			case "http":
				f.HTTPAddress, err = d.host(p, m.val)
			case "dns":
				f.DNSAddress, err = d.host(p, m.val)
			case "https":
				f.HTTPSAddress, err = d.host(p, m.val)
			default:
				err = d.unknown(p, m)
			}
			return err
		})
	case "domain":
		f.Domain, err = d.domain(k, v)
	case "dns_config":
		err = d.dnsConfig(f, k, v)
	case "encrypt_verify_incoming":
		f.EncryptVerifyIncoming, err = d.boolean(k, v)
	case "encrypt_verify_outgoing":
		f.EncryptVerifyOutgoing, err = d.boolean(k, v)
	case "acl":
		err = d.aclConfig(f, k, v)
	case "cert_file", "key_file", "ca_file", "verify_incoming":
		err = d.tlsKey(f, k, k, v) // Consul's keys before tls.defaults
	case "tls":
		err = d.object(k, v, func(m *jsonMember) error {
			if m.key != "defaults" {
				return d.unknown(k+"."+m.key, m)
			}
			return d.object(k+".defaults", m.val, func(dm *jsonMember) error {
				return d.tlsKey(f, k+".defaults."+dm.key, dm.key, dm.val)
			})
		})
	case "self_preservation":
		err = d.preserveConfig(f, k, v)
	case "limits":
		err = d.object(k, v, func(m *jsonMember) (err error) {
			p := k + "." + m.key
			switch m.key {
			case "http_max_conns_per_client":
				f.MaxConnsPerClient, err = d.integer(p, m.val, 0, 1<<20)
			case "http_max_blocking":
				f.MaxBlocking, err = d.integer(p, m.val, 0, 1<<24)
			default:
				err = d.unknown(p, m)
			}
			return err
		})
	case "http_config":
		err = d.object(k, v, func(m *jsonMember) (err error) {
			p := k + "." + m.key
			switch m.key {
			case "allowed_hosts":
				f.AllowedHosts, err = d.list(p, m.val)
			case "response_headers", "allow_write_http_from", "use_cache":
				// Consul's; Shoal has nothing to do with them.
			default:
				err = d.unknown(p, m)
			}
			return err
		})
	case "service":
		err = d.addService(f, k, v, ids)
	case "services":
		if v.kind != kindArray {
			return d.typeErr(k, v, kindArray)
		}
		for i, e := range v.elems {
			if err := d.addService(f, k+"["+strconv.Itoa(i)+"]", e, ids); err != nil {
				return err
			}
		}
	default:
		return d.unknown(k, m)
	}
	return err
}

func (d *configDecoder) unknown(path string, m *jsonMember) error {
	return d.errAt(m.keyOff, path, "unknown key")
}

func (d *configDecoder) str(path string, v *jsonNode) (*string, error) {
	if v.kind != kindString {
		return nil, d.typeErr(path, v, kindString)
	}
	s := v.str
	return &s, nil
}

// boolean reads true or false.
func (d *configDecoder) boolean(path string, v *jsonNode) (*bool, error) {
	if v.kind != kindBool {
		return nil, d.typeErr(path, v, kindBool)
	}
	b := v.b
	return &b, nil
}

// dnsName reads a DNS-safe name: node_name, datacenter.
func (d *configDecoder) dnsName(path string, v *jsonNode, what string) (*string, error) {
	s, err := d.str(path, v)
	if err != nil {
		return nil, err
	}
	if err := catalog.ValidateName(what, *s); err != nil {
		var fe *catalog.FieldError
		if errors.As(err, &fe) {
			return nil, d.errAt(v.off, path, "%s", fe.Msg)
		}
		return nil, d.errAt(v.off, path, "%v", err)
	}
	return s, nil
}

// host reads the HTTP API's host: an IP, a host name or a go-sockaddr
// template, which is resolved here since the agent listens on what it is
// given. Consul takes a space-separated list; Shoal listens on one address.
func (d *configDecoder) host(path string, v *jsonNode) (*string, error) {
	s, err := d.str(path, v)
	if err != nil {
		return nil, err
	}
	h := strings.TrimSpace(*s)
	if strings.Contains(h, "{{") {
		if h, err = resolveIP(path, h); err != nil {
			return nil, d.errAt(v.off, path, "%s", strings.TrimPrefix(err.Error(), path+": "))
		}
	}
	switch {
	case h == "":
		return nil, d.errAt(v.off, path, "must not be empty")
	case strings.ContainsAny(h, " \t"):
		return nil, d.errAt(v.off, path, "%q lists several addresses; Shoal listens on one", h)
	case strings.ContainsAny(h, "[]/") || strings.Count(h, ":") == 1:
		port := "ports.http"
		if path == "addresses.dns" {
			port = "ports.dns"
		}
		return nil, d.errAt(v.off, path, "%q is not an IP address or host name (the port is set by %s)", h, port)
	}
	return &h, nil
}

// list reads a list of addresses.
func (d *configDecoder) list(path string, v *jsonNode) ([]string, error) {
	if v.kind != kindArray {
		return nil, d.typeErr(path, v, kindArray)
	}
	out := make([]string, 0, len(v.elems))
	for i, e := range v.elems {
		p := path + "[" + strconv.Itoa(i) + "]"
		s, err := d.str(p, e)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(*s) == "" {
			return nil, d.errAt(e.off, p, "must not be empty")
		}
		out = append(out, strings.TrimSpace(*s))
	}
	return out, nil
}

// preserveConfig reads self_preservation: every key optional, the rest
// as DefaultPreserveConfig.
func (d *configDecoder) preserveConfig(f *FileConfig, k string, v *jsonNode) error {
	pc := catalog.DefaultPreserveConfig()
	err := d.object(k, v, func(m *jsonMember) error {
		p := k + "." + m.key
		switch m.key {
		case "enabled":
			b, err := d.boolean(p, m.val)
			if err != nil {
				return err
			}
			pc.Enabled = *b
		case "share":
			if m.val.kind != kindNumber {
				return d.typeErr(p, m.val, kindNumber)
			}
			x, err := strconv.ParseFloat(m.val.num, 64)
			if err != nil || x <= 0 || x >= 1 {
				return d.errAt(m.val.off, p, "%s must be a number above 0 and below 1", m.val.num)
			}
			pc.Share = x
		case "min_members":
			n, err := d.integer(p, m.val, 2, 1<<20)
			if err != nil {
				return err
			}
			pc.MinMembers = *n
		case "window", "max":
			dur, err := d.duration(p, m.val)
			if err != nil {
				return err
			}
			if m.key == "window" {
				pc.Window = *dur
			} else {
				pc.Max = *dur
			}
		default:
			return d.unknown(p, m)
		}
		return nil
	})
	f.Preserve = &pc
	return err
}

// duration reads a positive Go duration written as a string, "30s".
func (d *configDecoder) duration(path string, v *jsonNode) (*time.Duration, error) {
	if v.kind != kindString {
		return nil, d.errAt(v.off, path, "expected a duration such as \"30s\", got %s", v.kind)
	}
	dur, err := time.ParseDuration(v.str)
	if err != nil {
		return nil, d.errAt(v.off, path, "%q is not a duration such as \"30s\"", v.str)
	}
	if dur <= 0 {
		return nil, d.errAt(v.off, path, "%q must be positive", v.str)
	}
	return &dur, nil
}

// integer reads a whole number in [lo, hi].
func (d *configDecoder) integer(path string, v *jsonNode, lo, hi int64) (*int, error) {
	if v.kind != kindNumber {
		return nil, d.typeErr(path, v, kindNumber)
	}
	n, err := strconv.ParseInt(v.num, 10, 64)
	if err != nil && strings.ContainsAny(v.num, ".eE") {
		return nil, d.errAt(v.off, path, "%s is not a whole number", v.num)
	}
	if err != nil { // too big for int64
		return nil, d.errAt(v.off, path, "%s is out of range %d-%d", v.num, lo, hi)
	}
	if n < lo || n > hi {
		return nil, d.errAt(v.off, path, "%d is out of range %d-%d", n, lo, hi)
	}
	i := int(n)
	return &i, nil
}

// object calls each for every member of an object.
func (d *configDecoder) object(path string, v *jsonNode, each func(*jsonMember) error) error {
	if v.kind != kindObject {
		return d.typeErr(path, v, kindObject)
	}
	for _, m := range v.members {
		if m.val.kind == kindNull {
			continue
		}
		if err := each(m); err != nil {
			return err
		}
	}
	return nil
}

// addService decodes one service definition, checks it as the catalog
// would at registration, and refuses an ID another definition has.
func (d *configDecoder) addService(f *FileConfig, path string, v *jsonNode, ids map[string]string) error {
	if v.kind != kindObject {
		return d.typeErr(path, v, kindObject)
	}
	var reg api.AgentServiceRegistration
	if err := d.into(path, v, reflect.ValueOf(&reg).Elem()); err != nil {
		return err
	}
	if reg.Kind != "" {
		p, off := d.catalogPath(path, v, "Kind")
		return d.errAt(off, p, "%q is not supported; Shoal registers typical services only", reg.Kind)
	}
	s, _ := registrationService(reg)
	s = s.Normalize()
	if err := s.Validate(); err != nil {
		var fe *catalog.FieldError
		if !errors.As(err, &fe) {
			return d.errAt(v.off, path, "%v", err)
		}
		p, off := d.catalogPath(path, v, fe.Field)
		return d.errAt(off, p, "%w", &fieldMsg{fe})
	}
	if prev, dup := ids[s.ID]; dup {
		return d.errAt(v.off, path, "ID %q is also the ID of %s (an ID defaults to the name)", s.ID, prev)
	}
	ids[s.ID] = path
	f.Services = append(f.Services, reg)
	return nil
}

// fieldMsg is a catalog field error without its field, which the config
// file's key path replaces; errors.Is(err, catalog.ErrInvalid) still holds.
type fieldMsg struct{ fe *catalog.FieldError }

func (e *fieldMsg) Error() string { return e.fe.Msg }
func (e *fieldMsg) Unwrap() error { return e.fe }

// catalogPath turns a catalog field ("Port", "Tags[2]", "Weights.Passing")
// into the path of the key the file wrote for it, and where that key is.
func (d *configDecoder) catalogPath(base string, v *jsonNode, field string) (string, int) {
	path, off, cur := base, v.off, v
	for _, seg := range strings.Split(field, ".") {
		name, idx, _ := strings.Cut(seg, "[")
		if idx != "" {
			idx = "[" + idx
		}
		if name == "Service" && cur == v {
			return base, v.off // the whole service
		}
		var m *jsonMember
		if cur != nil {
			m = cur.member(normKey(name))
		}
		if m == nil {
			path += "." + snakeCase(name) + idx
			cur = nil
			continue
		}
		path += "." + m.key + idx
		off, cur = m.keyOff, m.val
	}
	return path, off
}

func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' && s[i-1] >= 'a' && s[i-1] <= 'z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}

// normKey is how keys of a service definition match fields: case and
// underscores ignored, so that "check_id", "CheckID" and "checkid" are one.
func normKey(k string) string {
	return strings.ToLower(strings.ReplaceAll(k, "_", ""))
}

// keyAliases are the keys Consul's service definitions take whose
// normalized spelling differs from the JSON name of the api field.
var keyAliases = map[reflect.Type]map[string]string{
	reflect.TypeFor[api.AgentServiceCheck](): {"id": "checkid", "args": "scriptargs"},
}

// fieldsByKey indexes the fields of a struct type by the normalized JSON
// name (the json tag's name, else the Go name), so that fields added to
// the api types are accepted here without change.
func fieldsByKey(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[normKey(name)] = f
	}
	for alias, to := range keyAliases[t] {
		if f, ok := out[to]; ok {
			if _, taken := out[alias]; !taken {
				out[alias] = f
			}
		}
	}
	return out
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// into decodes v into dst, a service definition or part of one, naming
// the key path in every error. Object keys of structs match fields by
// normKey; keys of maps (meta, header names, tagged address names) are the
// user's and are kept as written.
func (d *configDecoder) into(path string, v *jsonNode, dst reflect.Value) error {
	if v.kind == kindNull {
		return nil // as encoding/json: leave the zero value
	}
	if dst.CanAddr() && dst.Addr().Type().Implements(jsonUnmarshaler) {
		if err := json.Unmarshal(d.data[v.off:v.end], dst.Addr().Interface()); err != nil {
			return d.errAt(v.off, path, "%v", err)
		}
		return nil
	}
	switch dst.Kind() {
	case reflect.Pointer:
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		return d.into(path, v, dst.Elem())
	case reflect.Struct:
		if v.kind != kindObject {
			return d.typeErr(path, v, kindObject)
		}
		fields := fieldsByKey(dst.Type())
		seen := map[string]string{} // field name → the key that set it
		for _, m := range v.members {
			p := path + "." + m.key
			f, ok := fields[normKey(m.key)]
			if !ok {
				return d.unknown(p, m)
			}
			if other, dup := seen[f.Name]; dup {
				return d.errAt(m.keyOff, p, "sets the same field as %q", other)
			}
			seen[f.Name] = m.key
			if err := d.into(p, m.val, dst.FieldByIndex(f.Index)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if v.kind != kindObject {
			return d.typeErr(path, v, kindObject)
		}
		if dst.Type().Key().Kind() != reflect.String {
			break
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMapWithSize(dst.Type(), len(v.members)))
		}
		for _, m := range v.members {
			p := path + "[" + m.key + "]"
			e := reflect.New(dst.Type().Elem()).Elem()
			if err := d.into(p, m.val, e); err != nil {
				return err
			}
			dst.SetMapIndex(reflect.ValueOf(m.key).Convert(dst.Type().Key()), e)
		}
		return nil
	case reflect.Slice:
		if v.kind != kindArray {
			return d.typeErr(path, v, kindArray)
		}
		s := reflect.MakeSlice(dst.Type(), len(v.elems), len(v.elems))
		for i, e := range v.elems {
			p := path + "[" + strconv.Itoa(i) + "]"
			if e.kind == kindNull {
				return d.errAt(e.off, p, "must not be null")
			}
			if err := d.into(p, e, s.Index(i)); err != nil {
				return err
			}
		}
		dst.Set(s)
		return nil
	case reflect.String:
		if v.kind != kindString {
			return d.typeErr(path, v, kindString)
		}
		dst.SetString(v.str)
		return nil
	case reflect.Bool:
		b, err := d.boolean(path, v)
		if err != nil {
			return err
		}
		dst.SetBool(*b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.kind != kindNumber {
			return d.typeErr(path, v, kindNumber)
		}
		n, err := strconv.ParseInt(v.num, 10, 64)
		if err != nil || dst.OverflowInt(n) {
			return d.errAt(v.off, path, "%s is not a whole number in range", v.num)
		}
		dst.SetInt(n)
		return nil
	}
	// Anything else (unsigned, float, interface): encoding/json's rules.
	if dst.CanAddr() {
		if err := json.Unmarshal(d.data[v.off:v.end], dst.Addr().Interface()); err != nil {
			return d.errAt(v.off, path, "%v", err)
		}
		return nil
	}
	return d.errAt(v.off, path, "cannot be set from a config file")
}

// The config file is first parsed into a tree of jsonNodes that remember
// where each value and key starts, so that every error can give a line,
// and so that duplicate keys can be refused (encoding/json keeps the last).

type jsonKind string

const (
	kindObject jsonKind = "an object"
	kindArray  jsonKind = "an array"
	kindString jsonKind = "a string"
	kindNumber jsonKind = "a number"
	kindBool   jsonKind = "true or false"
	kindNull   jsonKind = "null"
)

type jsonNode struct {
	kind     jsonKind
	off, end int // the value is data[off:end]
	str      string
	num      string
	b        bool
	members  []*jsonMember
	elems    []*jsonNode
}

type jsonMember struct {
	key    string
	keyOff int
	val    *jsonNode
}

// member finds the member whose normalized key is k.
func (n *jsonNode) member(k string) *jsonMember {
	for _, m := range n.members {
		if normKey(m.key) == k {
			return m
		}
	}
	return nil
}

type configDecoder struct {
	name string
	data []byte
	dec  *json.Decoder
}

func (d *configDecoder) parse() (*jsonNode, error) {
	if len(bytes.TrimSpace(d.data)) == 0 {
		return nil, &ConfigFileError{File: d.name, Err: errors.New("empty; expected a JSON object")}
	}
	d.dec = json.NewDecoder(bytes.NewReader(d.data))
	d.dec.UseNumber()
	root, err := d.value(0)
	if err != nil {
		return nil, err
	}
	off := d.skip(int(d.dec.InputOffset()))
	if off < len(d.data) {
		return nil, d.errAt(off, "", "unexpected data after the JSON object")
	}
	return root, nil
}

// skip moves off past white space and the separators that Token consumes
// before the next token.
func (d *configDecoder) skip(off int) int {
	for off < len(d.data) {
		switch d.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}

// token reads the next token and where it starts.
func (d *configDecoder) token() (json.Token, int, error) {
	off := d.skip(int(d.dec.InputOffset()))
	tok, err := d.dec.Token()
	if err != nil {
		var syn *json.SyntaxError
		switch {
		case errors.As(err, &syn):
			// Offset is just past the byte at fault.
			return nil, 0, d.errAt(max(int(syn.Offset)-1, off), "", "invalid JSON: %s", strings.TrimPrefix(syn.Error(), "json: "))
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, 0, d.errAt(len(d.data), "", "invalid JSON: unexpected end of file")
		}
		return nil, 0, d.errAt(off, "", "invalid JSON: %v", err)
	}
	return tok, off, nil
}

func (d *configDecoder) value(depth int) (*jsonNode, error) {
	tok, off, err := d.token()
	if err != nil {
		return nil, err
	}
	n := &jsonNode{off: off}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxConfigDepth {
			return nil, d.errAt(off, "", "invalid JSON: nested more than %d deep", maxConfigDepth)
		}
		switch t {
		case '{':
			n.kind = kindObject
			keys := map[string]int{}
			for d.dec.More() {
				tok, keyOff, err := d.token()
				if err != nil {
					return nil, err
				}
				key, ok := tok.(string)
				if !ok { // Token refuses this itself; be safe
					return nil, d.errAt(keyOff, "", "invalid JSON: object key is not a string")
				}
				if first, dup := keys[key]; dup {
					line, _ := d.lineCol(first)
					return nil, d.errAt(keyOff, "", "key %q is given twice (first on line %d)", key, line)
				}
				keys[key] = keyOff
				val, err := d.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.members = append(n.members, &jsonMember{key: key, keyOff: keyOff, val: val})
			}
		case '[':
			n.kind = kindArray
			for d.dec.More() {
				e, err := d.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, e)
			}
		default:
			return nil, d.errAt(off, "", "invalid JSON: unexpected %q", rune(t))
		}
		if _, _, err := d.token(); err != nil { // the closing delimiter
			return nil, err
		}
	case string:
		n.kind, n.str = kindString, t
	case json.Number:
		n.kind, n.num = kindNumber, string(t)
	case bool:
		n.kind, n.b = kindBool, t
	case nil:
		n.kind = kindNull
	default:
		return nil, d.errAt(off, "", "invalid JSON: unexpected %v", tok)
	}
	n.end = int(d.dec.InputOffset())
	return n, nil
}

func (d *configDecoder) lineCol(off int) (line, col int) {
	off = min(max(off, 0), len(d.data))
	before := d.data[:off]
	return 1 + bytes.Count(before, []byte("\n")), off - bytes.LastIndexByte(before, '\n')
}

// errAt is an error at byte off of the file about the key at path.
func (d *configDecoder) errAt(off int, path, format string, args ...any) error {
	line, col := d.lineCol(off)
	return &ConfigFileError{File: d.name, Line: line, Column: col, Key: path, Err: fmt.Errorf(format, args...)}
}

func (d *configDecoder) typeErr(path string, v *jsonNode, want jsonKind) error {
	return d.errAt(v.off, path, "expected %s, got %s", want, v.kind)
}
