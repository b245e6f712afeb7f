package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a main log that tests read while loggers write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// received takes what ch holds now, without waiting: the tee sends before
// the logging call returns.
func received(ch <-chan []byte) []string {
	var out []string
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, string(l))
		default:
			return out
		}
	}
}

// take takes n lines from ch, which holds them already.
func take(t *testing.T, ch <-chan []byte, n int) []string {
	t.Helper()
	var out []string
	for range n {
		select {
		case l := <-ch:
			out = append(out, string(l))
		default:
			t.Fatalf("%d lines queued, want %d", len(out), n)
		}
	}
	return out
}

// waitClosed fails unless ch is closed (after whatever it still holds)
// within a few seconds.
func waitClosed(t *testing.T, ch <-chan []byte) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the monitor's channel was not closed")
		}
	}
}

func msgs(t *testing.T, lines []string) []string {
	t.Helper()
	var out []string
	for _, l := range lines {
		if !strings.HasSuffix(l, "\n") || strings.Count(l, "\n") != 1 {
			t.Errorf("not one line: %q", l)
		}
		var m struct{ Msg string }
		if strings.HasPrefix(l, "{") {
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
		} else {
			_, rest, _ := strings.Cut(l, " msg=")
			m.Msg, _, _ = strings.Cut(strings.TrimSpace(rest), " ")
			if q, err := strconv.QuotedPrefix(rest); err == nil {
				m.Msg, _ = strconv.Unquote(q)
			}
		}
		out = append(out, m.Msg)
	}
	return out
}

func TestTeeLevelsPerMonitorKeepTheMainLevel(t *testing.T) {
	main := &lockedBuffer{}
	tee := newLogTee(slog.NewTextHandler(main, &slog.HandlerOptions{Level: slog.LevelInfo}))
	log := slog.New(tee)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if log.Enabled(ctx, slog.LevelDebug) {
		t.Fatal("enabled at debug with no monitor")
	}
	debug := tee.hub.subscribe(ctx, slog.LevelDebug, false)
	warnCtx, warnCancel := context.WithCancel(ctx)
	warnJSON := tee.hub.subscribe(warnCtx, slog.LevelWarn, true)
	if !log.Enabled(ctx, slog.LevelDebug) {
		t.Fatal("not enabled at debug with a debug monitor")
	}
	log.Debug("d")
	log.Info("i")
	log.Warn("w")
	log.Error("e")

	if got, want := fmt.Sprint(msgs(t, received(debug))), "[d i w e]"; got != want {
		t.Errorf("debug monitor got %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(msgs(t, received(warnJSON))), "[w e]"; got != want {
		t.Errorf("warn JSON monitor got %s, want %s", got, want)
	}
	if got := main.String(); strings.Contains(got, "msg=d") || !strings.Contains(got, "msg=i") {
		t.Errorf("the main log lost its level:\n%s", got)
	}

	// The level follows the monitors that remain.
	warnCancel()
	waitClosed(t, warnJSON)
	if !log.Enabled(ctx, slog.LevelDebug) {
		t.Error("not enabled at debug while the debug monitor remains")
	}
	cancel()
	waitClosed(t, debug)
	if log.Enabled(ctx, slog.LevelDebug) {
		t.Error("still enabled at debug after the last monitor left")
	}
	log.Error("after") // nobody listens: must neither panic nor send
	if !strings.Contains(main.String(), "msg=after") {
		t.Error("the main log stopped after the monitors left")
	}
}

// TestTeeAttrsAndGroups checks that a monitor's lines are exactly what
// slog's own handler writes for the same logger, whether the monitor
// came before or after With and WithGroup.
func TestTeeAttrsAndGroups(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		t.Run(fmt.Sprint("json=", asJSON), func(t *testing.T) {
			main := &lockedBuffer{}
			opts := &slog.HandlerOptions{Level: slog.LevelDebug}
			var mainHandler slog.Handler = slog.NewTextHandler(main, opts)
			if asJSON {
				mainHandler = slog.NewJSONHandler(main, opts)
			}
			tee := newLogTee(mainHandler)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			before := tee.hub.subscribe(ctx, slog.LevelDebug, asJSON)

			root := slog.New(tee)
			node := root.With("node", "n1")
			comp := node.WithGroup("g").With("component", "x", slog.Group("sub", "a", 1))
			sibling := node.With("other", "y") // must not see comp's attrs
			after := tee.hub.subscribe(ctx, slog.LevelDebug, asJSON)

			comp.Info("m1", "k", "v")
			sibling.Debug("m2", "k", "line\nbreak")
			root.WithGroup("").With().Warn("m3")

			want := main.String()
			for name, ch := range map[string]<-chan []byte{"before": before, "after": after} {
				if got := strings.Join(received(ch), ""); got != want {
					t.Errorf("monitor subscribed %s With:\n%s\nwant what slog wrote:\n%s", name, got, want)
				}
			}
			for _, s := range []string{"n1", "component", "other", "line\\nbreak", "m3"} {
				if !strings.Contains(want, s) {
					t.Errorf("slog's line lacks %q: the test is wrong:\n%s", s, want)
				}
			}
			if strings.Count(want, "\n") != 3 || strings.Count(want, "other") != 1 {
				t.Errorf("lines:\n%s", want)
			}
		})
	}
}

