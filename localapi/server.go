package localapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-sd/shoal/acl"
)

// Config configures the handler that New builds.
type Config struct {
	// Backend answers every request. Required.
	Backend Backend
	// Logger receives the handler's logs, tagged "component"="http".
	// Nil discards them.
	Logger *slog.Logger
	// Metrics, if set, serves GET /v1/agent/metrics?format=prometheus
	// (the agent's Prometheus registry).
	Metrics http.Handler
	// Observe, if set, is told how long each non-blocking request to a
	// known route took; route is the route's path pattern below /v1/.
	Observe func(method, route string, d time.Duration)
	// ACL, if set, returns the token resolver in force (it may change on
	// reload); nil means ACLs are off.
	ACL func() *acl.Resolver
	// AllowedHost, if set, says whether a request's Host (without the
	// port) names this agent; any other is refused with 403, so that a
	// page that reached the API by DNS rebinding gets nothing. Nil allows
	// loopback names and addresses only.
	AllowedHost func(host string) bool
	// MaxBlocking caps the blocking queries and streams waiting at once;
	// past it they are answered 429 at once. 0: no cap.
	MaxBlocking int
	// Preserving, if set, reports whether the agent is in
	// self-preservation: reads then carry X-Shoal-Self-Preservation:
	// true (the instances of members that failed at once are served
	// from their last known state).
	Preserving func() bool
}

// headerPreserving marks reads answered in self-preservation.
const headerPreserving = "X-Shoal-Self-Preservation"

// apiPrefix is the versioned prefix of every route, as in Consul.
const apiPrefix = "/v1/"

// handlerFunc serves one route. arg is the path parameter of a route that
// takes one (never empty there). A returned error becomes the response;
// see server.fail.
type handlerFunc func(s *server, w http.ResponseWriter, r *http.Request, q *query, arg string) error

// route is one entry of the route table. A path ending in '/' takes the
// rest of the request path as its parameter, named param in errors.
type route struct {
	method string
	path   string // below apiPrefix
	param  string
	fn     handlerFunc
	need   *need // the permission on this agent the route needs, if any
}

