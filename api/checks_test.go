package api_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/api"
)

// agentChecksJSON is GET /v1/agent/checks as Consul shapes it.
const agentChecksJSON = `{
  "service:web-1": {
    "Node": "n1", "CheckID": "service:web-1", "Name": "Service 'web' check",
    "Status": "critical", "Notes": "", "Output": "TTL expired",
    "ServiceID": "web-1", "ServiceName": "web", "ServiceTags": ["v1"], "Type": "ttl",
    "Interval": "", "Timeout": "", "ExposedPort": 0,
    "Definition": {"TTLDuration": "1m0s"}, "Damped": true
  },
  "_node_maintenance": {
    "Node": "n1", "CheckID": "_node_maintenance", "Name": "Node Maintenance Mode",
    "Status": "critical", "Notes": "kernel upgrade", "ServiceTags": [], "Type": "maintenance",
    "Definition": {}
  }
}`

// healthChecksJSON is a list of checks as /v1/health/checks, node and
// state show it.
const healthChecksJSON = `[
  {"Node": "n1", "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing",
   "Output": "Agent alive and reachable", "ServiceTags": [], "Type": "", "CreateIndex": 3, "ModifyIndex": 3},
  {"Node": "n1", "CheckID": "web-http", "Name": "web", "Status": "warning", "Output": "HTTP GET: 429",
   "ServiceID": "web-1", "ServiceName": "web", "ServiceTags": ["v1"], "Type": "http",
   "CreateIndex": 7, "ModifyIndex": 9, "Damped": true}
]`

var healthChecks = []*api.HealthCheck{
	{Node: "n1", CheckID: "serfHealth", Name: "Serf Health Status", Status: api.HealthPassing,
		Output: "Agent alive and reachable", ServiceTags: []string{}, CreateIndex: 3, ModifyIndex: 3},
	{Node: "n1", CheckID: "web-http", Name: "web", Status: api.HealthWarning, Output: "HTTP GET: 429",
		ServiceID: "web-1", ServiceName: "web", ServiceTags: []string{"v1"}, Type: "http",
		CreateIndex: 7, ModifyIndex: 9, Damped: true},
}