func TestSlowMonitorDropsAndNeverBlocks(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		t.Run(fmt.Sprint("json=", asJSON), func(t *testing.T) {
			tee := newLogTee(slog.DiscardHandler)
			tee.hub.buffer = 4
			log := slog.New(tee)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			slow := tee.hub.subscribe(ctx, slog.LevelInfo, asJSON)
			fast := tee.hub.subscribe(ctx, slog.LevelInfo, asJSON)

			logged := make(chan struct{})
			var fastGot []string
			go func() {
				defer close(logged)
				for i := range 10 {
					log.Info(fmt.Sprint("line", i))
					fastGot = append(fastGot, received(fast)...) // fast keeps up
				}
			}()
			select {
			case <-logged:
			case <-time.After(10 * time.Second):
				t.Fatal("logging blocked on a monitor that does not read")
			}
			if n := len(fastGot); n != 10 {
				t.Errorf("the reading monitor got %d lines, want 10", n)
			}

			// Six lost. With room for one line only, the notice waits (and
			// that line is lost too).
			got := msgs(t, take(t, slow, 1))
			log.Info("lost")
			got = append(got, msgs(t, received(slow))...)
			log.Info("next")
			got = append(got, msgs(t, received(slow))...)
			want := "[line0 line1 line2 line3 [dropped 7 lines] next]"
			if fmt.Sprint(got) != want {
				t.Errorf("slow monitor got %s, want %s", fmt.Sprint(got), want)
			}
			log.Info("again")
			if got := msgs(t, received(slow)); fmt.Sprint(got) != "[again]" {
				t.Errorf("after catching up: %s, want no second notice", got)
			}
		})
	}
}

func TestDropNoticeIsAWarning(t *testing.T) {
	if l := string(dropNotice(3, false)); !strings.Contains(l, `level=WARN msg="[dropped 3 lines]"`) {
		t.Errorf("text notice %q", l)
	}
	var m map[string]any
	if err := json.Unmarshal(dropNotice(3, true), &m); err != nil || m["level"] != "WARN" || m["msg"] != "[dropped 3 lines]" {
		t.Errorf("JSON notice %v, %v", m, err)
	}
}

// TestTeeConcurrent logs from many goroutines while monitors come and
// go (run with -race).
func TestTeeConcurrent(t *testing.T) {
	main := &lockedBuffer{}
	log := slog.New(newLogTee(slog.NewTextHandler(main, nil))).With("node", "n")
	tee := log.Handler().(*logTee)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := log.With("g", g)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				l.Debug("tick", "i", i)
			}
		}()
	}
	for i := range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		ch := tee.hub.subscribe(ctx, slog.LevelDebug, i%2 == 0)
		deadline := time.After(10 * time.Second)
		select {
		case l := <-ch:
			if !bytes.Contains(l, []byte("tick")) || !bytes.Contains(l, []byte("node")) {
				t.Errorf("line %q", l)
			}
		case <-deadline:
			t.Fatal("no line")
		}
		cancel()
		waitClosed(t, ch)
	}
	close(stop)
	wg.Wait()
	if strings.Contains(main.String(), "tick") {
		t.Error("debug lines reached the main log at info")
	}
}

func TestAgentMonitor(t *testing.T) {
	main := &lockedBuffer{}
	cfg := DevConfig()
	cfg.NodeName = "mon-1"
	a, err := New(cfg, slog.New(slog.NewTextHandler(main, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := a.Monitor(ctx, slog.LevelDebug, false)
	if err != nil {
		t.Fatal(err)
	}
	a.log.Debug("hello", "k", 1)
	got := received(ch)
	if len(got) != 1 || !strings.Contains(got[0], "level=DEBUG msg=hello node=mon-1 k=1") {
		t.Errorf("monitor got %q", got)
	}
	if main.String() != "" {
		t.Errorf("the main log at info got %q", main.String())
	}
	cancel()
	waitClosed(t, ch)
	if _, err := a.Monitor(ctx, slog.LevelDebug, false); err == nil {
		t.Error("Monitor with an ended context succeeded")
	}
}
