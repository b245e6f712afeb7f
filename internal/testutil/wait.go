package testutil

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// WaitFor polls try every 10ms until it returns nil, and fails the test
// with try's last error once maxWait has passed.
func WaitFor(t testing.TB, maxWait time.Duration, try func() error) {
	t.Helper()
	if err := Poll(maxWait, try); err != nil {
		t.Fatalf("gave up after %s: %v", maxWait, err)
	}
}

// Poll calls try every 10ms until it returns nil or maxWait passes; it
// returns try's last error.
func Poll(maxWait time.Duration, try func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), maxWait)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := try()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}

// Logger returns a logger writing to t.Log at the level in SHOAL_TEST_LOG
// (debug, info, warn, error; default warn). It goes quiet once the test
// has finished, so late lines from stopping goroutines cannot panic.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if s := os.Getenv("SHOAL_TEST_LOG"); s != "" {
		_ = level.UnmarshalText([]byte(s))
	}
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type tWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(p[:len(p)-1]))
	}
	return len(p), nil
}

// FreeAddr returns a loopback TCP address that was free a moment ago. Its
// port lies below the kernel's ephemeral range, so no socket bound to port
// 0 meanwhile (a gossip listener, say) can be handed the same port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				low = n
			}
		}
	}
	for try := 0; try < 100; try++ {
		port := 10000 + rand.IntN(low-10000)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	t.Fatalf("no free loopback port below %d", low)
	return ""
}