func TestCheckRequests(t *testing.T) {
	put := func(path, query string) request { return request{Method: "PUT", Path: path, Query: query} }
	runRequestCases(t, []requestCase{
		{
			name: "check register, fields inline",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.CheckRegister(ctx, &api.AgentCheckRegistration{
					ID: "web-http", Name: "web", ServiceID: "web-1", Notes: "home page",
					AgentServiceCheck: api.AgentServiceCheck{HTTP: "http://127.0.0.1:8080/health", Interval: "10s", Timeout: "1s"},
				})
			},
			want: request{Method: "PUT", Path: "/v1/agent/check/register", ContentType: "application/json",
				Body: `{"ID":"web-http","Name":"web","Notes":"home page","ServiceID":"web-1",
					"HTTP":"http://127.0.0.1:8080/health","Interval":"10s","Timeout":"1s"}`},
		},
		{
			name: "check deregister escapes the ID",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.CheckDeregister(ctx, "service:web 1?")
			},
			want: put("/v1/agent/check/deregister/service:web%201%3F", ""),
		},
		{
			name: "pass with a note",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.PassTTL(ctx, "service:web-1", "all good & fast")
			},
			want: put("/v1/agent/check/pass/service:web-1", "note=all+good+%26+fast"),
		},
		{
			name: "warn without a note",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.WarnTTL(ctx, "ttl-1", "")
			},
			want: put("/v1/agent/check/warn/ttl-1", ""),
		},
		{
			name: "fail",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.FailTTL(ctx, "ttl-1", "down")
			},
			want: put("/v1/agent/check/fail/ttl-1", "note=down"),
		},
		{
			name: "update with Consul's short status",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.UpdateTTL(ctx, "ttl-1", "slow: 900ms", "warn")
			},
			want: request{Method: "PUT", Path: "/v1/agent/check/update/ttl-1", ContentType: "application/json",
				Body: `{"Status":"warning","Output":"slow: 900ms"}`},
		},
		{
			name: "update critical, empty output",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.UpdateTTL(ctx, "ttl-1", "", api.HealthCritical)
			},
			want: request{Method: "PUT", Path: "/v1/agent/check/update/ttl-1", ContentType: "application/json",
				Body: `{"Status":"critical","Output":""}`},
		},
		{
			name:   "agent checks",
			answer: agentChecksJSON,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return c.AgentChecks(ctx)
			},
			want: request{Method: "GET", Path: "/v1/agent/checks"},
			result: map[string]*api.AgentCheck{
				"service:web-1": {Node: "n1", CheckID: "service:web-1", Name: "Service 'web' check",
					Status: api.HealthCritical, Output: "TTL expired", ServiceID: "web-1", ServiceName: "web",
					ServiceTags: []string{"v1"}, Type: "ttl",
					Definition: api.HealthCheckDefinition{TTLDuration: "1m0s"}, Damped: true},
				"_node_maintenance": {Node: "n1", CheckID: "_node_maintenance", Name: "Node Maintenance Mode",
					Status: api.HealthCritical, Notes: "kernel upgrade", ServiceTags: []string{}, Type: "maintenance"},
			},
		},
		{
			name: "node maintenance on, with a reason",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.EnableNodeMaintenance(ctx, "kernel upgrade")
			},
			want: put("/v1/agent/maintenance", "enable=true&reason=kernel+upgrade"),
		},
		{
			name: "node maintenance on, no reason",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.EnableNodeMaintenance(ctx, "")
			},
			want: put("/v1/agent/maintenance", "enable=true"),
		},
		{
			name: "node maintenance off",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.DisableNodeMaintenance(ctx)
			},
			want: put("/v1/agent/maintenance", "enable=false"),
		},
		{
			name: "service maintenance on",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.EnableServiceMaintenance(ctx, "web 1", "draining")
			},
			want: put("/v1/agent/service/maintenance/web%201", "enable=true&reason=draining"),
		},
		{
			name: "service maintenance off",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.DisableServiceMaintenance(ctx, "web-1")
			},
			want: put("/v1/agent/service/maintenance/web-1", "enable=false"),
		},
		{
			name: "reload",
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return nil, c.Reload(ctx)
			},
			want: put("/v1/agent/reload", ""),
		},
		{
			name:   "health checks of a service, blocking; tags and passing do not apply",
			header: map[string]string{"X-Consul-Index": "9"},
			answer: healthChecksJSON,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return withMeta(c.HealthChecks(ctx, "web", &api.QueryOptions{
					Tags: []string{"v1"}, Passing: true, Warning: true, WaitIndex: 8, WaitTime: time.Second,
				}))
			},
			want:   request{Method: "GET", Path: "/v1/health/checks/web", Query: "index=8&wait=1000ms"},
			result: metaResult{V: healthChecks, Meta: &api.QueryMeta{LastIndex: 9}},
		},
		{
			name:   "health node",
			header: map[string]string{"X-Consul-Index": "10"},
			answer: healthChecksJSON,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return withMeta(c.HealthNode(ctx, "n1", nil))
			},
			want:   request{Method: "GET", Path: "/v1/health/node/n1"},
			result: metaResult{V: healthChecks, Meta: &api.QueryMeta{LastIndex: 10}},
		},
		{
			name:   "health state",
			answer: `[]`,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return withMeta(c.HealthState(ctx, api.HealthCritical, &api.QueryOptions{WaitIndex: 3}))
			},
			want:   request{Method: "GET", Path: "/v1/health/state/critical", Query: "index=3"},
			result: metaResult{V: []*api.HealthCheck{}, Meta: &api.QueryMeta{}},
		},
		{
			name:   "health state any",
			answer: healthChecksJSON,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return withMeta(c.HealthState(ctx, api.HealthAny, nil))
			},
			want:   request{Method: "GET", Path: "/v1/health/state/any"},
			result: metaResult{V: healthChecks, Meta: &api.QueryMeta{}},
		},
		{
			name:   "health service, passing and warning",
			answer: `[]`,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return withMeta(c.HealthService(ctx, "web", &api.QueryOptions{Passing: true, Warning: true}))
			},
			want: request{Method: "GET", Path: "/v1/health/service/web", Query: "passing=1&warning=1"},
		},
		{
			name:   "health service, warning alone is not sent",
			answer: `[]`,
			call: func(ctx context.Context, c *api.Client) (any, error) {
				return withMeta(c.HealthService(ctx, "web", &api.QueryOptions{Warning: true}))
			},
			want: request{Method: "GET", Path: "/v1/health/service/web"},
		},
	})
}

// TestCheckErrors checks that the agent's refusals come back as
// *StatusError, a 404 as IsNotFound.
func TestCheckErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		status   int
		call     func(*api.Client) error
		notFound bool
	}{
		{"deregister unknown", http.StatusNotFound, func(c *api.Client) error { return c.CheckDeregister(ctx, "nope") }, true},
		{"pass unknown", http.StatusNotFound, func(c *api.Client) error { return c.PassTTL(ctx, "nope", "") }, true},
		{"update unknown", http.StatusNotFound, func(c *api.Client) error { return c.UpdateTTL(ctx, "nope", "", "passing") }, true},
		{"maintenance of an unknown service", http.StatusNotFound,
			func(c *api.Client) error { return c.EnableServiceMaintenance(ctx, "nope", "") }, true},
		{"pass a non-TTL check", http.StatusBadRequest, func(c *api.Client) error { return c.PassTTL(ctx, "http-1", "") }, false},
		{"register a bad check", http.StatusBadRequest, func(c *api.Client) error {
			return c.CheckRegister(ctx, &api.AgentCheckRegistration{Name: "x"})
		}, false},
		{"reload without a config file", http.StatusInternalServerError, func(c *api.Client) error { return c.Reload(ctx) }, false},
		{"checks", http.StatusInternalServerError, func(c *api.Client) error { _, err := c.AgentChecks(ctx); return err }, false},
		{"health node", http.StatusBadRequest, func(c *api.Client) error { _, _, err := c.HealthNode(ctx, "n1", nil); return err }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, seen := canned(t, tt.status, nil, "the agent's one line\n")
			err := tt.call(c)
			only(t, seen)
			var se *api.StatusError
			if !errors.As(err, &se) || se.Code != tt.status || se.Body != "the agent's one line" {
				t.Fatalf("err = %v (%T), want a *StatusError %d with the agent's line", err, err, tt.status)
			}
			if got := api.IsNotFound(err); got != tt.notFound {
				t.Errorf("IsNotFound = %v, want %v", got, tt.notFound)
			}
		})
	}
}
