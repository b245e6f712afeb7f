package localapi

import (
	"encoding/json"
	"testing"
)

// The agent's local health of its services answers the health as the
// status code, as Consul's does for load balancers.
func TestAgentHealthService(t *testing.T) {
	_, h := newTestServer(t)
	register(t, h, `{"ID":"web-1","Name":"web","Port":80,"Check":{"TTL":"10m","Status":"passing"}}`)
	register(t, h, `{"ID":"web-2","Name":"web","Port":81}`)
	r := do(t, h, "GET", "/v1/agent/health/service/id/web-1?format=json", "")
	mustStatus(t, r, 200)
	var info serviceChecksInfo
	if err := json.Unmarshal([]byte(r.body), &info); err != nil || info.AggregatedStatus != "passing" || info.Service.ID != "web-1" ||
		len(info.Checks) != 1 || info.Checks[0].CheckID != "service:web-1" {
		t.Fatalf("%s %v", r.body, err)
	}
	for _, tt := range []struct {
		verb, status string
		code         int
	}{{"warn", "warning", 429}, {"fail", "critical", 503}, {"pass", "passing", 200}} {
		mustStatus(t, do(t, h, "PUT", "/v1/agent/check/"+tt.verb+"/service:web-1", ""), 200)
		r := do(t, h, "GET", "/v1/agent/health/service/id/web-1?format=text", "")
		if r.code != tt.code || r.body != tt.status {
			t.Errorf("after %s: %d %q", tt.verb, r.code, r.body)
		}
	}
	// By name: every local instance, the worst health as the code.
	mustStatus(t, do(t, h, "PUT", "/v1/agent/check/warn/service:web-1", ""), 200)
	r = do(t, h, "GET", "/v1/agent/health/service/name/web", "")
	var infos []serviceChecksInfo
	if err := json.Unmarshal([]byte(r.body), &infos); err != nil || r.code != 429 || len(infos) != 2 {
		t.Fatalf("by name: %d %s", r.code, r.body)
	}
	// Node maintenance makes every instance critical.
	mustStatus(t, do(t, h, "PUT", "/v1/agent/maintenance?enable=true", ""), 200)
	if r := do(t, h, "GET", "/v1/agent/health/service/id/web-2?format=text", ""); r.code != 503 || r.body != "critical" {
		t.Errorf("in maintenance: %d %q", r.code, r.body)
	}
	for _, target := range []string{"/v1/agent/health/service/id/nope", "/v1/agent/health/service/name/nope"} {
		if r := do(t, h, "GET", target, ""); r.code != 404 {
			t.Errorf("%s: %d %q", target, r.code, r.body)
		}
	}
	if r := do(t, h, "GET", "/v1/agent/health/service/id/web-1?format=xml", ""); r.code != 400 || r.body[:7] != "format:" {
		t.Errorf("bad format: %d %q", r.code, r.body)
	}
}
