package health_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/health"
)

func TestFromAPIDefaults(t *testing.T) {
	c := api.AgentServiceCheck{
		HTTP: "http://127.0.0.1:8080/health", Interval: "10s", Timeout: "2s",
		Header: map[string][]string{"X-A": {"1"}}, Status: "passing",
		DeregisterCriticalServiceAfter: "1m", SuccessBeforePassing: 2, FailuresBeforeCritical: 3,
	}
	d, err := health.FromAPI(c, "web-1", "web", 0, 1, "Check")
	if err != nil {
		t.Fatal(err)
	}
	want := health.Definition{
		ID: "service:web-1", Name: "Service 'web' check", ServiceID: "web-1",
		HTTP: "http://127.0.0.1:8080/health", Header: map[string][]string{"X-A": {"1"}},
		Interval: 10 * time.Second, Timeout: 2 * time.Second, Status: catalog.HealthPassing,
		DeregisterCriticalServiceAfter: time.Minute, SuccessBeforePassing: 2, FailuresBeforeCritical: 3,
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("FromAPI =\n%+v\nwant\n%+v", d, want)
	}
	if d.Type() != "http" {
		t.Errorf("Type() = %q", d.Type())
	}
	c.Header["X-A"][0] = "changed"
	if d.Header["X-A"][0] != "1" {
		t.Error("the Definition shares the registration's header slice")
	}

	d, err = health.FromAPI(api.AgentServiceCheck{TTL: "30s"}, "web-1", "web", 1, 3, "Checks[1]")
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != "service:web-1:2" || d.TTL != 30*time.Second || d.Type() != "ttl" || d.Status != 0 {
		t.Errorf("second of three checks = %+v", d)
	}
	d, err = health.FromAPI(api.AgentServiceCheck{CheckID: "mine", Name: "Mine", GRPC: "127.0.0.1:9/svc", Interval: "5s"},
		"web-1", "web", 0, 2, "Checks[0]")
	if err != nil || d.ID != "mine" || d.Name != "Mine" || d.Type() != "grpc" {
		t.Errorf("named gRPC check = %+v, %v", d, err)
	}
}

