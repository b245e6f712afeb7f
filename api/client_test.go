package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/api"
)

// request is what the canned server saw of one request.
type request struct {
	Method      string
	Path        string // escaped, as sent
	Query       string // raw
	Body        string
	ContentType string
}

// canned starts a server that records each request and answers every one
// with status, headers and body. It checks request shapes and decoding
// only; it is not an agent.
func canned(t *testing.T, status int, header map[string]string, body string) (*api.Client, <-chan request) {
	t.Helper()
	seen := make(chan request, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen <- request{
			Method:      r.Method,
			Path:        r.URL.EscapedPath(),
			Query:       r.URL.RawQuery,
			Body:        string(b),
			ContentType: r.Header.Get("Content-Type"),
		}
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return &api.Client{Addr: srv.URL, HTTPClient: srv.Client()}, seen
}

// only returns the one request the server saw.
func only(t *testing.T, seen <-chan request) request {
	t.Helper()
	select {
	case r := <-seen:
		select {
		case r2 := <-seen:
			t.Fatalf("a second request was sent: %+v", r2)
		default:
		}
		return r
	default:
		t.Fatal("no request was sent")
	}
	return request{}
}

// jsonEqual compares two JSON texts by value.
func jsonEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("body %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body = %s\nwant  %s", got, want)
	}
}

// Canned answers, shaped as Consul sends them.
const (
	agentServicesJSON = `{
  "web-1": {
    "ID": "web-1", "Service": "web", "Tags": ["v1", "primary"],
    "Meta": {"env": "prod"}, "Port": 8080, "Address": "10.0.0.5",
    "Weights": {"Passing": 10, "Warning": 1},
    "EnableTagOverride": false, "ContentHash": "abc", "Datacenter": "dc1"
  }
}`
	membersJSON = `[
  {"Name": "n1", "Addr": "10.0.0.1", "Port": 7946, "Tags": {"dc": "dc1", "role": "node"},
   "Status": 1, "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
   "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4},
  {"Name": "n2", "Addr": "10.0.0.2", "Port": 7946, "Tags": {"dc": "dc1"}, "Status": 4}
]`
	selfJSON = `{
  "Config": {"Datacenter": "dc1", "PrimaryDatacenter": "dc1", "NodeName": "n1",
             "NodeID": "0f3c", "Revision": "", "Server": false, "Version": "0.1.0"},
  "Member": {"Name": "n1", "Addr": "10.0.0.1", "Port": 7946, "Tags": {"dc": "dc1"}, "Status": 1},
  "Meta": {"shoal-epoch": "3"},
  "DebugConfig": {"ignored": true}
}`
	catalogServicesJSON = `{"web": ["v1", "primary"], "db": []}`
	catalogServiceJSON  = `[
  {"ID": "0f3c", "Node": "n1", "Address": "10.0.0.1", "Datacenter": "dc1",
   "TaggedAddresses": {"lan": "10.0.0.1"}, "NodeMeta": {"rack": "r1"},
   "ServiceID": "web-1", "ServiceName": "web", "ServiceAddress": "10.0.0.5",
   "ServiceTags": ["v1"], "ServiceMeta": {"env": "prod"}, "ServicePort": 8080,
   "ServiceWeights": {"Passing": 1, "Warning": 1}, "ServiceEnableTagOverride": false,
   "CreateIndex": 10, "ModifyIndex": 12}
]`
	catalogNodesJSON = `[
  {"ID": "0f3c", "Node": "n1", "Address": "10.0.0.1", "Datacenter": "dc1",
   "TaggedAddresses": {"lan": "10.0.0.1"}, "Meta": {"rack": "r1"},
   "CreateIndex": 5, "ModifyIndex": 6}
]`
	healthServiceJSON = `[
  {"Node": {"ID": "0f3c", "Node": "n1", "Address": "10.0.0.1", "Datacenter": "dc1",
            "CreateIndex": 5, "ModifyIndex": 6},
   "Service": {"ID": "web-1", "Service": "web", "Tags": ["v1"], "Port": 8080,
               "Address": "", "Weights": {"Passing": 1, "Warning": 1}},
   "Checks": [
     {"Node": "n1", "CheckID": "serfHealth", "Name": "Serf Health Status",
      "Status": "passing", "Output": "Agent alive and reachable", "Type": ""},
     {"Node": "n1", "CheckID": "service:web-1", "Name": "web", "Status": "warning",
      "ServiceID": "web-1", "ServiceName": "web", "ServiceTags": ["v1"], "Type": "ttl"}
   ]}
]`
)

