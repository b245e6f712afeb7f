package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultAddr is the agent address a Client uses when neither Client.Addr
// nor $SHOAL_HTTP_ADDR names one: the agent's default HTTP listener.
const DefaultAddr = "127.0.0.1:8500"

// EnvHTTPAddr names the environment variable a Client with an empty Addr
// reads the agent address from; `shoal` and the agent honour it too.
const EnvHTTPAddr = "SHOAL_HTTP_ADDR"

// EnvHTTPToken and EnvConsulHTTPToken name the environment variables a
// Client with an empty Token reads, in that order.
const (
	EnvHTTPToken       = "SHOAL_HTTP_TOKEN"
	EnvConsulHTTPToken = "CONSUL_HTTP_TOKEN"
)

// maxErrorBody bounds how much of a failed answer is kept in a StatusError:
// the agent answers errors with one line, anything longer is not ours.
const maxErrorBody = 64 << 10

// Client talks to one Shoal agent's local HTTP API. The zero value is ready
// to use and talks to the agent at $SHOAL_HTTP_ADDR or DefaultAddr. A Client
// holds no state of its own and is safe for concurrent use.
type Client struct {
	// Addr is the agent's HTTP address, "host:port" or
	// "http://host:port" ("https://" also works behind a TLS proxy).
	// Empty means $SHOAL_HTTP_ADDR, or DefaultAddr if that is unset too.
	Addr string

	// HTTPClient sends the requests; nil means http.DefaultClient. The
	// Client sets no timeout of its own: bound a call with its context,
	// leaving room for QueryOptions.WaitTime on blocking queries.
	HTTPClient *http.Client

	// Token is the ACL token sent with every request (X-Consul-Token).
	// Empty means $SHOAL_HTTP_TOKEN, else $CONSUL_HTTP_TOKEN, else none.
	Token string
}

// token is the token to send: Token, or the environment's.
func (c *Client) token() string {
	if c.Token != "" {
		return c.Token
	}
	if t := os.Getenv(EnvHTTPToken); t != "" {
		return t
	}
	return os.Getenv(EnvConsulHTTPToken)
}

// QueryOptions refine a catalog or health read. A nil *QueryOptions asks
// for everything, without blocking.
type QueryOptions struct {
	// Tags keeps only instances that carry every one of these tags
	// (CatalogService and HealthService; sent as repeated `tag`).
	Tags []string

	// Passing keeps only instances whose checks all pass (HealthService
	// only; sent as `passing=1`).
	Passing bool

	// Warning, with Passing, keeps warning instances too: only critical
	// ones are left out (HealthService only; a Shoal addition, sent as
	// `warning=1`). Without Passing it does nothing.
	Warning bool

	// WaitIndex makes the read a blocking query: the agent answers once
	// its index for the result passes WaitIndex, or when WaitTime ends.
	// Pass the LastIndex of the previous answer.
	WaitIndex uint64

	// WaitTime bounds a blocking query; zero leaves it to the agent.
	WaitTime time.Duration

	// Filter keeps only what this go-bexpr expression, over Consul's
	// selectors, accepts, such as `Service.Meta.version == "2"` or
	// `Checks.Status == passing` (sent as `filter`). The endpoints that
	// cannot filter refuse it.
	Filter string

	// NodeMeta keeps only what runs on nodes whose metadata has every
	// one of these pairs (CatalogService, CatalogNodes, HealthService,
	// HealthChecks, HealthState; sent as repeated `node-meta=key:value`).
	// The other endpoints refuse it.
	NodeMeta map[string]string

	// Near sorts the answer by estimated round trip time from the named
	// node, nearest first; "_agent" is the agent answering (CatalogService,
	// CatalogNodes and HealthService; sent as `near`).
	Near string
}

// QueryMeta describes the answer to a read.
type QueryMeta struct {
	// LastIndex is the agent's X-Consul-Index for the result: feed it back
	// as QueryOptions.WaitIndex to wait for the next change.
	LastIndex uint64
}

// baseURL resolves the agent address to "scheme://host[:port][/prefix]".
func (c *Client) baseURL() (string, error) {
	addr := c.Addr
	if addr == "" {
		addr = os.Getenv(EnvHTTPAddr)
	}
	if addr == "" {
		addr = DefaultAddr
	}
	raw := addr
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("agent address %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("agent address %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("agent address %q: no host:port", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("agent address %q: must not carry a query or fragment", raw)
	}
	return u.Scheme + "://" + u.Host + strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// do sends one request. path must already be escaped. in, if not nil, is
// sent as JSON; out, if not nil, receives the decoded JSON answer.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) (*QueryMeta, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
	}()

	meta := &QueryMeta{}
	if h := resp.Header.Get("X-Consul-Index"); h != "" {
		meta.LastIndex, err = strconv.ParseUint(h, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s %s: bad X-Consul-Index header %q: %w", method, path, h, err)
		}
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return nil, fmt.Errorf("decode %s %s answer: %w", method, path, err)
		}
	}
	return meta, nil
}

// send sends one request and returns the agent's 2xx answer, whose body
// the caller must close; any other answer is a *StatusError. path must
// already be escaped; body, if not nil, is JSON.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Response, error) {
	base, err := c.baseURL()
	if err != nil {
		return nil, err
	}
	target := base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("build %s %s request: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if t := c.token(); t != "" {
		req.Header.Set("X-Consul-Token", t)
	}

	resp, err := c.httpClient().Do(req)
	if err != nil {
		cause := err
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = ue.Err // drop the quoted URL: the address is named below
		}
		if ctx.Err() != nil {
			// The caller gave up; the agent may be fine.
			return nil, fmt.Errorf("%s %s: %w", method, path, cause)
		}
		return nil, fmt.Errorf("%w at %s: %w", ErrAgentUnreachable, req.URL.Host, cause)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		return nil, &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	return resp, nil
}

// get reads path into a T.
func get[T any](ctx context.Context, c *Client, path string, query url.Values) (T, *QueryMeta, error) {
	var out T
	meta, err := c.do(ctx, http.MethodGet, path, query, nil, &out)
	if err != nil {
		var zero T
		return zero, nil, err
	}
	return out, meta, nil
}

// values turns q into query parameters. withTags and withPassing say
// whether the endpoint understands those filters; the blocking parameters
// apply to every read.
func (q *QueryOptions) values(withTags, withPassing bool) url.Values {
	v := url.Values{}
	if q == nil {
		return v
	}
	if withTags {
		for _, t := range q.Tags {
			v.Add("tag", t)
		}
	}
	if withPassing && q.Passing {
		v.Set("passing", "1")
		if q.Warning {
			v.Set("warning", "1")
		}
	}
	if q.Filter != "" {
		v.Set("filter", q.Filter)
	}
	for _, k := range slices.Sorted(maps.Keys(q.NodeMeta)) {
		v.Add("node-meta", k+":"+q.NodeMeta[k])
	}
	if q.WaitIndex > 0 {
		v.Set("index", strconv.FormatUint(q.WaitIndex, 10))
	}
	if q.WaitTime > 0 {
		v.Set("wait", durationMillis(q.WaitTime))
	}
	if q.Near != "" {
		v.Set("near", q.Near) // reads that cannot sort ignore it
	}
	return v
}

// durationMillis formats d the way Consul's clients send `wait`: whole
// milliseconds, rounded up so that a short wait never becomes no wait.
func durationMillis(d time.Duration) string {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(int64(ms), 10) + "ms"
}

// segment escapes one path segment: IDs, names and addresses may hold
// characters ('?', '%', ' ') that would otherwise change the path.
func segment(s string) string { return url.PathEscape(s) }