func TestFromAPIErrors(t *testing.T) {
	http := func(c api.AgentServiceCheck) api.AgentServiceCheck {
		c.HTTP = "http://127.0.0.1:1/"
		if c.Interval == "" {
			c.Interval = "10s"
		}
		return c
	}
	tests := []struct {
		name  string
		check api.AgentServiceCheck
		field string
		msg   string
	}{
		{"no kind", api.AgentServiceCheck{Interval: "10s"}, "HTTP", "set one of"},
		{"two kinds", api.AgentServiceCheck{HTTP: "http://a:1/", TCP: "a:1", Interval: "10s"}, "TCP", "cannot be combined"},
		{"interval missing", api.AgentServiceCheck{TCP: "a:1"}, "Interval", "required"},
		{"interval not a duration", http(api.AgentServiceCheck{Interval: "10"}), "Interval", "not a duration"},
		{"interval garbage", http(api.AgentServiceCheck{Interval: "soon"}), "Interval", "not a duration"},
		{"interval negative", http(api.AgentServiceCheck{Interval: "-5s"}), "Interval", "negative"},
		{"interval too short", http(api.AgentServiceCheck{Interval: "100us"}), "Interval", "minimum"},
		{"timeout", http(api.AgentServiceCheck{Timeout: "x"}), "Timeout", "not a duration"},
		{"timeout negative", http(api.AgentServiceCheck{Timeout: "-1s"}), "Timeout", "negative"},
		{"ttl zero", api.AgentServiceCheck{TTL: "0s"}, "TTL", "longer than"},
		{"ttl garbage", api.AgentServiceCheck{TTL: "1 day"}, "TTL", "not a duration"},
		{"deregister garbage", http(api.AgentServiceCheck{DeregisterCriticalServiceAfter: "1x"}), "DeregisterCriticalServiceAfter", "not a duration"},
		{"http scheme", api.AgentServiceCheck{HTTP: "ftp://a/", Interval: "10s"}, "HTTP", "URL"},
		{"http no host", api.AgentServiceCheck{HTTP: "http:///x", Interval: "10s"}, "HTTP", "URL"},
		{"http junk", api.AgentServiceCheck{HTTP: "::", Interval: "10s"}, "HTTP", "URL"},
		{"method", http(api.AgentServiceCheck{Method: "GET IT"}), "Method", "method"},
		{"header", http(api.AgentServiceCheck{Header: map[string][]string{"Bad Name": {"x"}}}), "Header", "header name"},
		{"tcp", api.AgentServiceCheck{TCP: "localhost", Interval: "10s"}, "TCP", "host:port"},
		{"tcp no host", api.AgentServiceCheck{TCP: ":80", Interval: "10s"}, "TCP", "host:port"},
		{"grpc", api.AgentServiceCheck{GRPC: "localhost/svc", Interval: "10s"}, "GRPC", "host:port"},
		{"status", api.AgentServiceCheck{TTL: "10s", Status: "ok"}, "Status", "passing"},
		{"successes", http(api.AgentServiceCheck{SuccessBeforePassing: -1}), "SuccessBeforePassing", "negative"},
		{"failures", http(api.AgentServiceCheck{FailuresBeforeCritical: -2}), "FailuresBeforeCritical", "negative"},
		{"warnings", http(api.AgentServiceCheck{FailuresBeforeWarning: -2}), "FailuresBeforeWarning", "negative"},
		{"output size", http(api.AgentServiceCheck{OutputMaxSize: -1}), "OutputMaxSize", "negative"},
		{"check id", api.AgentServiceCheck{CheckID: "a b", TTL: "10s"}, "CheckID", ""},
		{"name", api.AgentServiceCheck{Name: strings.Repeat("n", 200), TTL: "10s"}, "Name", ""},
		{"notes", api.AgentServiceCheck{Notes: strings.Repeat("n", 300), TTL: "10s"}, "Notes", ""},
		{"script", api.AgentServiceCheck{Args: []string{"/bin/true"}, Interval: "10s"}, "ScriptArgs", "not supported"},
		{"docker", api.AgentServiceCheck{DockerContainerID: "abc", Interval: "10s"}, "DockerContainerID", "not supported"},
		{"shell", api.AgentServiceCheck{Shell: "/bin/sh", TTL: "10s"}, "Shell", "not supported"},
		{"h2ping", api.AgentServiceCheck{H2PING: "a:1", Interval: "10s"}, "H2PING", "not supported"},
		{"alias node", api.AgentServiceCheck{AliasNode: "n1"}, "AliasNode", "not supported"},
		{"alias service", api.AgentServiceCheck{AliasService: "db"}, "AliasService", "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := health.FromAPI(tt.check, "web-1", "web", 1, 2, "Checks[1]")
			var fe *catalog.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("FromAPI(%+v) = %v, want a *catalog.FieldError", tt.check, err)
			}
			if want := "Checks[1]." + tt.field; fe.Field != want || !strings.Contains(fe.Msg, tt.msg) {
				t.Errorf("FromAPI error = %q, want field %q with %q", err, want, tt.msg)
			}
			if !errors.Is(err, catalog.ErrInvalid) {
				t.Errorf("errors.Is(%v, catalog.ErrInvalid) = false", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := health.Definition{ID: "c1", Name: "c", TCP: "127.0.0.1:80", Interval: time.Second}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", ok, err)
	}
	tests := []struct {
		name   string
		change func(*health.Definition)
		field  string
	}{
		{"no id", func(d *health.Definition) { d.ID = "" }, "CheckID"},
		{"no name", func(d *health.Definition) { d.Name = "" }, "Name"},
		{"bad status", func(d *health.Definition) { d.Status = 9 }, "Status"},
		{"negative ttl", func(d *health.Definition) { d.TCP, d.TTL = "", -time.Second }, "TTL"},
		{"ttl and tcp", func(d *health.Definition) { d.TTL = time.Second }, "TTL"},
		{"no interval", func(d *health.Definition) { d.Interval = 0 }, "Interval"},
		{"deregister a node", func(d *health.Definition) { d.DeregisterCriticalServiceAfter = time.Minute }, "DeregisterCriticalServiceAfter"},
		{"bad service id", func(d *health.Definition) { d.ServiceID = "a/b" }, "ServiceID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok
			tt.change(&d)
			var fe *catalog.FieldError
			if err := d.Validate(); !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("Validate(%+v) = %v, want a FieldError for %s", d, err, tt.field)
			}
		})
	}
}

