package agent_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/shoal-sd/shoal/internal/testutil"
)

// scrape fetches an agent's Prometheus metrics and returns the value of
// each sample line, keyed by name and labels as exposed.
func scrape(t *testing.T, n *testutil.Node) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.Agent.HTTPAddr() + "/v1/agent/metrics?format=prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d %s", resp.StatusCode, body)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func TestPrometheusMetrics(t *testing.T) {
	c := testutil.NewCluster(t, 3)
	if err := c.Node("node-2").Agent.RegisterService(web("web-1", 8080), nil); err != nil {
		t.Fatal(err)
	}
	seenBy(t, c, "node-2/web-1")
	n0 := c.Node("node-0")
	if resp, err := http.Get("http://" + n0.Agent.HTTPAddr() + "/v1/health/service/web"); err == nil {
		resp.Body.Close()
	}
	testutil.WaitFor(t, converge, func() error {
		m := scrape(t, n0)
		want := map[string]float64{
			`shoal_members{state="alive"}`:       3,
			`shoal_members{state="failed"}`:      0,
			`shoal_catalog_instances_served`:     1,
			`shoal_catalog_services`:             1,
			`shoal_local_services`:               0,
			`shoal_catalog_entries{kind="live"}`: 1,
			`shoal_api_request_duration_seconds_count{method="GET",route="health/service/"}`: 1,
		}
		for k, v := range want {
			if m[k] != v {
				return fmt.Errorf("%s = %v, want %v", k, m[k], v)
			}
		}
		for _, k := range []string{"shoal_gossip_bytes_received_total", "shoal_gossip_bytes_sent_total", "go_goroutines"} {
			if m[k] <= 0 {
				return fmt.Errorf("%s = %v, want > 0", k, m[k])
			}
		}
		// node-2's registration came along its tree, or in a delta.
		if got := m["shoal_gossip_received_total"] + m["shoal_antientropy_entries_received_total"]; got <= 0 {
			return fmt.Errorf("no write received by tree or delta")
		}
		for _, k := range []string{"shoal_catalog_refused_future_epoch_total", "shoal_catalog_refused_below_watermark_total", "shoal_gossip_duplicates_total"} {
			if _, ok := m[k]; !ok {
				return fmt.Errorf("%s not exported", k)
			}
		}
		return nil
	})
	resp, err := http.Get("http://" + n0.Agent.HTTPAddr() + "/v1/agent/metrics?format=json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("format=json: %d, want 400", resp.StatusCode)
	}
}
