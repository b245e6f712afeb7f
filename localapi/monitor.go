package localapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/shoal-sd/shoal/acl"
)

// monitorRoute streams the agent's log.
const monitorRoute = "agent/monitor"

// monitorWriteTimeout bounds one write of the stream: a client that stops
// reading but keeps its connection open is let go after this long, rather
// than holding the handler after the agent has stopped.
const monitorWriteTimeout = 10 * time.Second

// streams reports whether the route answers with a stream whose duration
// is the client's to choose.
func (rt *route) streams() bool { return rt.path == monitorRoute || rt.path == watchRoute }

// GET /v1/agent/monitor?loglevel=L&logjson: the agent's log lines from now
// on, at level L (debug, info, warn or error; info by default) whatever
// level the agent itself logs at, as slog text lines or, with logjson, as
// JSON lines. The answer is chunked and flushed as lines come; it ends
// when the client goes away or the agent stops. A client that reads too
// slowly loses lines and is told how many.
func (s *server) agentMonitor(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	level, err := parseLogLevel(q.values.Get("loglevel"))
	if err != nil {
		return err
	}
	json, err := q.flag("logjson")
	if err != nil {
		return err
	}
	done, err := s.startWaiting()
	if err != nil {
		return err
	}
	defer done()
	ctx := r.Context()
	lines, err := s.b.Monitor(ctx, level, json)
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	h := w.Header()
	if json {
		h.Set("Content-Type", "application/x-ndjson")
	} else {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// The deadline would outlive the request on a kept-alive connection.
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	// Send the header now: the client learns that it is subscribed before
	// the first line.
	if err := rc.Flush(); err != nil {
		s.log.Debug("monitor stream not flushable", "err", err)
		return nil
	}
	s.log.Debug("monitor started", "loglevel", level, "logjson", json)
	for {
		var line []byte
		var ok bool
		select {
		case line, ok = <-lines:
			if !ok {
				return nil
			}
			// A reload may have revoked the token.
			if !s.stillAllowed(r, acl.Agent, acl.Read) {
				return nil
			}
		case <-ctx.Done():
			// Deliver what was queued before the end (the agent's last
			// words, such as its leave) rather than drop it at random.
			for {
				select {
				case line, ok := <-lines:
					if ok {
						_, err := w.Write(line)
						if err == nil {
							continue
						}
					}
				default:
				}
				_ = rc.Flush()
				return nil
			}
		}
		_ = rc.SetWriteDeadline(time.Now().Add(monitorWriteTimeout))
		// Write what else is queued, then flush once: no line waits for
		// a later one, and a burst costs one flush.
		for ok {
			if _, err := w.Write(line); err != nil {
				return nil // the client went away
			}
			select {
			case line, ok = <-lines:
			default:
				ok = false
			}
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

// parseLogLevel reads ?loglevel. Like Consul it takes any case, and
// "trace", which slog does not have, as debug.
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "trace", "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "err", "error":
		return slog.LevelError, nil
	}
	return 0, errorf(http.StatusBadRequest, "loglevel: %q is not one of debug, info, warn, error", s)
}
