package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// fakeCoordinates serves /v1/agent/self (node-a) and /v1/coordinate/nodes
// with the given entries.
func fakeCoordinates(t *testing.T, entries []api.CoordinateEntry) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v any
		switch r.URL.Path {
		case "/v1/agent/self":
			v = api.Self{Config: api.SelfConfig{NodeName: "node-a"}}
		case "/v1/coordinate/nodes":
			v = entries
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Consul-Index", "7")
		json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func vec(xs ...float64) []float64 { return append(xs, make([]float64, 8-len(xs))...) }

func TestRTTCommand(t *testing.T) {
	clearEnv(t)
	addr := fakeCoordinates(t, []api.CoordinateEntry{
		{Node: "node-a", Coord: &api.Coordinate{Vec: vec(0, 0), Error: 0.2}},
		// 3-4-5: 5 ms apart, plus heights of 0.5 ms and 0.25 ms.
		{Node: "node-b", Coord: &api.Coordinate{Vec: vec(0.003, 0.004), Error: 0.2, Height: 0.0005}},
		{Node: "node-c", Coord: &api.Coordinate{Vec: vec(0.003, 0), Error: 0.2, Height: 0.00025}},
		{Node: "node-d", Coord: &api.Coordinate{Vec: []float64{0.001}, Error: 0.2}},
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"node-b"}, "Estimated node-b <-> node-a rtt: 5.500 ms (using LAN coordinates)\n"},
		{[]string{"node-a", "node-b"}, "Estimated node-a <-> node-b rtt: 5.500 ms (using LAN coordinates)\n"},
		{[]string{"node-b", "node-c"}, "Estimated node-b <-> node-c rtt: 4.750 ms (using LAN coordinates)\n"},
		{[]string{"node-c", "node-c"}, "Estimated node-c <-> node-c rtt: 0.000 ms (using LAN coordinates)\n"},
	} {
		got := mustShoal(t, append([]string{"--http-addr", addr, "rtt"}, tc.args...)...)
		if got != tc.want {
			t.Errorf("shoal rtt %v:\n got %q\nwant %q", tc.args, got, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing node name"},
		{[]string{"a", "b", "c"}, `unexpected argument "c"`},
		{[]string{"node-z"}, `no coordinate for node "node-z"`},
		{[]string{"node-a", "node-d"}, "different dimensions"},
	} {
		got := failShoal(t, append([]string{"--http-addr", addr, "rtt"}, tc.args...)...)
		if !strings.Contains(got, tc.want) {
			t.Errorf("shoal rtt %v: %q, want it to say %q", tc.args, got, tc.want)
		}
	}
	if got := failShoal(t, "--http-addr", testutil.FreeAddr(t), "rtt", "node-a", "node-b"); !strings.Contains(got, "unreachable") {
		t.Errorf("no agent: %q", got)
	}
}
