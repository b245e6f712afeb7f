package api_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/shoal-sd/shoal/api"
)

// answer is a RoundTripper that answers every request with one canned
// response, without a network.
type answer struct {
	status int
	index  string
	body   string
}

func (a answer) RoundTrip(r *http.Request) (*http.Response, error) {
	h := http.Header{}
	if a.index != "" {
		h.Set("X-Consul-Index", a.index)
	}
	return &http.Response{
		StatusCode: a.status,
		Header:     h,
		Body:       io.NopCloser(strings.NewReader(a.body)),
		Request:    r,
	}, nil
}

// FuzzAnswers feeds the client arbitrary answers from the agent: it must
// never panic, must turn a refusal into a one-line *StatusError, and must
// not call an answer it could not read a success.
func FuzzAnswers(f *testing.F) {
	f.Add(200, "5", healthServiceJSON)
	f.Add(200, "", membersJSON)
	f.Add(200, "x", selfJSON)
	f.Add(200, "1", `{"web": null}`)
	f.Add(404, "", "Unknown service ID \"x\".\r\nmore")
	f.Add(500, "", strings.Repeat("é", 200))
	f.Add(204, "", "")
	f.Fuzz(func(t *testing.T, status int, index, body string) {
		if status < 100 || status > 999 {
			return
		}
		c := &api.Client{Addr: "127.0.0.1:1", HTTPClient: &http.Client{Transport: answer{status, index, body}}}
		ctx := context.Background()
		errs := []error{}
		_, _, err := c.HealthService(ctx, "web", nil)
		errs = append(errs, err)
		_, err = c.Members(ctx)
		errs = append(errs, err)
		_, err = c.Self(ctx)
		errs = append(errs, err)
		_, _, err = c.CatalogServices(ctx, nil)
		errs = append(errs, err)
		errs = append(errs, c.Deregister(ctx, "web"))
		for _, err := range errs {
			var se *api.StatusError
			refused := status < 200 || status > 299
			if refused != errors.As(err, &se) {
				t.Fatalf("status %d: err = %v", status, err)
			}
			if refused && strings.ContainsAny(se.Error(), "\r\n") {
				t.Fatalf("status %d: message %q is not one line", status, se.Error())
			}
			if errors.Is(err, api.ErrAgentUnreachable) {
				t.Fatalf("an answer counted as unreachable: %v", err)
			}
		}
	})
}
