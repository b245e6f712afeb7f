package localapi

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRegisterBody feeds arbitrary bodies to PUT /v1/agent/service/register.
// The handler must never panic, must answer 200 or a one-line 4xx, must
// store the service it answered 200 for, and must store nothing else.
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
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := newTestBackend()
		h := New(Config{Backend: b})
		before := b.state()
		req := httptest.NewRequest("PUT", "/v1/agent/service/register", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == 200:
			svc, err := decodeRegistration(body)
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
		case rec.Code >= 400 && rec.Code < 500:
			if after := b.state(); after != before {
				t.Fatalf("%d changed the state: %s", rec.Code, after)
			}
			if msg := rec.Body.String(); strings.Count(msg, "\n") != 1 || !strings.HasSuffix(msg, "\n") {
				t.Fatalf("error body is not one line: %q", msg)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