// routes is the API, path for path as Consul serves it. Every GET is a
// read, and supports blocking queries unless it says otherwise; every
// other method is a write.
var routes = []route{
	{http.MethodPut, "agent/service/register", "", (*server).agentServiceRegister, nil},
	{http.MethodPut, "agent/service/deregister/", "service ID", (*server).agentServiceDeregister, nil},
	{http.MethodGet, "agent/services", "", (*server).agentServices, nil},
	{http.MethodGet, "agent/service/", "service ID", (*server).agentService, nil},
	{http.MethodGet, "agent/health/service/id/", "service ID", (*server).agentHealthByID, nil},
	{http.MethodGet, "agent/health/service/name/", "service name", (*server).agentHealthByName, nil},
	{http.MethodGet, "agent/members", "", (*server).agentMembers, nil},
	{http.MethodPut, "agent/join/", "address", (*server).agentJoin, &need{acl.Agent, acl.Write}},
	{http.MethodPut, "agent/leave", "", (*server).agentLeave, &need{acl.Agent, acl.Write}},
	{http.MethodGet, "agent/self", "", (*server).agentSelf, &need{acl.Agent, acl.Read}},
	{http.MethodGet, "agent/host", "", (*server).agentHost, &need{acl.Operator, acl.Read}},
	{http.MethodGet, "agent/version", "", (*server).agentVersion, nil},
	{http.MethodGet, "catalog/services", "", (*server).catalogServices, nil},
	{http.MethodGet, "catalog/service/", "service name", (*server).catalogService, nil},
	{http.MethodGet, "catalog/nodes", "", (*server).catalogNodes, nil},
	{http.MethodGet, "catalog/node/", "node name", (*server).catalogNode, nil},
	{http.MethodGet, "catalog/node-services/", "node name", (*server).catalogNodeServices, nil},
	{http.MethodGet, "catalog/datacenters", "", (*server).catalogDatacenters, nil},
	{http.MethodGet, "catalog/connect/", "service name", (*server).catalogConnect, nil},
	{http.MethodGet, "health/connect/", "service name", (*server).healthConnect, nil},
	{http.MethodGet, "health/ingress/", "service name", (*server).healthConnect, nil},
	{http.MethodGet, "coordinate/nodes", "", (*server).coordinateNodes, nil},
	{http.MethodGet, "coordinate/node/", "node name", (*server).coordinateNode, nil},
	{http.MethodGet, "health/service/", "service name", (*server).healthService, nil},
	{http.MethodGet, "health/checks/", "service name", (*server).healthChecks, nil},
	{http.MethodGet, "health/node/", "node name", (*server).healthNode, nil},
	{http.MethodGet, "health/state/", "state", (*server).healthState, nil},
	{http.MethodPut, "agent/check/register", "", (*server).agentCheckRegister, nil},
	{http.MethodPut, "agent/check/deregister/", "check ID", (*server).agentCheckDeregister, nil},
	{http.MethodPut, "agent/check/pass/", "check ID", (*server).agentCheckPass, nil},
	{http.MethodPut, "agent/check/warn/", "check ID", (*server).agentCheckWarn, nil},
	{http.MethodPut, "agent/check/fail/", "check ID", (*server).agentCheckFail, nil},
	{http.MethodPut, "agent/check/update/", "check ID", (*server).agentCheckUpdate, nil},
	{http.MethodGet, "agent/checks", "", (*server).agentChecks, nil},
	{http.MethodPut, "agent/maintenance", "", (*server).agentMaintenance, &need{acl.Node, acl.Write}},
	{http.MethodPut, "agent/service/maintenance/", "service ID", (*server).agentServiceMaintenance, nil},
	{http.MethodPut, "agent/reload", "", (*server).agentReload, &need{acl.Agent, acl.Write}},
	{http.MethodGet, "status/leader", "", (*server).statusLeader, nil},
	{http.MethodGet, "status/peers", "", (*server).statusPeers, nil},
	{http.MethodGet, "agent/metrics", "", (*server).agentMetrics, &need{acl.Agent, acl.Read}},
	{http.MethodGet, monitorRoute, "", (*server).agentMonitor, &need{acl.Agent, acl.Read}},
	{http.MethodGet, watchRoute, "service name", (*server).shoalWatchService, nil},
	{http.MethodGet, "shoal/convergence", "", (*server).shoalConvergence, &need{acl.Operator, acl.Read}},
	{http.MethodGet, "operator/keyring", "", (*server).keyringList, &need{acl.Keyring, acl.Read}},
	{http.MethodPost, "operator/keyring", "", (*server).keyringInstall, &need{acl.Keyring, acl.Write}},
	{http.MethodPut, "operator/keyring", "", (*server).keyringUse, &need{acl.Keyring, acl.Write}},
	{http.MethodDelete, "operator/keyring", "", (*server).keyringRemove, &need{acl.Keyring, acl.Write}},
}

// exactRoutes and prefixRoutes index the table: exact paths first, then
// parameter routes longest prefix first, so that
// agent/service/deregister/x is not taken for the service "deregister/x"
// and GET agent/service/register is a 405, not a lookup of "register".
// A path may have a route per method (operator/keyring).
var exactRoutes, prefixRoutes = indexRoutes(routes)

func indexRoutes(rs []route) (map[string][]*route, [][]*route) {
	exact := make(map[string][]*route)
	byPrefix := make(map[string][]*route)
	for i := range rs {
		r := &rs[i]
		if strings.HasSuffix(r.path, "/") {
			byPrefix[r.path] = append(byPrefix[r.path], r)
		} else {
			exact[r.path] = append(exact[r.path], r)
		}
	}
	prefixed := slices.Collect(maps.Values(byPrefix))
	sort.Slice(prefixed, func(i, j int) bool { return len(prefixed[i][0].path) > len(prefixed[j][0].path) })
	return exact, prefixed
}

// lookup finds the routes of a path below apiPrefix (one per method) and
// its parameter.
func lookup(p string) ([]*route, string) {
	if rs := exactRoutes[p]; rs != nil {
		return rs, ""
	}
	for _, rs := range prefixRoutes {
		if arg, ok := strings.CutPrefix(p, rs[0].path); ok {
			return rs, arg
		}
	}
	return nil, ""
}

