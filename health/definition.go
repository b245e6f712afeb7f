// Package health runs the agent's health checks (HTTP, TCP, gRPC and TTL)
// for its own service instances and node, and reports their results
// through callbacks: the agent owns gossip, this package owns the runners.
//
// A Manager runs one goroutine per check. A raw result goes through the
// check's thresholds (SuccessBeforePassing, FailuresBeforeWarning,
// FailuresBeforeCritical), then through flap damping, and what comes out
// is the reported state that Config.Notify hears about. Behaviour follows
// Consul's agent wherever Consul has one; flap damping is Shoal's own.
package health

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// MinInterval is the shortest Interval an HTTP, TCP or gRPC check may
// have, as in Consul. It is a variable so that tests can lower it before
// they start any check; nothing else should change it.
var MinInterval = time.Second

// DefaultTimeout is the Timeout of a check that names none, as in Consul.
const DefaultTimeout = 10 * time.Second

// MaxOutput is the most output, in bytes, that a result keeps.
const MaxOutput = 4096

// Definition is what a check runs, as registered. Exactly one of HTTP,
// TCP, TTL and GRPC is set.
type Definition struct {
	ID        string
	Name      string
	ServiceID string // "" for a node check
	Notes     string

	// HTTP is the URL to request; 2xx is passing, 429 warning, anything
	// else critical.
	HTTP          string
	Method        string              // default GET
	Header        map[string][]string // a "Host" entry sets the request's Host
	Body          string
	TLSSkipVerify bool   // HTTP and GRPC with TLS: do not verify the server's certificate
	TLSServerName string // HTTP and GRPC with TLS: the name to verify instead of the URL's host

	// TCP is a host:port to connect to; a connection is passing.
	TCP string

	// TTL checks are set by UpdateTTL and turn critical without an update
	// within TTL.
	TTL time.Duration

	// GRPC is "host:port" or "host:port/service", asked with the standard
	// grpc.health.v1 Check; SERVING is passing, anything else critical.
	GRPC       string
	GRPCUseTLS bool

	// Interval is required for HTTP, TCP and GRPC, at least MinInterval.
	Interval time.Duration
	// Timeout bounds one run; 0 means DefaultTimeout, and it is cut to
	// Interval when longer.
	Timeout time.Duration

	// SuccessBeforePassing is how many passing results in a row it takes
	// to report passing; FailuresBeforeCritical how many failing ones to
	// report the failure. 0 and 1 both mean at once. FailuresBeforeWarning,
	// when set and smaller, reports warning after that many failures while
	// the check waits for FailuresBeforeCritical (Consul's semantics).
	SuccessBeforePassing   int
	FailuresBeforeWarning  int
	FailuresBeforeCritical int

	// DeregisterCriticalServiceAfter, for service checks only, asks
	// Config.Deregister to remove the service once the check has reported
	// critical for longer than this. 0 means never.
	DeregisterCriticalServiceAfter time.Duration

	// OutputMaxSize caps Result.Output in bytes; 0 or more than MaxOutput
	// means MaxOutput.
	OutputMaxSize int

	// Status is the state before the first result; zero means critical,
	// Consul's default.
	Status catalog.Health
}

// Check kinds, as Definition.Type names them.
const (
	TypeHTTP = "http"
	TypeTCP  = "tcp"
	TypeTTL  = "ttl"
	TypeGRPC = "grpc"
)

// Type names the kind of check: "http", "tcp", "ttl" or "grpc"; "" when
// none of them is set.
func (d Definition) Type() string {
	switch {
	case d.HTTP != "":
		return TypeHTTP
	case d.TCP != "":
		return TypeTCP
	case d.TTL != 0:
		return TypeTTL
	case d.GRPC != "":
		return TypeGRPC
	}
	return ""
}

