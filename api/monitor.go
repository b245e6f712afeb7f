package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// ErrStreamEnded is wrapped by the error of a stream that ended on the
// agent's side: the agent stopped, or the connection broke.
var ErrStreamEnded = errors.New("agent ended the stream")

// maxLogLine bounds one line of Monitor; a longer one ends the stream.
const maxLogLine = 1 << 20

// Monitor streams the agent's log (GET /v1/agent/monitor): it calls fn
// with each line, without its newline, from the moment the agent takes
// the request until ctx ends (Monitor returns ctx's error), fn fails (its
// error is returned as is) or the stream ends (an error wrapping
// ErrStreamEnded). fn must not keep line after it returns.
//
// level is the lowest level streamed: "debug", "info", "warn" or "error";
// empty means the agent's default, info. The agent streams at that level
// whatever level it logs at itself. json asks for JSON lines, as slog's
// JSONHandler writes them, instead of slog text lines. A reader that
// falls far behind loses lines, and is then sent a line with the message
// "[dropped N lines]".
//
// A Timeout on Client.HTTPClient also bounds the stream.
func (c *Client) Monitor(ctx context.Context, level string, json bool, fn func(line []byte) error) error {
	q := url.Values{}
	if level != "" {
		q.Set("loglevel", level)
	}
	if json {
		q.Set("logjson", "true")
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/agent/monitor", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, maxLogLine)
	for sc.Scan() {
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err = sc.Err()
	switch {
	case errors.Is(err, bufio.ErrTooLong):
		return fmt.Errorf("monitor: a log line is longer than %d bytes", maxLogLine)
	case err != nil:
		return fmt.Errorf("monitor: %w: %w", ErrStreamEnded, err)
	}
	return fmt.Errorf("monitor: %w", ErrStreamEnded)
}