// pick is the route of a method among a path's routes, nil if none.
func pick(rs []*route, method string) *route {
	for _, r := range rs {
		if r.method == method {
			return r
		}
	}
	return nil
}

// methods lists the methods of a path's routes.
func methods(rs []*route) []string {
	ms := make([]string, len(rs))
	for i, r := range rs {
		ms[i] = r.method
	}
	return ms
}

// server is the handler New returns.
type server struct {
	b       Backend
	log     *slog.Logger
	metrics http.Handler
	observe func(method, route string, d time.Duration)
	acl     func() *acl.Resolver
	host    func(string) bool

	maxWaiting int64
	waiting    atomic.Int64 // blocking queries and streams now waiting
	preserving func() bool
}

// New returns the handler of the local HTTP API: the routes listed in the
// package documentation, and 404 for any other path. It panics if
// cfg.Backend is nil.
func New(cfg Config) http.Handler {
	if cfg.Backend == nil {
		panic("localapi: Config.Backend is nil")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &server{b: cfg.Backend, log: log.With("component", "http"), metrics: cfg.Metrics, observe: cfg.Observe, acl: cfg.ACL, host: cfg.AllowedHost,
		maxWaiting: int64(cfg.MaxBlocking), preserving: cfg.Preserving}
}

// ServeHTTP routes one request.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	err := s.checkHost(r)
	if err == nil && !isUIPath(r.URL.Path) {
		err = checkBrowser(r)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, apiPrefix)
	var rs []*route
	var arg string
	if ok {
		rs, arg = lookup(p)
	}
	if rs == nil && !ok && serveUI(w, r) {
		return
	}
	if rs == nil {
		err := refused(p)
		if !ok || err == nil {
			err = errorf(http.StatusNotFound, "no such endpoint: %q", r.URL.Path)
		}
		s.fail(w, r, err)
		return
	}
	rt := pick(rs, r.Method)
	if rt == nil {
		ms := methods(rs)
		w.Header().Set("Allow", strings.Join(ms, ", "))
		s.fail(w, r, errorf(http.StatusMethodNotAllowed, "method %s not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(ms, " or ")))
		return
	}
	if rt.param != "" && arg == "" {
		s.fail(w, r, errorf(http.StatusBadRequest, "%s: missing from the path", rt.param))
		return
	}
	q, err := s.parseQuery(r, rt.method == http.MethodGet)
	if err == nil {
		err = refuseNarrowing(rt, &q)
	}
	if err == nil {
		q.authz, err = s.authorize(r)
	}
	if err == nil && rt.need != nil && !q.authz.Unrestricted() {
		err = require(q.authz, rt.need.res, s.b.Self().Config.NodeName, rt.need.access)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	start := time.Now()
	if err := rt.fn(s, w, r, &q, arg); err != nil {
		s.fail(w, r, err)
	}
	// A blocking query's time is mostly its wait, a stream's is how long
	// its client watched: either would swamp the latency of answering.
	if s.observe != nil && q.index == 0 && !rt.streams() {
		s.observe(rt.method, rt.path, time.Since(start))
	}
}

// GET /v1/agent/metrics?format=prometheus: the agent's metrics in the
// Prometheus text format.
func (s *server) agentMetrics(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	if s.metrics == nil {
		return errorf(http.StatusNotFound, "metrics are not enabled on this agent")
	}
	if f := q.values.Get("format"); f != "prometheus" {
		return errorf(http.StatusBadRequest, "format: %q is not supported; use format=prometheus", f)
	}
	s.metrics.ServeHTTP(w, r)
	return nil
}

// httpError is an error with the status code it answers with. Its message
// is the one-line body, and names the bad field or parameter.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// fail answers with err: an *httpError with its own code, anything else
// with 500. A request whose client has gone gets no answer.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
		s.log.Debug("request abandoned by the client", "method", r.Method, "path", r.URL.Path)
		return
	}
	code, msg := http.StatusInternalServerError, err.Error()
	var he *httpError
	if errors.As(err, &he) {
		code, msg = he.code, he.msg
	}
	if code >= 500 && errors.Is(err, ErrNotKept) {
		s.log.Debug("write refused: not saved", "method", r.Method, "path", r.URL.Path, "err", err)
	} else if code >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "code", code, "err", msg)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	msg = oneLine.Replace(msg)
	_, _ = w.Write([]byte(msg + "\n"))
}

