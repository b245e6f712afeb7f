package agent

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// newMemberlistLogger routes memberlist's standard-library log lines
// ("[WARN] memberlist: ...") into slog at the matching level.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(&levelWriter{l: l.With("component", "memberlist")}, "", 0)
}

type levelWriter struct{ l *slog.Logger }

func (w *levelWriter) Write(p []byte) (int, error) {
	msg := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, lv := range []struct {
		prefix string
		level  slog.Level
	}{{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}} {
		if bytes.HasPrefix(msg, []byte(lv.prefix)) {
			level = lv.level
			msg = bytes.TrimSpace(msg[len(lv.prefix):])
			break
		}
	}
	msg = bytes.TrimPrefix(msg, []byte("memberlist: "))
	w.l.Log(context.Background(), level, string(msg))
	return len(p), nil
}
