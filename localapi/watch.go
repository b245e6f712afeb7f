package localapi

import (
	"hash/maphash"
	"net/http"
	"strconv"
	"time"

	"github.com/shoal-sd/shoal/catalog"
)

// watchRoute streams a service's instances as Server-Sent Events.
const watchRoute = "shoal/watch/service/"

// watchKeepalive is how often an idle stream gets an SSE comment, so that
// proxies and clients can tell a quiet service from a dead connection.
const watchKeepalive = 15 * time.Second

var watchSeed = maphash.MakeSeed()

// healthFilter reads ?passing and ?warning as health/service does: the
// worst state an instance may be in to be answered, 0 for any.
func healthFilter(q *query) (catalog.Health, error) {
	passing, err := q.flag("passing")
	if err != nil {
		return 0, err
	}
	warning, err := q.flag("warning")
	if err != nil {
		return 0, err
	}
	switch {
	case passing && warning:
		return catalog.HealthWarning, nil
	case passing:
		return catalog.HealthPassing, nil
	case warning:
		// Alone it would read as a filter and filter nothing.
		return 0, errorf(http.StatusBadRequest, "warning: only with passing (?passing&warning keeps passing and warning instances)")
	}
	return 0, nil
}

// GET /v1/shoal/watch/service/:name (with ?passing, ?warning and ?tag as
// health/service takes them): a Server-Sent Events stream. The first
// event is the current instance set, then one event each time the set
// changes, each an "instances" event whose id is the service's index and
// whose data is the JSON of GET /v1/health/service/:name. A client that
// reconnects with Last-Event-ID gets the set again only if it changed
// meanwhile. The stream ends when the client goes away or the agent stops.
func (s *server) shoalWatchService(w http.ResponseWriter, r *http.Request, q *query, name string) error {
	tags := q.values["tag"]
	if len(tags) > catalog.MaxTags {
		return errorf(http.StatusBadRequest, "tag: %d tags given; an instance has at most %d", len(tags), catalog.MaxTags)
	}
	worst, err := healthFilter(q)
	if err != nil {
		return err
	}
	var lastIndex uint64
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if lastIndex, err = strconv.ParseUint(id, 10, 64); err != nil {
			return errorf(http.StatusBadRequest, "Last-Event-ID: %q is not an index", id)
		}
	}
	done, err := s.startWaiting()
	if err != nil {
		return err
	}
	defer done()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	if err := rc.Flush(); err != nil {
		return nil
	}
	ctx := r.Context()
	keepalive := time.NewTicker(watchKeepalive)
	defer keepalive.Stop()
	dc := s.b.Datacenter()
	var lastSum uint64
	sent := false
	for {
		// A reload may have revoked or narrowed the token: ask again
		// before each event, and end the stream if it is gone.
		a, err := s.authorize(r)
		if err != nil {
			return nil
		}
		q.authz = a
		// Take the channel before reading: no change is missed.
		changed := s.b.Changed()
		v := getView()
		var index uint64
		s.b.Read(func(c *catalog.Catalog) { index = v.collect(c, name, tags, true, worst) })
		index = max(index, 1)
		var event *buffer
		if index != lastIndex {
			v.finish(s.localAddr)
			v.authorize(q.authz)
			// The index moves with any change of the service; the
			// filtered set may be the same, and then nothing is sent.
			// The sum leaves out the last-heard ages, which change
			// all the time.
			body := v.appendHealth(nil, dc)
			if sum := maphash.Bytes(watchSeed, body); !sent || sum != lastSum {
				v.fillHeard(s.b)
				body = v.appendHealth(body[:0], dc)
				event = getBuf()
				event.b = append(event.b, "event: instances\nid: "...)
				event.b = strconv.AppendUint(event.b, index, 10)
				event.b = append(event.b, "\ndata: "...)
				event.b = append(event.b, body...)
				event.b = append(event.b, "\n\n"...)
				lastSum, sent = sum, true
			}
			lastIndex = index
		}
		v.release()
		if event != nil {
			ok := s.writeEvent(rc, w, event.b)
			putBuf(event)
			if !ok {
				return nil
			}
		}
		select {
		case <-changed:
		case <-keepalive.C:
			if !s.writeEvent(rc, w, []byte(": keepalive\n\n")) {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// writeEvent writes and flushes one event; false means the client is
// gone.
func (s *server) writeEvent(rc *http.ResponseController, w http.ResponseWriter, b []byte) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(monitorWriteTimeout))
	if _, err := w.Write(b); err != nil {
		return false
	}
	return rc.Flush() == nil
}
