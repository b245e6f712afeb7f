package localapi

import (
	"strings"
	"testing"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/catalog"
)

// FuzzRegisterBody feeds arbitrary bodies to PUT /v1/agent/service/register.
// The handler must never panic, must answer 200 or a one-line 4xx, must
// store the service it answered 200 for with its checks, and must store
// nothing else.
func FuzzRegisterBody(f *testing.F) {
	for _, s := range []string{
		// Valid, as Consul's Go client and curl users send them.
		`{"ID":"web-1","Name":"web","Tags":["v1","prod"],"Port":8080,"Address":"10.0.0.5","Meta":{"version":"1"},"Weights":{"Passing":3,"Warning":1},"Check":null,"Checks":null}`,
		`{"name":"db","port":5432}`,
		`{"Name":"web","Port":80,"Check":{"HTTP":"http://localhost/health","Interval":"10s"},"Checks":[{"TTL":"30s"}]}`,
		`{"Name":"web","Port":80,"TaggedAddresses":{"lan":{"Address":"10.0.0.1","Port":80}},"EnableTagOverride":true}`,
		`{"Name":"web","Port":80,"Weights":null,"Tags":null,"Meta":null}`,
		`  {"Name":"web","Port":65535}  ` + "\n",
		// Invalid.
		``, `{`, `}`, `[]`, `null`, `"web"`, `123`, `{"Name":"web","Port":80} {}`,
		`{"Name":"web","Port":"80"}`, `{"Name":"web","Port":1e999}`, `{"Name":"web","Port":-1}`,
		`{"Name":"web_1","Port":80}`, `{"ID":"a/b","Name":"web","Port":80}`, `{"Kind":"connect-proxy","Name":"web","Port":80}`,
		`{"Name":"web","Port":80,"Bogus":1}`, `{"Name":"web","Port":80,"Check":{"Bogus":1}}`,
		`{"Name":"web","Port":80,"Checks":[null,{"Bogus":1}]}`, `{"Name":"web","Port":80,"Meta":{"bad key":"v"}}`,
		`{"Name":"web","Port":80,"Meta":{"k":"\u0000"}}`, `{"Name":"web","Port":80,"Tags":["\ud800"]}`,
		`{"name":"a","NAME":"b","port":1}`, `{"Name":"web","Port":80,"Weights":{"Passing":0,"Warning":0}}`,
		`{"Name":"web","Port":80,"Address":"::1"}`, `{"Name":"web","Port":80,"Address":"-bad-"}`,
		`{"Name":"` + strings.Repeat("a", 64) + `","Port":80}`, "{\"Name\":\"w\xffb\",\"Port\":80}",
		// Checks.
		`{"Name":"web","Port":80,"Check":{"CheckID":"c","TTL":"10s","Status":"passing","Notes":"n"}}`,
		`{"Name":"web","Port":80,"Checks":[{"TCP":"localhost:80","Interval":"5s"},{"GRPC":"localhost:81","Interval":"5s"}]}`,
		`{"Name":"web","Port":80,"Check":{"TTL":"1s"},"Checks":[null,{"HTTP":"http://x/","Header":{"A":["b"]}}]}`,
		`{"Name":"web","Port":80,"Checks":[{"CheckID":"a","TTL":"1s"},{"CheckID":"a","TTL":"1s"}]}`,
		`{"Name":"web","Port":80,"Check":{"ScriptArgs":["/bin/true"],"Interval":"5s"}}`,
		`{"Name":"web","Port":80,"Check":{"TTL":"1s","Status":"bad"}}`, `{"Name":"web","Port":80,"Check":{}}`,
		`{"Name":"web","Port":80,"Check":{"CheckID":"a/b","TTL":"1s"}}`, `{"Name":"web","Port":80,"Check":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := newTestBackend()
		h := New(Config{Backend: b})
		before := b.state()
		rec := do(t, h, "PUT", "/v1/agent/service/register", string(body))
		switch {
		case rec.code == 200:
			svc, checks, err := decodeRegistration(body)
			if err != nil {
				t.Fatalf("200 for a body the decoder refuses: %v", err)
			}
			local := b.LocalServices()
			if len(local) != 1 || local[0].ID != svc.Normalize().ID {
				t.Fatalf("200, but stored %+v", local)
			}
			if r := do(t, h, "GET", "/v1/agent/service/"+local[0].ID, ""); r.code != 200 {
				t.Fatalf("registered %q but reading it gives %d %s", local[0].ID, r.code, r.body)
			}
			stored := b.AgentChecks()
			if len(stored) != len(checks) {
				t.Fatalf("200 for %d checks, but stored %+v", len(checks), stored)
			}
			for _, c := range stored {
				if c.ServiceID != local[0].ID {
					t.Fatalf("check %+v not bound to %q", c, local[0].ID)
				}
			}
		case rec.code >= 400 && rec.code < 500:
			checkRefusal(t, b, before, rec)
		default:
			t.Fatalf("status %d: %s", rec.code, rec.body)
		}
	})
}

// FuzzCheckRegisterBody feeds arbitrary bodies to PUT
// /v1/agent/check/register, on an agent with one service. The handler
// must never panic, must answer 200 or a one-line 4xx, must store the
// check it answered 200 for, and must store nothing on a 4xx.
func FuzzCheckRegisterBody(f *testing.F) {
	for _, s := range []string{
		// Valid, as Consul's Go client and curl users send them.
		`{"ID":"mem","Name":"Memory","Notes":"n","TTL":"30s","Status":"passing"}`,
		`{"Name":"web-http","ServiceID":"web-1","HTTP":"http://localhost:8080/health","Method":"GET","Header":{"X":["y"]},"Interval":"10s","Timeout":"1s"}`,
		`{"CheckID":"tcp","Name":"t","TCP":"localhost:22","Interval":"5s","DeregisterCriticalServiceAfter":"1m"}`,
		`{"name":"g","grpc":"localhost:9000","grpcusetls":true,"interval":"5s"}`,
		`{"Name":"x","TTL":"1s","SuccessBeforePassing":2,"FailuresBeforeWarning":1,"FailuresBeforeCritical":3}`,
		// Invalid.
		``, `{`, `[]`, `null`, `"x"`, `{"Name":"x","TTL":"1s"} {}`, `{"TTL":"1s"}`, `{"Name":"x"}`,
		`{"Name":"x","TTL":"1s","Bogus":1}`, `{"Name":"x","TTL":"1s","Status":"fine"}`,
		`{"Name":"x","TTL":"1s","ServiceID":"nope"}`, `{"ID":"a/b","Name":"x","TTL":"1s"}`,
		`{"ID":"_node_maintenance","Name":"x","TTL":"1s"}`, `{"Name":"x","Interval":10}`,
		`{"Name":"x","Header":{"a":"b"}}`, `{"Name":"x","ScriptArgs":["true"],"Interval":"1s"}`,
		"{\"Name\":\"x\xff\",\"TTL\":\"1s\"}", `{"Name":"` + strings.Repeat("n", 200) + `","TTL":"1s"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := newTestBackend()
		h := New(Config{Backend: b})
		register(t, h, `{"ID":"web-1","Name":"web","Port":8080}`)
		before := b.state()
		rec := do(t, h, "PUT", "/v1/agent/check/register", string(body))
		switch {
		case rec.code == 200:
			var reg api.AgentCheckRegistration
			if err := decodeStrict(body, &reg, "check registration", checkRegistrationHint); err != nil {
				t.Fatalf("200 for a body the decoder refuses: %v", err)
			}
			stored := b.AgentChecks()
			if len(stored) != 1 || stored[0].ServiceID != reg.ServiceID {
				t.Fatalf("200, but stored %+v", stored)
			}
			if r := do(t, h, "GET", "/v1/health/node/"+localNode, ""); !strings.Contains(r.body, `"Status":"`+stored[0].Status+`"`) {
				t.Fatalf("registered %+v, but the node shows %s", stored[0], r.body)
			}
		case rec.code >= 400 && rec.code < 500:
			checkRefusal(t, b, before, rec)
		default:
			t.Fatalf("status %d: %s", rec.code, rec.body)
		}
	})
}

// FuzzCheckUpdateBody feeds arbitrary bodies to PUT
// /v1/agent/check/update/:check_id for a TTL check. The handler must never
// panic, must answer 200 or a one-line 4xx, must record the state it
// answered 200 for, and must change nothing on a 4xx.
func FuzzCheckUpdateBody(f *testing.F) {
	for _, s := range []string{
		`{"Status":"passing","Output":"ok"}`, `{"Status":"warning"}`, `{"status":"critical","output":"down\n<b>"}`,
		`{"Status":"passing","Output":"` + strings.Repeat("é", 300) + `"}`,
		``, `{`, `[]`, `null`, `{"Status":"fine"}`, `{"Output":"x"}`, `{"Status":"passing","Outptu":"x"}`,
		`{"Status":"passing","Output":5}`, `{"Status":"passing"} {}`, "{\"Status\":\"passing\",\"Output\":\"\xff\"}",
		`{"Status":"passing","Output":"\ud800"}`, `{"Status":"PASSING"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := newTestBackend()
		h := New(Config{Backend: b})
		if err := b.RegisterCheck(api.AgentCheckRegistration{ID: "ttl-1", Name: "t",
			AgentServiceCheck: api.AgentServiceCheck{TTL: "10s"}}); err != nil {
			t.Fatal(err)
		}
		before := b.state()
		rec := do(t, h, "PUT", "/v1/agent/check/update/ttl-1", string(body))
		switch {
		case rec.code == 200:
			var u checkUpdate
			if err := decodeStrict(body, &u, "check update", checkUpdateHint); err != nil {
				t.Fatalf("200 for a body the decoder refuses: %v", err)
			}
			stored := b.AgentChecks()
			if len(stored) != 1 || stored[0].Status != u.Status || stored[0].Output != catalog.TruncateOutput(u.Output, maxOutput) {
				t.Fatalf("200 for %+v, but stored %+v", u, stored)
			}
		case rec.code >= 400 && rec.code < 500:
			checkRefusal(t, b, before, rec)
		default:
			t.Fatalf("status %d: %s", rec.code, rec.body)
		}
	})
}

// checkRefusal checks that a refused request changed nothing and was
// told in one line.
func checkRefusal(t *testing.T, b *testBackend, before string, r response) {
	t.Helper()
	if after := b.state(); after != before {
		t.Fatalf("%d changed the state: %s", r.code, after)
	}
	if strings.Count(r.body, "\n") != 1 || !strings.HasSuffix(r.body, "\n") {
		t.Fatalf("error body is not one line: %q", r.body)
	}
}