func fieldErr(field, format string, args ...any) error {
	return &catalog.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks d and returns a *catalog.FieldError naming the first
// bad field by Consul's JSON name ("CheckID", "Interval", "HTTP", …).
func (d Definition) Validate() error {
	kinds := 0
	for _, k := range []struct {
		field string
		set   bool
	}{{"HTTP", d.HTTP != ""}, {"TCP", d.TCP != ""}, {"TTL", d.TTL != 0}, {"GRPC", d.GRPC != ""}} {
		if !k.set {
			continue
		}
		if kinds++; kinds > 1 {
			return fieldErr(k.field, "cannot be combined with another kind of check: set one of HTTP, TCP, GRPC and TTL")
		}
	}
	if kinds == 0 {
		return fieldErr("HTTP", "no kind of check given: set one of HTTP, TCP, GRPC and TTL")
	}
	if d.Status != 0 && !d.Status.Valid() {
		return fieldErr("Status", "must be passing, warning or critical")
	}
	// The catalog's rules for what is gossiped (ID, Name, Notes sizes and
	// characters) apply from registration on, so a check that could never
	// be gossiped is refused here rather than later.
	if err := (catalog.Check{ID: d.ID, Name: d.Name, ServiceID: d.ServiceID, Type: d.Type(),
		Status: d.initial(), Notes: d.Notes}).Validate(); err != nil {
		return err
	}
	switch d.Type() {
	case TypeHTTP:
		u, err := url.Parse(d.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fieldErr("HTTP", "%q is not an http:// or https:// URL", d.HTTP)
		}
		if _, err := http.NewRequest(d.method(), d.HTTP, nil); err != nil {
			return fieldErr("Method", "%q is not an HTTP method", d.Method)
		}
		for k := range d.Header {
			if !validHeaderName(k) {
				return fieldErr("Header", "%q is not a header name", k)
			}
		}
	case TypeTCP:
		if !validHostPort(d.TCP) {
			return fieldErr("TCP", "%q is not host:port", d.TCP)
		}
	case TypeTTL:
		if d.TTL < 0 {
			return fieldErr("TTL", "must be positive, not %s", d.TTL)
		}
	case TypeGRPC:
		addr, _, _ := strings.Cut(d.GRPC, "/")
		if !validHostPort(addr) {
			return fieldErr("GRPC", "%q is not host:port or host:port/service", d.GRPC)
		}
	}
	if d.Type() != TypeTTL {
		if d.Interval == 0 {
			return fieldErr("Interval", "is required for a %s check", strings.ToUpper(d.Type()))
		}
		if d.Interval < MinInterval {
			return fieldErr("Interval", "%s is shorter than the minimum of %s", d.Interval, MinInterval)
		}
	}
	if d.Timeout < 0 {
		return fieldErr("Timeout", "must not be negative")
	}
	for _, n := range []struct {
		field string
		v     int
	}{{"SuccessBeforePassing", d.SuccessBeforePassing}, {"FailuresBeforeWarning", d.FailuresBeforeWarning},
		{"FailuresBeforeCritical", d.FailuresBeforeCritical}, {"OutputMaxSize", d.OutputMaxSize}} {
		if n.v < 0 {
			return fieldErr(n.field, "must not be negative")
		}
	}
	if d.DeregisterCriticalServiceAfter < 0 {
		return fieldErr("DeregisterCriticalServiceAfter", "must not be negative")
	}
	if d.DeregisterCriticalServiceAfter > 0 && d.ServiceID == "" {
		return fieldErr("DeregisterCriticalServiceAfter", "applies to service checks only; this check has no ServiceID")
	}
	return nil
}

func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	return err == nil && host != "" && port != "" && !strings.ContainsAny(s, " \t\r\n/")
}

// validHeaderName accepts RFC 9110 tokens, which is what net/http will send.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func (d Definition) initial() catalog.Health {
	if d.Status == 0 {
		return catalog.HealthCritical
	}
	return d.Status
}

func (d Definition) method() string {
	if d.Method == "" {
		return http.MethodGet
	}
	return d.Method
}

// timeout is the bound of one run: Timeout, or its default, cut to
// Interval so that runs never overlap.
func (d Definition) timeout() time.Duration {
	t := d.Timeout
	if t == 0 {
		t = DefaultTimeout
	}
	if d.Interval > 0 && t > d.Interval {
		t = d.Interval
	}
	return t
}

func (d Definition) outputMax() int {
	if d.OutputMaxSize <= 0 || d.OutputMaxSize > MaxOutput {
		return MaxOutput
	}
	return d.OutputMaxSize
}

// clone copies the header map, the only reference a Definition holds.
func (d Definition) clone() Definition {
	if d.Header != nil {
		h := make(map[string][]string, len(d.Header))
		for k, v := range d.Header {
			h[k] = append([]string(nil), v...)
		}
		d.Header = h
	}
	return d
}