// requestCase is one call of the client against a canned answer: the
// request it must send and the result it must decode.
type requestCase struct {
	name   string
	status int // 0: 200
	header map[string]string
	answer string
	call   func(context.Context, *api.Client) (any, error)
	want   request // Body is compared as JSON when not empty
	result any     // nil: not compared
}

func TestRequestsAndDecoding(t *testing.T) {
	runRequestCases(t, []requestCase{
		{
			name: "register",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.Register(ctx, &api.AgentServiceRegistration{
					ID: "web-1", Name: "web", Port: 8080, Address: "10.0.0.5",
					Tags: []string{"v1"}, Meta: map[string]string{"env": "prod"},
				})
			},
			want: request{Method: "PUT", Path: "/v1/agent/service/register", ContentType: "application/json",
				Body: `{"ID":"web-1","Name":"web","Tags":["v1"],"Port":8080,"Address":"10.0.0.5","Meta":{"env":"prod"}}`},
		},
		{
			name: "register minimal omits empty fields",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.Register(ctx, &api.AgentServiceRegistration{Name: "web", Port: 80})
			},
			want: request{Method: "PUT", Path: "/v1/agent/service/register", ContentType: "application/json",
				Body: `{"Name":"web","Port":80}`},
		},
		{
			name: "deregister escapes the ID",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.Deregister(ctx, "web 1?x=%")
			},
			want: request{Method: "PUT", Path: "/v1/agent/service/deregister/web%201%3Fx=%25"},
		},
		{
			name:   "agent services",
			answer: agentServicesJSON,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.AgentServices(ctx)
			},
			want: request{Method: "GET", Path: "/v1/agent/services"},
			result: map[string]*api.AgentService{"web-1": {
				ID: "web-1", Service: "web", Tags: []string{"v1", "primary"},
				Meta: map[string]string{"env": "prod"}, Port: 8080, Address: "10.0.0.5",
				Weights: api.AgentWeights{Passing: 10, Warning: 1}, ContentHash: "abc", Datacenter: "dc1",
			}},
		},
		{
			name:   "agent service",
			answer: `{"ID": "web-1", "Service": "web", "Port": 8080, "Weights": {"Passing": 1, "Warning": 1}}`,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.AgentService(ctx, "web-1")
			},
			want: request{Method: "GET", Path: "/v1/agent/service/web-1"},
			result: &api.AgentService{ID: "web-1", Service: "web", Port: 8080,
				Weights: api.AgentWeights{Passing: 1, Warning: 1}},
		},
		{
			name:   "members",
			answer: membersJSON,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Members(ctx)
			},
			want: request{Method: "GET", Path: "/v1/agent/members"},
			result: []*api.AgentMember{
				{Name: "n1", Addr: "10.0.0.1", Port: 7946, Tags: map[string]string{"dc": "dc1", "role": "node"},
					Status: api.MemberAlive, ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2,
					DelegateMin: 2, DelegateMax: 5, DelegateCur: 4},
				{Name: "n2", Addr: "10.0.0.2", Port: 7946, Tags: map[string]string{"dc": "dc1"}, Status: api.MemberFailed},
			},
		},
		{
			name: "join escapes the address",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.Join(ctx, "[::1]:7946")
			},
			want: request{Method: "PUT", Path: "/v1/agent/join/%5B::1%5D:7946"},
		},
		{
			name: "leave",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.Leave(ctx)
			},
			want: request{Method: "PUT", Path: "/v1/agent/leave"},
		},
		{
			name:   "self ignores fields it does not know",
			answer: selfJSON,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.Self(ctx)
			},
			want: request{Method: "GET", Path: "/v1/agent/self"},
			result: &api.Self{
				Config: api.SelfConfig{Datacenter: "dc1", PrimaryDatacenter: "dc1", NodeName: "n1",
					NodeID: "0f3c", Version: "0.1.0"},
				Member: api.AgentMember{Name: "n1", Addr: "10.0.0.1", Port: 7946,
					Tags: map[string]string{"dc": "dc1"}, Status: api.MemberAlive},
				Meta: map[string]string{"shoal-epoch": "3"},
			},
		},
		{
			name:   "catalog services, nil options",
			header: map[string]string{"X-Consul-Index": "42"},
			answer: catalogServicesJSON,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return withMeta(c.CatalogServices(ctx, nil))
			},
			want: request{Method: "GET", Path: "/v1/catalog/services"},
			result: metaResult{
				V:    map[string][]string{"web": {"v1", "primary"}, "db": {}},
				Meta: &api.QueryMeta{LastIndex: 42},
			},
		},
		{
			name:   "catalog services, blocking; tags and passing do not apply",
			header: map[string]string{"X-Consul-Index": "43"},
			answer: catalogServicesJSON,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return withMeta(c.CatalogServices(ctx, &api.QueryOptions{
					Tags: []string{"v1"}, Passing: true, WaitIndex: 42, WaitTime: 5 * time.Second,
				}))
			},
			want: request{Method: "GET", Path: "/v1/catalog/services", Query: "index=42&wait=5000ms"},
			result: metaResult{
				V:    map[string][]string{"web": {"v1", "primary"}, "db": {}},
				Meta: &api.QueryMeta{LastIndex: 43},
			},
		},
		{
			name:   "catalog service with tags",
			header: map[string]string{"X-Consul-Index": "12"},
			answer: catalogServiceJSON,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return withMeta(c.CatalogService(ctx, "web", &api.QueryOptions{
					Tags: []string{"v1", "eu west"}, Passing: true, WaitTime: 1500 * time.Microsecond,
				}))
			},
			want: request{Method: "GET", Path: "/v1/catalog/service/web", Query: "tag=v1&tag=eu+west&wait=2ms"},
			result: metaResult{
				V: []*api.CatalogService{{
					ID: "0f3c", Node: "n1", Address: "10.0.0.1", Datacenter: "dc1",
					TaggedAddresses: map[string]string{"lan": "10.0.0.1"}, NodeMeta: map[string]string{"rack": "r1"},
					ServiceID: "web-1", ServiceName: "web", ServiceAddress: "10.0.0.5",
					ServiceTags: []string{"v1"}, ServiceMeta: map[string]string{"env": "prod"}, ServicePort: 8080,
					ServiceWeights: api.AgentWeights{Passing: 1, Warning: 1}, CreateIndex: 10, ModifyIndex: 12,
				}},
				Meta: &api.QueryMeta{LastIndex: 12},
			},
		},
		{
			name:   "catalog nodes without index header",
			answer: catalogNodesJSON,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return withMeta(c.CatalogNodes(ctx, &api.QueryOptions{WaitIndex: 7}))
			},
			want: request{Method: "GET", Path: "/v1/catalog/nodes", Query: "index=7"},
			result: metaResult{
				V: []*api.Node{{ID: "0f3c", Node: "n1", Address: "10.0.0.1", Datacenter: "dc1",
					TaggedAddresses: map[string]string{"lan": "10.0.0.1"}, Meta: map[string]string{"rack": "r1"},
					CreateIndex: 5, ModifyIndex: 6}},
				Meta: &api.QueryMeta{},
			},
		},
		{
			name:   "health service, passing and tags",
			header: map[string]string{"X-Consul-Index": "99"},
			answer: healthServiceJSON,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return withMeta(c.HealthService(ctx, "web", &api.QueryOptions{Tags: []string{"v1"}, Passing: true}))
			},
			want: request{Method: "GET", Path: "/v1/health/service/web", Query: "passing=1&tag=v1"},
			result: metaResult{
				V: []*api.ServiceEntry{{
					Node: &api.Node{ID: "0f3c", Node: "n1", Address: "10.0.0.1", Datacenter: "dc1",
						CreateIndex: 5, ModifyIndex: 6},
					Service: &api.AgentService{ID: "web-1", Service: "web", Tags: []string{"v1"}, Port: 8080,
						Weights: api.AgentWeights{Passing: 1, Warning: 1}},
					Checks: []*api.HealthCheck{
						{Node: "n1", CheckID: "serfHealth", Name: "Serf Health Status", Status: "passing",
							Output: "Agent alive and reachable"},
						{Node: "n1", CheckID: "service:web-1", Name: "web", Status: "warning",
							ServiceID: "web-1", ServiceName: "web", ServiceTags: []string{"v1"}, Type: "ttl"},
					},
				}},
				Meta: &api.QueryMeta{LastIndex: 99},
			},
		},
		{
			name:   "health service, unknown service is empty",
			answer: `[]`,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return withMeta(c.HealthService(ctx, "nope", nil))
			},
			want:   request{Method: "GET", Path: "/v1/health/service/nope"},
			result: metaResult{V: []*api.ServiceEntry{}, Meta: &api.QueryMeta{}},
		},
	})
}