// startWaiting counts a request that is about to wait (a blocking query
// or a stream) and refuses it with 429 past the cap; done ends the count.
func (s *server) startWaiting() (done func(), err error) {
	if n := s.waiting.Add(1); s.maxWaiting > 0 && n > s.maxWaiting {
		s.waiting.Add(-1)
		return nil, errorf(http.StatusTooManyRequests, "limits.http_max_blocking: %d blocking queries and streams are waiting on this agent; retry later", s.maxWaiting)
	}
	return func() { s.waiting.Add(-1) }, nil
}

// oneLine keeps an error body on one line, whatever the message quotes.
var oneLine = strings.NewReplacer("\r", " ", "\n", " ")

// checkBrowser refuses requests a web browser makes on behalf of a page
// of another origin: a page must not use the API with the rights of the
// machine it runs on (tailscale's local API does the same). A page that
// reached the API by DNS rebinding is same-origin to the browser; checkHost
// refuses it, since its Host names no name of this agent. Tools such as
// Consul's Go client send neither Origin nor Sec-Fetch-Site.
func checkBrowser(r *http.Request) error {
	site := r.Header.Get("Sec-Fetch-Site")
	if site == "cross-site" {
		return errorf(http.StatusForbidden, "Sec-Fetch-Site: cross-site browser requests are refused")
	}
	origin := r.Header.Get("Origin")
	if origin != "" {
		u, err := url.Parse(origin)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return errorf(http.StatusForbidden, "Origin: %q does not match Host %q; cross-origin browser requests are refused", origin, r.Host)
		}
	}
	return nil
}

// checkHost refuses a request whose Host does not name this agent: a
// loopback name or address, one of the agent's own addresses, or a name
// the configuration allows. A DNS-rebinding page sends its own name.
func (s *server) checkHost(r *http.Request) error {
	if r.Host == "" {
		return nil // HTTP/1.0 without Host: no browser sends that
	}
	host := HostOnly(r.Host)
	if IsLoopbackHost(host) || s.host != nil && s.host(host) {
		return nil
	}
	return errorf(http.StatusForbidden, "Host: %q does not name this agent; add it to http_config.allowed_hosts to reach the API by that name", r.Host)
}

// HostOnly strips the port and IPv6 brackets from a Host header.
func HostOnly(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// IsLoopbackHost reports whether a host is localhost (or a name below
// .localhost, which resolvers keep on the machine) or a loopback address.
func IsLoopbackHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// query holds the query parameters every route understands. Consul's
// clients send more (stale, consistent, cached, ns, partition, …); the
// agent answers every read from its own copy, so they are ignored —
// except filter and node-meta, which change what is answered: the routes
// that apply them read them, the others refuse them (filter.go). The
// routes that sort by near read it.
type query struct {
	values url.Values
	pretty bool
	index  uint64        // blocking: the index the client has seen; 0 for none
	wait   time.Duration // blocking: ?wait as given; see blockFor
	// authz is what the request's token may do; filtered is set by a
	// read that left out what it may not see.
	authz    *acl.Authorizer
	filtered bool
}

// Limits of a blocking query, as Consul has them.
const (
	defaultWait = 5 * time.Minute
	maxWait     = 10 * time.Minute
	jitterDiv   = 16 // a wait grows by up to wait/jitterDiv
)

func (s *server) parseQuery(r *http.Request, read bool) (query, error) {
	var q query
	if r.URL.RawQuery == "" {
		return q, nil
	}
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return q, errorf(http.StatusBadRequest, "query: %v", err)
	}
	q.values = v
	if dc := v.Get("dc"); dc != "" {
		if want := s.b.Datacenter(); dc != want {
			return q, errorf(http.StatusBadRequest, "dc: unknown datacenter %q; this agent serves %q", dc, want)
		}
	}
	_, q.pretty = v["pretty"]
	if !read {
		return q, nil
	}
	// Empty values count as absent, as in Consul.
	if ix := v.Get("index"); ix != "" {
		if q.index, err = strconv.ParseUint(ix, 10, 64); err != nil {
			return q, errorf(http.StatusBadRequest, "index: %q is not a non-negative integer", ix)
		}
	}
	if wt := v.Get("wait"); wt != "" {
		if q.wait, err = time.ParseDuration(wt); err != nil || q.wait < 0 {
			return q, errorf(http.StatusBadRequest, "wait: %q is not a duration such as 10s or 5m", wt)
		}
	}
	return q, nil
}