// FromAPI converts a check of a service registration into a Definition.
// serviceID and serviceName are the service's; i is the check's index
// among the registration's n checks (from 0), and field is where the
// check sits in the request ("Check", "Checks[1]"), prefixed to the Field
// of any *catalog.FieldError it returns.
//
// As in Consul, a check without CheckID is "service:<serviceID>" when it
// is the service's only check and "service:<serviceID>:<i+1>" otherwise,
// and a check without Name is "Service '<serviceName>' check".
func FromAPI(c api.AgentServiceCheck, serviceID, serviceName string, i, n int, field string) (Definition, error) {
	id := c.CheckID
	if id == "" {
		id = "service:" + serviceID
		if n > 1 {
			id += ":" + strconv.Itoa(i+1)
		}
	}
	name := c.Name
	if name == "" {
		name = fmt.Sprintf("Service '%s' check", serviceName)
	}
	d, err := fromCheck(c, id, name, c.Notes, serviceID)
	return d, prefixField(err, field)
}

// FromCheckRegistration converts the body of PUT /v1/agent/check/register
// into a Definition. As in Consul, the ID defaults to CheckID and then to
// the Name, which is required.
func FromCheckRegistration(r api.AgentCheckRegistration) (Definition, error) {
	id, idField := r.ID, "ID"
	if id == "" && r.CheckID != "" {
		id, idField = r.CheckID, "CheckID"
	}
	name := r.Name
	if name == "" {
		name = r.AgentServiceCheck.Name
	}
	if name == "" {
		return Definition{}, fieldErr("Name", "must not be empty")
	}
	if id == "" {
		id = name
	}
	notes := r.Notes
	if notes == "" {
		notes = r.AgentServiceCheck.Notes
	}
	d, err := fromCheck(r.AgentServiceCheck, id, name, notes, r.ServiceID)
	var fe *catalog.FieldError
	if errors.As(err, &fe) && fe.Field == "CheckID" {
		fe.Field = idField
	}
	return d, err
}

func prefixField(err error, prefix string) error {
	var fe *catalog.FieldError
	if prefix != "" && errors.As(err, &fe) {
		fe.Field = prefix + "." + fe.Field
	}
	return err
}

func fromCheck(c api.AgentServiceCheck, id, name, notes, serviceID string) (Definition, error) {
	for _, u := range []struct {
		field string
		set   bool
	}{
		{"ScriptArgs", len(c.Args) > 0}, {"DockerContainerID", c.DockerContainerID != ""},
		{"Shell", c.Shell != ""}, {"H2PING", c.H2PING != ""},
		{"AliasNode", c.AliasNode != ""}, {"AliasService", c.AliasService != ""},
	} {
		if u.set {
			return Definition{}, fieldErr(u.field, "not supported: Shoal runs HTTP, TCP, GRPC and TTL checks")
		}
	}
	d := Definition{
		ID: id, Name: name, ServiceID: serviceID, Notes: notes,
		HTTP: c.HTTP, Method: c.Method, Header: c.Header, Body: c.Body,
		TLSSkipVerify: c.TLSSkipVerify, TLSServerName: c.TLSServerName,
		TCP: c.TCP, GRPC: c.GRPC, GRPCUseTLS: c.GRPCUseTLS,
		SuccessBeforePassing:   c.SuccessBeforePassing,
		FailuresBeforeWarning:  c.FailuresBeforeWarning,
		FailuresBeforeCritical: c.FailuresBeforeCritical,
		OutputMaxSize:          c.OutputMaxSize,
	}
	for _, p := range []struct {
		field string
		s     string
		to    *time.Duration
	}{
		{"Interval", c.Interval, &d.Interval}, {"Timeout", c.Timeout, &d.Timeout}, {"TTL", c.TTL, &d.TTL},
		{"DeregisterCriticalServiceAfter", c.DeregisterCriticalServiceAfter, &d.DeregisterCriticalServiceAfter},
	} {
		if p.s == "" {
			continue
		}
		v, err := time.ParseDuration(p.s)
		if err != nil {
			return Definition{}, fieldErr(p.field, "%q is not a duration such as \"10s\"", p.s)
		}
		if v < 0 {
			return Definition{}, fieldErr(p.field, "must not be negative")
		}
		*p.to = v
	}
	if c.TTL != "" && d.TTL == 0 {
		return Definition{}, fieldErr("TTL", "must be longer than 0s")
	}
	if c.Status != "" {
		s, err := catalog.ParseHealth(c.Status)
		if err != nil {
			return Definition{}, fieldErr("Status", "%q is not passing, warning or critical", c.Status)
		}
		d.Status = s
	}
	if err := d.Validate(); err != nil {
		return Definition{}, err
	}
	return d.clone(), nil
}