func runRequestCases(t *testing.T, tests []requestCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.status
			if status == 0 {
				status = http.StatusOK
			}
			c, seen := canned(t, status, tt.header, tt.answer)
			got, err := tt.call(context.Background(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			req := only(t, seen)
			wantBody := tt.want.Body
			req.Body, tt.want.Body = strings.TrimSpace(req.Body), ""
			gotBody := req.Body
			req.Body = ""
			if req != tt.want {
				t.Errorf("request = %+v\nwant      %+v", req, tt.want)
			}
			if wantBody == "" {
				if gotBody != "" {
					t.Errorf("request body = %q, want none", gotBody)
				}
			} else {
				jsonEqual(t, gotBody, wantBody)
			}
			if tt.result != nil && !reflect.DeepEqual(got, tt.result) {
				t.Errorf("result = %s\nwant     %s", dump(got), dump(tt.result))
			}
		})
	}
}

type metaResult struct {
	V    any
	Meta *api.QueryMeta
}

func withMeta[T any](v T, m *api.QueryMeta, err error) (any, error) {
	return metaResult{V: v, Meta: m}, err
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestStatusErrors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		notFound bool
		msg      string
	}{
		{"not found", 404, "unknown service ID \"web-1\"\n", true,
			`agent answered 404 Not Found: unknown service ID "web-1"`},
		{"bad request", 400, "Port: 0 is out of range 1-65535", false,
			"agent answered 400 Bad Request: Port: 0 is out of range 1-65535"},
		{"server error, multi-line body", 500, "boom\n  at line 2\n", false,
			"agent answered 500 Internal Server Error: boom at line 2"},
		{"empty body", 503, "", false, "agent answered 503 Service Unavailable"},
		{"long body is cut", 400, strings.Repeat("é", 400), false,
			"agent answered 400 Bad Request: " + strings.Repeat("é", 150) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := canned(t, tt.status, nil, tt.body)
			err := c.Deregister(context.Background(), "web-1")
			var se *api.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want a *StatusError", err, err)
			}
			if se.Code != tt.status || se.Body != strings.TrimSpace(tt.body) {
				t.Errorf("StatusError = %+v, want code %d body %q", se, tt.status, strings.TrimSpace(tt.body))
			}
			if got := api.IsNotFound(err); got != tt.notFound {
				t.Errorf("IsNotFound = %v, want %v", got, tt.notFound)
			}
			if err.Error() != tt.msg {
				t.Errorf("message = %q\nwant      %q", err.Error(), tt.msg)
			}
			if errors.Is(err, api.ErrAgentUnreachable) {
				t.Error("an answer must not count as unreachable")
			}
		})
	}
	if api.IsNotFound(nil) || api.IsNotFound(errors.New("404")) {
		t.Error("IsNotFound is true for an error that is no StatusError")
	}
}