// flag reads a boolean query parameter: absent is false, present without
// a value is true, otherwise strconv.ParseBool decides.
func (q *query) flag(name string) (bool, error) {
	vs, ok := q.values[name]
	if !ok {
		return false, nil
	}
	if vs[0] == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(vs[0])
	if err != nil {
		return false, errorf(http.StatusBadRequest, "%s: %q is not a boolean", name, vs[0])
	}
	return b, nil
}

// requiredBool reads a boolean query parameter that must be given with a
// value, as Consul's ?enable of maintenance mode must.
func (q *query) requiredBool(name string) (bool, error) {
	vs, ok := q.values[name]
	if !ok {
		return false, errorf(http.StatusBadRequest, "%s: missing; use %s=true or %s=false", name, name, name)
	}
	b, err := strconv.ParseBool(vs[0])
	if err != nil {
		return false, errorf(http.StatusBadRequest, "%s: %q is not a boolean; use %s=true or %s=false", name, vs[0], name, name)
	}
	return b, nil
}

// Response headers, shared read only: a header value is a []string, and
// allocating these on every read would be waste.
var (
	jsonContentType = []string{"application/json"}
	headerTrue      = []string{"true"}
	headerZero      = []string{"0"}
)

// buffer is a pooled response body: appended to by the hand-written
// encoders, written to by encoding/json.
type buffer struct{ b []byte }

func (w *buffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// bufPool holds response buffers. Buffers that grew past maxPooledBuf are
// dropped rather than kept.
var bufPool = sync.Pool{New: func() any { return &buffer{b: make([]byte, 0, 4<<10)} }}

const maxPooledBuf = 1 << 20

func getBuf() *buffer { return bufPool.Get().(*buffer) }

func putBuf(w *buffer) {
	if cap(w.b) > maxPooledBuf {
		return
	}
	w.b = w.b[:0]
	bufPool.Put(w)
}

// writeRead answers a read with a compact JSON body and the headers
// Consul's clients expect: X-Consul-Index (at least 1),
// X-Consul-KnownLeader and X-Consul-LastContact, without which Consul's
// Go client fails to parse the response. With ?pretty the body is
// indented as Consul indents it.
func (s *server) writeRead(w http.ResponseWriter, q *query, index uint64, body []byte) {
	if q.pretty {
		var out bytes.Buffer
		if err := json.Indent(&out, body, "", "    "); err == nil {
			out.WriteByte('\n')
			body = out.Bytes()
		}
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["X-Consul-Index"] = []string{strconv.FormatUint(max(index, 1), 10)}
	h["X-Consul-Knownleader"] = headerTrue
	h["X-Consul-Lastcontact"] = headerZero
	if s.preserving != nil && s.preserving() {
		h[headerPreserving] = headerTrue
	}
	if q.filtered {
		h[headerFiltered] = headerTrue
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// writeJSON answers a read with v encoded by encoding/json.
func (s *server) writeJSON(w http.ResponseWriter, q *query, index uint64, v any) error {
	buf := getBuf()
	defer putBuf(buf)
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	s.writeRead(w, q, index, bytes.TrimSuffix(buf.b, []byte("\n")))
	return nil
}

// writeOK answers a successful write: Consul's writes answer 200 with an
// empty body.
func writeOK(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }
