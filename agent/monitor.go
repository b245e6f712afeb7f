package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// monitorBuffer is how many lines a monitor may fall behind before its
// lines are dropped; Consul's agent keeps as many.
const monitorBuffer = 512

// Monitor streams the agent's log, from now until ctx ends; the channel
// is closed then. It carries every record at level or above, whatever
// level the agent's own log is at, formatted as slog's TextHandler does,
// or as its JSONHandler does if json is set. Each line ends in '\n' and
// may be shared with other monitors: read only.
//
// Logging never waits for a monitor: one that falls monitorBuffer lines
// behind loses lines, and once it has caught up it gets a WARN line with
// the message "[dropped N lines]" before the next one.
func (a *Agent) Monitor(ctx context.Context, level slog.Level, json bool) (<-chan []byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return a.logs.subscribe(ctx, level, json), nil
}

// logTee is the root handler of the agent's logger. It passes each record
// to the handler the agent was given, at that handler's own level, and to
// every monitor whose level it reaches. It is enabled at a level if either
// side wants it, so a monitor at debug gets debug records while the main
// log stays at info.
//
// Monitor lines are formatted per record by a fresh slog handler on which
// the tee's With and WithGroup calls are replayed: the tee keeps no
// formatting state, needs no lock, and costs nothing while no monitor
// listens.
type logTee struct {
	main slog.Handler
	hub  *logHub
	ops  []teeOp // the WithAttrs and WithGroup calls that made this tee, in order
}

// teeOp is one WithGroup (group set) or WithAttrs call.
type teeOp struct {
	group string
	attrs []slog.Attr
}

var _ slog.Handler = (*logTee)(nil)

// newLogTee wraps main; monitors subscribe through the returned tee's hub,
// shared by every handler derived from it.
func newLogTee(main slog.Handler) *logTee {
	h := &logHub{buffer: monitorBuffer}
	h.min.Store(noMonitor)
	return &logTee{main: main, hub: h}
}

// Enabled reports whether the main handler or any monitor wants level.
func (t *logTee) Enabled(ctx context.Context, level slog.Level) bool {
	return int64(level) >= t.hub.min.Load() || t.main.Enabled(ctx, level)
}

// Handle hands r to the monitors that want it, then to the main handler
// if that is enabled at r's level. It returns the main handler's error.
func (t *logTee) Handle(ctx context.Context, r slog.Record) error {
	if int64(r.Level) >= t.hub.min.Load() {
		t.fanOut(ctx, r)
	}
	if !t.main.Enabled(ctx, r.Level) {
		return nil
	}
	return t.main.Handle(ctx, r)
}

// fanOut sends r to each monitor that wants its level, formatting it at
// most once per format.
func (t *logTee) fanOut(ctx context.Context, r slog.Record) {
	subs := t.hub.subs.Load()
	if subs == nil {
		return
	}
	var lines [2][]byte // text, JSON
	for _, m := range *subs {
		if r.Level < m.level {
			continue
		}
		i := 0
		if m.json {
			i = 1
		}
		if lines[i] == nil {
			lines[i] = t.format(ctx, r, m.json)
		}
		m.send(lines[i])
	}
}

// format renders r as the main log would if it were a slog TextHandler
// (or JSONHandler) with the same attributes and groups.
func (t *logTee) format(ctx context.Context, r slog.Record, json bool) []byte {
	var b bytes.Buffer
	h := newLineHandler(&b, json)
	for _, op := range t.ops {
		if op.group != "" {
			h = h.WithGroup(op.group)
		} else {
			h = h.WithAttrs(op.attrs)
		}
	}
	_ = h.Handle(ctx, r) // a bytes.Buffer does not fail
	return b.Bytes()
}

// WithAttrs returns a tee whose main handler and monitor lines carry as.
func (t *logTee) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return t
	}
	return t.derive(teeOp{attrs: as}, t.main.WithAttrs(as))
}

// WithGroup returns a tee whose main handler and monitor lines put what
// follows into the group name.
func (t *logTee) WithGroup(name string) slog.Handler {
	if name == "" {
		return t
	}
	return t.derive(teeOp{group: name}, t.main.WithGroup(name))
}

func (t *logTee) derive(op teeOp, main slog.Handler) *logTee {
	// Clip: siblings derived from t must not share a backing array.
	return &logTee{main: main, hub: t.hub, ops: append(slices.Clip(t.ops), op)}
}

// newLineHandler formats records as one line each on w, at every level:
// monitors filter levels themselves.
func newLineHandler(w *bytes.Buffer, json bool) slog.Handler {
	opts := &slog.HandlerOptions{Level: slog.Level(math.MinInt)}
	if json {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// noMonitor is logHub.min while no monitor listens: above every level.
const noMonitor = math.MaxInt64

// logHub holds the monitors of one logger and its derived loggers.
type logHub struct {
	buffer int // channel capacity of a new monitor (at least 2)

	mu   sync.Mutex                 // serialises changes to subs and min
	subs atomic.Pointer[[]*monitor] // replaced, never changed in place: read on every record
	min  atomic.Int64               // the lowest level a monitor wants; noMonitor if none
}

// subscribe adds a monitor until ctx ends, then removes it and closes its
// channel.
func (h *logHub) subscribe(ctx context.Context, level slog.Level, json bool) <-chan []byte {
	m := &monitor{level: level, json: json, ch: make(chan []byte, max(h.buffer, 2))}
	h.update(func(subs []*monitor) []*monitor { return append(subs, m) })
	context.AfterFunc(ctx, func() {
		h.update(func(subs []*monitor) []*monitor {
			return slices.DeleteFunc(subs, func(x *monitor) bool { return x == m })
		})
		m.close()
	})
	return m.ch
}

// update replaces the list of monitors by change(a copy of it).
func (h *logHub) update(change func([]*monitor) []*monitor) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var subs []*monitor
	if p := h.subs.Load(); p != nil {
		subs = slices.Clone(*p)
	}
	subs = change(subs)
	lowest := int64(noMonitor)
	for _, m := range subs {
		lowest = min(lowest, int64(m.level))
	}
	// The list before the level: a record let through by the new level
	// finds the new monitor.
	h.subs.Store(&subs)
	h.min.Store(lowest)
}

// monitor is one subscriber to the log.
type monitor struct {
	level slog.Level
	json  bool

	mu      sync.Mutex // serialises sends and close, so neither blocks
	ch      chan []byte
	dropped int // lines lost since the last one sent
	closed  bool
}

// send queues line without blocking, or counts it as dropped. After a
// loss it waits for room for both the notice and the line, so that the
// notice is never lost itself.
func (m *monitor) send(line []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if m.dropped > 0 {
		if cap(m.ch)-len(m.ch) < 2 {
			m.dropped++
			return
		}
		// Only this goroutine sends now, and there is room for two.
		m.ch <- dropNotice(m.dropped, m.json)
		m.dropped = 0
	}
	select {
	case m.ch <- line:
	default:
		m.dropped++
	}
}

func (m *monitor) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	close(m.ch)
}

// dropNotice is the line that tells a monitor it lost n lines, in its
// format, so that a JSON stream stays JSON.
func dropNotice(n int, json bool) []byte {
	var b bytes.Buffer
	r := slog.NewRecord(time.Now(), slog.LevelWarn, fmt.Sprintf("[dropped %d lines]", n), 0)
	_ = newLineHandler(&b, json).Handle(context.Background(), r)
	return b.Bytes()
}
