package api_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/shoal-sd/shoal/api"
)

func TestMonitorRequestAndLines(t *testing.T) {
	c, seen := canned(t, 200, nil, "time=t level=INFO msg=a\n\ntime=t level=WARN msg=b\nno newline at the end")
	var got []string
	err := c.Monitor(context.Background(), "debug", true, func(line []byte) error {
		got = append(got, string(line))
		return nil
	})
	if !errors.Is(err, api.ErrStreamEnded) {
		t.Errorf("err = %v, want ErrStreamEnded at the end of the answer", err)
	}
	want := []string{"time=t level=INFO msg=a", "", "time=t level=WARN msg=b", "no newline at the end"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
	r := only(t, seen)
	if r.Method != "GET" || r.Path != "/v1/agent/monitor" || r.Query != "logjson=true&loglevel=debug" {
		t.Errorf("request %+v", r)
	}

	// Defaults send no parameter: the agent's default level, text.
	if err := c.Monitor(context.Background(), "", false, func([]byte) error { return nil }); !errors.Is(err, api.ErrStreamEnded) {
		t.Errorf("err = %v", err)
	}
	if r := only(t, seen); r.Query != "" {
		t.Errorf("query %q, want none", r.Query)
	}
}

func TestMonitorStopsAtFnError(t *testing.T) {
	c, _ := canned(t, 200, nil, "one\ntwo\n")
	stop := errors.New("enough")
	n := 0
	err := c.Monitor(context.Background(), "", false, func([]byte) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("err = %v after %d lines, want fn's error after 1", err, n)
	}
}

func TestMonitorRefused(t *testing.T) {
	c, _ := canned(t, 400, nil, `loglevel: "loud" is not one of debug, info, warn, error`)
	err := c.Monitor(context.Background(), "loud", false, func([]byte) error {
		t.Error("fn called on a refused request")
		return nil
	})
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != 400 || !strings.Contains(se.Body, "loglevel") {
		t.Errorf("err = %v, want the 400", err)
	}
	if errors.Is(err, api.ErrStreamEnded) {
		t.Error("a refusal counts as a stream that ended")
	}
}

func TestMonitorUnreachable(t *testing.T) {
	c := &api.Client{Addr: closedAddr(t)}
	err := c.Monitor(context.Background(), "", false, func([]byte) error { return nil })
	if !errors.Is(err, api.ErrAgentUnreachable) || errors.Is(err, api.ErrStreamEnded) {
		t.Errorf("err = %v, want ErrAgentUnreachable only", err)
	}
}

func TestMonitorLineTooLong(t *testing.T) {
	c, _ := canned(t, 200, nil, "short\n"+strings.Repeat("x", 1<<20+1)+"\n")
	n := 0
	err := c.Monitor(context.Background(), "", false, func([]byte) error { n++; return nil })
	if err == nil || !strings.Contains(err.Error(), "longer than") || n != 1 {
		t.Errorf("err = %v after %d lines", err, n)
	}
}
