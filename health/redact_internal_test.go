package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Credentials in a check's URL never reach its output (which is
// gossiped), whether the server answers, is unreachable, or the URL does
// not parse; header values never reach the definition the API shows.
func TestCredentialsAreRedacted(t *testing.T) {
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	var cls clients
	for _, u := range []string{
		strings.Replace(srv.URL, "http://", "http://alice:s3cr3t@", 1), // answers
		"http://alice:s3cr3t@127.0.0.1:1/health",                       // refused
		"http://alice:s3cr3t@[::1/health",                              // does not parse
		"http://s3cr3t@127.0.0.1:1/health",                             // a token as user name
	} {
		d := Definition{ID: "h", Name: "h", HTTP: u, Interval: time.Second, Timeout: time.Second,
			Header: map[string][]string{"Authorization": {"Bearer t0k3n"}}}
		o := probeHTTP(context.Background(), cls.get(tlsKey{}), &d)
		if strings.Contains(o.output, "s3cr3t") || strings.Contains(o.output, "alice") {
			t.Errorf("%s: output shows the credentials: %q", u, o.output)
		}
		if shown := RedactURL(u); strings.Contains(shown, "s3cr3t") || strings.Contains(shown, "alice") {
			t.Errorf("RedactURL(%s) = %q", u, shown)
		}
	}
	if gotAuth != "Bearer t0k3n" {
		t.Errorf("the check no longer sends its header: %q", gotAuth)
	}
	if !strings.Contains(RedactURL(strings.Replace(srv.URL, "http://", "http://a:b@", 1)), "redacted@") {
		t.Error("the redacted URL does not say so")
	}
	if h := RedactHeader(map[string][]string{"Authorization": {"Bearer t0k3n"}, "X-Key": {"a", "b"}}); h["Authorization"][0] != "redacted" || len(h["X-Key"]) != 2 || h["X-Key"][1] != "redacted" {
		t.Errorf("RedactHeader = %v", h)
	}
}