func TestFromCheckRegistration(t *testing.T) {
	var r api.AgentCheckRegistration
	if err := json.Unmarshal([]byte(`{"ID":"x","Name":"n","Notes":"about","TTL":"10s"}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.ID != "x" || r.Name != "n" || r.Notes != "about" || r.TTL != "10s" {
		t.Fatalf("decoded %+v", r)
	}
	d, err := health.FromCheckRegistration(r)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != "x" || d.Name != "n" || d.Notes != "about" || d.TTL != 10*time.Second || d.ServiceID != "" {
		t.Errorf("FromCheckRegistration = %+v", d)
	}

	// Without an ID the Name is the ID, as in Consul.
	r = api.AgentCheckRegistration{Name: "mem", ServiceID: "web-1",
		AgentServiceCheck: api.AgentServiceCheck{TCP: "127.0.0.1:80", Interval: "15s", DeregisterCriticalServiceAfter: "90s"}}
	if d, err = health.FromCheckRegistration(r); err != nil || d.ID != "mem" || d.ServiceID != "web-1" ||
		d.DeregisterCriticalServiceAfter != 90*time.Second {
		t.Errorf("FromCheckRegistration(%+v) = %+v, %v", r, d, err)
	}
	// A Go caller may fill the embedded Name instead.
	r = api.AgentCheckRegistration{AgentServiceCheck: api.AgentServiceCheck{Name: "inner", TTL: "5s"}}
	if d, err = health.FromCheckRegistration(r); err != nil || d.ID != "inner" || d.Name != "inner" {
		t.Errorf("FromCheckRegistration(%+v) = %+v, %v", r, d, err)
	}

	for _, tt := range []struct {
		body, field string
	}{
		{`{"ID":"x","TTL":"10s"}`, "Name"},
		{`{"ID":"x y","Name":"n","TTL":"10s"}`, "ID"},
		{`{"CheckID":"x y","Name":"n","TTL":"10s"}`, "CheckID"},
		{`{"Name":"n","TTL":"10s","DeregisterCriticalServiceAfter":"1m"}`, "DeregisterCriticalServiceAfter"},
		{`{"Name":"n","HTTP":"http://a:1/","Interval":"ten"}`, "Interval"},
		{`{"Name":"n","ScriptArgs":["true"],"Interval":"10s"}`, "ScriptArgs"},
	} {
		var r api.AgentCheckRegistration
		if err := json.Unmarshal([]byte(tt.body), &r); err != nil {
			t.Fatal(err)
		}
		_, err := health.FromCheckRegistration(r)
		var fe *catalog.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("FromCheckRegistration(%s) = %v, want a FieldError for %s", tt.body, err, tt.field)
		}
	}
}

// FuzzFromCheckRegistration feeds arbitrary request bodies through the
// decoder and the conversion: never a panic, and every refusal a field
// error naming a field, every acceptance a valid Definition.
func FuzzFromCheckRegistration(f *testing.F) {
	for _, s := range []string{
		`{"ID":"x","Name":"n","TTL":"10s"}`,
		`{"Name":"web","ServiceID":"web-1","HTTP":"http://127.0.0.1:8080/","Interval":"10s","Timeout":"1s","Header":{"A":["b"]}}`,
		`{"Name":"db","TCP":"127.0.0.1:5432","Interval":"5s","SuccessBeforePassing":3,"FailuresBeforeCritical":2}`,
		`{"Name":"g","GRPC":"127.0.0.1:9/svc","GRPCUseTLS":true,"Interval":"1m","Status":"warning"}`,
		`{"Name":"s","ScriptArgs":["x"]}`,
		`{"Name":"n","TTL":"-1ns"}`,
		`{"Name":"é\u0000","TTL":"1h","Notes":"\xff"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var r api.AgentCheckRegistration
		if json.Unmarshal(body, &r) != nil {
			return
		}
		d, err := health.FromCheckRegistration(r)
		if err != nil {
			var fe *catalog.FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("FromCheckRegistration(%s) = %v, want a *catalog.FieldError", body, err)
			}
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("FromCheckRegistration(%s) accepted %+v, which Validate refuses: %v", body, d, err)
		}
		if d.Type() == "" {
			t.Fatalf("FromCheckRegistration(%s) accepted a check of no kind", body)
		}
	})
}
