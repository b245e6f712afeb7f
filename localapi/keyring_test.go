package localapi

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/shoal-sd/shoal/api"
)

// The keyring routes: one path, a method per operation; the body's key is
// checked before the backend sees it; a node's failure makes a write a
// 500 naming the node; Consul's relay-factor and local-only are taken.
func TestKeyringRoutes(t *testing.T) {
	b := newTestBackend()
	h := New(Config{Backend: b})
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	b.keyRes = api.KeyringResponse{Datacenter: "dc1", NumNodes: 3, Keys: map[string]int{key: 3}, PrimaryKeys: map[string]int{key: 3}}

	r := do(t, h, "GET", "/v1/operator/keyring?relay-factor=2&local-only", "")
	if r.code != 200 || !strings.Contains(r.body, `"NumNodes":3`) || !strings.HasPrefix(r.body, "[{") {
		t.Fatalf("list: %d %s", r.code, r.body)
	}
	for method, op := range map[string]string{"POST": "install", "PUT": "use", "DELETE": "remove"} {
		if r := do(t, h, method, "/v1/operator/keyring", `{"Key":"`+key+`"}`); r.code != 200 || r.body != "" {
			t.Fatalf("%s: %d %s", method, r.code, r.body)
		}
		if last := b.keyOps[len(b.keyOps)-1]; !strings.HasPrefix(last, op+" 3031") || !strings.HasSuffix(last, "local=false") {
			t.Fatalf("%s asked the backend %q", method, last)
		}
	}
	if b.keyOps[0] != "list  local=true" {
		t.Fatalf("list asked %q", b.keyOps[0])
	}
	n := len(b.keyOps)
	for _, tc := range []struct{ method, target, body, want string }{
		{"POST", "/v1/operator/keyring", ``, "body: empty"},
		{"POST", "/v1/operator/keyring", `{"Key":""}`, "Key: missing"},
		{"POST", "/v1/operator/keyring", `{"Key":"%%%"}`, "Key: not base64"},
		{"PUT", "/v1/operator/keyring", `{"Key":"c2hvcnQ="}`, "Key: 5 bytes"},
		{"DELETE", "/v1/operator/keyring", `{"Key":"` + key + `","Extra":1}`, "Extra"},
		{"GET", "/v1/operator/keyring?relay-factor=6", ``, "relay-factor"},
		{"GET", "/v1/operator/keyring?local-only=maybe", ``, "local-only"},
	} {
		r := do(t, h, tc.method, tc.target, tc.body)
		if r.code != 400 || !strings.Contains(r.body, tc.want) {
			t.Errorf("%s %s %s: %d %s", tc.method, tc.target, tc.body, r.code, r.body)
		}
	}
	if len(b.keyOps) != n {
		t.Fatalf("refused requests reached the backend: %v", b.keyOps[n:])
	}
	r = do(t, h, "PATCH", "/v1/operator/keyring", "")
	if r.code != 405 || r.header.Get("Allow") != "GET, POST, PUT, DELETE" {
		t.Fatalf("PATCH: %d %q %s", r.code, r.header.Get("Allow"), r.body)
	}

	b.keyRes.Messages = map[string]string{"node-b": "the key is not installed", "node-a": "no answer in time"}
	r = do(t, h, "PUT", "/v1/operator/keyring", `{"Key":"`+key+`"}`)
	if r.code != 500 || !strings.Contains(r.body, "2/3 nodes reported failure; node-a: no answer in time; node-b: the key is not installed") {
		t.Fatalf("use failing on two nodes: %d %s", r.code, r.body)
	}
	if r := do(t, h, "GET", "/v1/operator/keyring", ""); r.code != 200 || !strings.Contains(r.body, `"node-b":"the key is not installed"`) {
		t.Fatalf("a list with failures: %d %s", r.code, r.body)
	}
	b.keyErr = errors.New("gossip encryption is not enabled on this agent")
	if r := do(t, h, "GET", "/v1/operator/keyring", ""); r.code != 500 || !strings.Contains(r.body, "not enabled") {
		t.Fatalf("no encryption: %d %s", r.code, r.body)
	}
}

// FuzzKeyringBody: the body of a keyring write never panics the decoder;
// what it accepts is a key of 16, 24 or 32 bytes.
func FuzzKeyringBody(f *testing.F) {
	for _, s := range []string{
		`{"Key":"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="}`, `{"key":"MDEyMzQ1Njc4OWFiY2RlZg=="}`,
		``, `{}`, `[]`, `null`, `{"Key":1}`, `{"Key":"x"}`, `{"Key":"c2hvcnQ="}`, `{"Key":"` + strings.Repeat("A", 44) + `"} {}`,
		`{"Key":"pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=","Key":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		key, err := decodeKeyringRequest(body)
		if err != nil {
			if he, ok := errors.AsType[*httpError](err); !ok || he.code != 400 {
				t.Fatalf("refusal is not a 400: %v", err)
			}
			return
		}
		if n := len(key); n != 16 && n != 24 && n != 32 {
			t.Fatalf("accepted a key of %d bytes", n)
		}
	})
}