func TestBadAnswers(t *testing.T) {
	t.Run("bad JSON", func(t *testing.T) {
		c, _ := canned(t, 200, nil, `{"web-1": [`)
		if _, err := c.AgentServices(context.Background()); err == nil {
			t.Fatal("want a decode error")
		}
	})
	t.Run("bad index header", func(t *testing.T) {
		c, _ := canned(t, 200, map[string]string{"X-Consul-Index": "-1"}, `{}`)
		if _, _, err := c.CatalogServices(context.Background(), nil); err == nil {
			t.Fatal("want an error for X-Consul-Index -1")
		}
	})
	t.Run("null service", func(t *testing.T) {
		c, _ := canned(t, 200, nil, `null`)
		if _, err := c.AgentService(context.Background(), "web-1"); err == nil {
			t.Fatal("want an error for a null service")
		}
	})
}

func TestArgumentsRefusedBeforeSending(t *testing.T) {
	c, seen := canned(t, 200, nil, `[]`)
	ctx := context.Background()
	calls := map[string]func() error{
		"register nil":     func() error { return c.Register(ctx, nil) },
		"deregister empty": func() error { return c.Deregister(ctx, "") },
		"service empty":    func() error { _, err := c.AgentService(ctx, ""); return err },
		"join empty":       func() error { return c.Join(ctx, "") },
		"catalog empty":    func() error { _, _, err := c.CatalogService(ctx, "", nil); return err },
		"health empty":     func() error { _, _, err := c.HealthService(ctx, "", nil); return err },

		"check register nil":     func() error { return c.CheckRegister(ctx, nil) },
		"check deregister empty": func() error { return c.CheckDeregister(ctx, "") },
		"pass empty":             func() error { return c.PassTTL(ctx, "", "x") },
		"warn empty":             func() error { return c.WarnTTL(ctx, "", "") },
		"fail empty":             func() error { return c.FailTTL(ctx, "", "") },
		"update empty":           func() error { return c.UpdateTTL(ctx, "", "", "passing") },
		"update bad status":      func() error { return c.UpdateTTL(ctx, "ttl-1", "", "ok") },
		"update maintenance":     func() error { return c.UpdateTTL(ctx, "ttl-1", "", "maintenance") },
		"maintenance on empty":   func() error { return c.EnableServiceMaintenance(ctx, "", "") },
		"maintenance off empty":  func() error { return c.DisableServiceMaintenance(ctx, "") },
		"health checks empty":    func() error { _, _, err := c.HealthChecks(ctx, "", nil); return err },
		"health node empty":      func() error { _, _, err := c.HealthNode(ctx, "", nil); return err },
		"health state bad":       func() error { _, _, err := c.HealthState(ctx, "down", nil); return err },
		"health state empty":     func() error { _, _, err := c.HealthState(ctx, "", nil); return err },
	}
	for name, call := range calls {
		if err := call(); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	select {
	case r := <-seen:
		t.Errorf("a request was sent: %+v", r)
	default:
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestUnreachable(t *testing.T) {
	addr := closedAddr(t)
	c := &api.Client{Addr: addr}
	_, err := c.Members(context.Background())
	if !errors.Is(err, api.ErrAgentUnreachable) {
		t.Fatalf("err = %v, want ErrAgentUnreachable", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("message %q does not name %s", err, addr)
	}
	if api.IsNotFound(err) {
		t.Error("IsNotFound is true for an unreachable agent")
	}
}

func TestCanceledIsNotUnreachable(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) })
	ctx, cancel := context.WithCancel(context.Background())
	c := &api.Client{Addr: srv.URL}
	done := make(chan error, 1)
	go func() {
		_, _, err := c.HealthService(ctx, "web", &api.QueryOptions{WaitIndex: 1, WaitTime: time.Minute})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if errors.Is(err, api.ErrAgentUnreachable) {
			t.Errorf("err = %v counts as unreachable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a canceled call did not return")
	}
}

func TestAddressForms(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "[]")
	}))
	t.Cleanup(srv.Close)
	hostPort := strings.TrimPrefix(srv.URL, "http://")

	for _, addr := range []string{hostPort, "http://" + hostPort, "http://" + hostPort + "/"} {
		c := &api.Client{Addr: addr}
		if _, err := c.Members(context.Background()); err != nil {
			t.Errorf("Addr %q: %v", addr, err)
		}
	}

	t.Setenv(api.EnvHTTPAddr, hostPort)
	var zero api.Client
	if _, err := zero.Members(context.Background()); err != nil {
		t.Errorf("zero Client with $%s=%s: %v", api.EnvHTTPAddr, hostPort, err)
	}

	for _, bad := range []string{"ftp://" + hostPort, "http://", hostPort + "/?x=1", "http://[::1"} {
		c := &api.Client{Addr: bad}
		_, err := c.Members(context.Background())
		if err == nil || errors.Is(err, api.ErrAgentUnreachable) {
			t.Errorf("Addr %q: err = %v, want an address error", bad, err)
		}
	}
}

func TestAggregatedStatus(t *testing.T) {
	chk := func(states ...string) []*api.HealthCheck {
		var out []*api.HealthCheck
		for _, s := range states {
			out = append(out, &api.HealthCheck{Status: s})
		}
		return out
	}
	tests := []struct {
		checks []*api.HealthCheck
		want   string
	}{
		{nil, api.HealthPassing},
		{chk("passing", "passing"), api.HealthPassing},
		{chk("passing", "warning"), api.HealthWarning},
		{chk("warning", "critical", "passing"), api.HealthCritical},
		{chk("passing", "maintenance"), api.HealthCritical},
		{chk(""), api.HealthCritical},
	}
	for _, tt := range tests {
		if got := api.AggregatedStatus(tt.checks); got != tt.want {
			t.Errorf("AggregatedStatus(%s) = %q, want %q", dump(tt.checks), got, tt.want)
		}
	}
}
