package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// maxEvent bounds one event of WatchService: the JSON of a service's
// instances.
const maxEvent = 16 << 20

// WatchService follows a service's instances through the agent's
// Server-Sent Events stream (GET /v1/shoal/watch/service/:name, a Shoal
// addition): it calls fn with the current set at once and again after
// every change of it, with the service's index, until ctx ends
// (WatchService returns ctx's error), fn fails (its error is returned as
// is) or the stream ends (an error wrapping ErrStreamEnded). q's Tags,
// Passing and Warning apply; its blocking fields do not. Entries are fn's
// to keep.
func (c *Client) WatchService(ctx context.Context, name string, q *QueryOptions, fn func(index uint64, entries []*ServiceEntry) error) error {
	if name == "" {
		return errors.New("watch: empty service name")
	}
	v := q.values(true, true)
	v.Del("index")
	v.Del("wait")
	v.Del("near")
	resp, err := c.send(ctx, http.MethodGet, "/v1/shoal/watch/service/"+segment(name), v, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = readEvents(resp.Body, func(index uint64, data []byte) error {
		var entries []*ServiceEntry
		if err := json.Unmarshal(data, &entries); err != nil {
			return fmt.Errorf("watch %s: %w", name, err)
		}
		return fn(index, entries)
	})
	if err != nil && !errors.Is(err, errStreamBroke) {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("watch %s: %w: %w", name, ErrStreamEnded, err)
	}
	return fmt.Errorf("watch %s: %w", name, ErrStreamEnded)
}

// errStreamBroke wraps a read error of an event stream.
var errStreamBroke = errors.New("stream broke")

// readEvents reads Server-Sent Events from r and calls fn with each
// event's id (as an index; 0 if none or not a number) and data. It
// returns fn's error as is, nil at the end of r, or an error wrapping
// errStreamBroke if reading fails or an event is too long.
func readEvents(r io.Reader, fn func(index uint64, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxEvent)
	var (
		index uint64
		data  []byte
	)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if data == nil {
				continue // the end of a comment, such as a keepalive
			}
			d := data
			data = nil
			if err := fn(index, d); err != nil {
				return err
			}
		case bytes.HasPrefix(line, []byte("id: ")):
			index, _ = strconv.ParseUint(string(line[4:]), 10, 64)
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data[:0:0], line[6:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %w", errStreamBroke, err)
	}
	return nil
}
