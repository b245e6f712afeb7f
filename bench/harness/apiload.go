package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoal-sd/shoal/api"
)

// The local API load.
const (
	// apiService is the service every request asks for.
	apiService = "web"
	// apiVerifyEvery: each connection decodes and counts every answer of
	// this many (its first included); the others are checked by status
	// and length only, so that the load generator spends its CPU on
	// load rather than on JSON.
	apiVerifyEvery = 50
	// apiLengthSlack is how far an answer's length may stray from the
	// first verified one's (instance fields such as ShoalLastHeardMs vary
	// in length).
	apiLengthSlack = 0.25
)

// measureAPI starts one `shoal agent` (gossip on ports.Gossip, HTTP on
// ports.API) holding o.APIInstances instances of "web", 3 tags and 1 meta
// key each, and loads GET /v1/health/service/web from o.APIConns
// connections for o.APIDuration after a short warm-up. Every answer must
// be a 200 holding every instance; any other is an error.
func measureAPI(ctx context.Context, o *Options, bin string, ports portPlan) (_ []Result, err error) {
	if o.APIConns <= 0 || o.APIDuration <= 0 || o.APIInstances <= 0 {
		return nil, fmt.Errorf("api load: APIConns %d, APIDuration %v and APIInstances %d must be positive",
			o.APIConns, o.APIDuration, o.APIInstances)
	}
	log := o.logger().With("scenario", "api")
	p, err := startShoalProc(ctx, o, bin, "api-0", ports.Gossip, ports.API, nil)
	if err != nil {
		return nil, fmt.Errorf("api load: %w", err)
	}
	defer func() {
		sctx, cancel := withTimeout(context.WithoutCancel(ctx), o.Timeout)
		defer cancel()
		err = errors.Join(err, p.Stop(sctx))
	}()

	for i := range o.APIInstances {
		rctx, cancel := withTimeout(ctx, o.Timeout)
		err := p.Client.Register(rctx, &api.AgentServiceRegistration{
			ID:      apiService + "-" + strconv.Itoa(i),
			Name:    apiService,
			Tags:    []string{"v1", "zone-" + strconv.Itoa(i%3), "http"},
			Port:    8000 + i%50000,
			Address: memNodeIP(i),
			Meta:    map[string]string{"version": "1.2"},
		})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("api load: register instance %d: %w", i, err)
		}
	}

	url := "http://" + p.HTTPAddr + "/v1/health/service/" + apiService
	warm := min(max(o.APIDuration/10, 100*time.Millisecond), time.Second)
	log.Info("loading the API", "url", url, "instances", o.APIInstances, "conns", o.APIConns,
		"warmup", warm, "duration", o.APIDuration)
	st, err := loadAPI(ctx, url, o.APIInstances, o.APIConns, warm, o.APIDuration)
	if err != nil {
		return nil, fmt.Errorf("api load: %w", err)
	}
	if len(st.lat) == 0 {
		return nil, errors.New("api load: no request completed in the measured window")
	}
	rate := float64(len(st.lat)) / st.window.Seconds()
	p50, p99 := ms(percentile(st.lat, 0.50)), ms(percentile(st.lat, 0.99))
	log.Info("API load done", "requests", len(st.lat), "req_per_s", int(rate), "p50_ms", p50, "p99_ms", p99,
		"answer_bytes", st.bodyLen)

	note := fmt.Sprintf("GET /v1/health/service/%s (%d instances, %d B answers) from %d keep-alive connections "+
		"of a Go client in the harness process, for %v after a %v warm-up; one agent process",
		apiService, o.APIInstances, st.bodyLen, o.APIConns, st.window.Round(time.Millisecond), warm)
	res := func(stat string, v float64, unit string) Result {
		return Result{Scenario: "api", System: "shoal", Mode: ModeProcesses, N: o.APIInstances, Stat: stat,
			Value: v, Unit: unit, Samples: len(st.lat), Note: note}
	}
	return []Result{res("req/s", rate, "req/s"), res("p50", p50, "ms"), res("p99", p99, "ms")}, nil
}

// apiStats is what a load run measured.
type apiStats struct {
	lat     []time.Duration // of every request started in the window
	window  time.Duration   // from the window's start to the last of those requests' end
	bodyLen int             // length of the first verified answer
}

// loadAPI sends GET url from conns connections, each one request at a
// time, for warm and then for d; it records the latency of every request
// started after the warm-up. want is the number of entries every answer
// must hold.
func loadAPI(ctx context.Context, url string, want, conns int, warm, d time.Duration) (*apiStats, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	start := time.Now()
	measureFrom, measureTo := start.Add(warm), start.Add(warm+d)
	var (
		mu      sync.Mutex
		all     []time.Duration
		lastEnd time.Time
		refLen  atomic.Int64 // length of the first verified answer
		wg      sync.WaitGroup
	)
	for w := range conns {
		wg.Go(func() {
			tr := &http.Transport{
				Proxy:               nil,
				DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
				MaxIdleConns:        1,
				MaxIdleConnsPerHost: 1,
				MaxConnsPerHost:     1,
				IdleConnTimeout:     time.Minute,
				DisableCompression:  true, // as curl and wrk: no gzip asked for
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			lat := make([]time.Duration, 0, 4096)
			var body bytes.Buffer
			var myEnd time.Time
			for n := 0; ctx.Err() == nil; n++ {
				t0 := time.Now()
				if !t0.Before(measureTo) {
					break
				}
				if err := apiGet(ctx, client, url, &body); err != nil {
					cancel(fmt.Errorf("connection %d, request %d: %w", w, n, err))
					return
				}
				t1 := time.Now()
				if n%apiVerifyEvery == 0 {
					got, err := countEntries(body.Bytes())
					if err != nil || got != want {
						bad := fmt.Errorf("connection %d, request %d: answer holds %d instances, want %d", w, n, got, want)
						if err != nil {
							bad = fmt.Errorf("connection %d, request %d: %w", w, n, err)
						}
						cancel(bad)
						return
					}
					refLen.CompareAndSwap(0, int64(body.Len()))
				} else if ref := int(refLen.Load()); ref > 0 && absInt(body.Len()-ref) > int(apiLengthSlack*float64(ref)) {
					cancel(fmt.Errorf("connection %d, request %d: answer of %d bytes, verified answers had %d", w, n, body.Len(), ref))
					return
				}
				if !t0.Before(measureFrom) {
					lat = append(lat, t1.Sub(t0))
					myEnd = t1
				}
			}
			mu.Lock()
			all = append(all, lat...)
			if myEnd.After(lastEnd) {
				lastEnd = myEnd
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return &apiStats{lat: all, window: lastEnd.Sub(measureFrom), bodyLen: int(refLen.Load())}, nil
}

// apiGet sends one GET and reads the answer into body; anything but a
// 200 is an error.
func apiGet(ctx context.Context, client *http.Client, url string, body *bytes.Buffer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body.Reset()
	if _, err := body.ReadFrom(resp.Body); err != nil {
		return fmt.Errorf("GET %s: read answer: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(body.Bytes()[:min(body.Len(), 200)]))
	}
	return nil
}

// countEntries counts the elements of a JSON array without decoding them.
func countEntries(b []byte) (int, error) {
	var entries []json.RawMessage
	if err := json.Unmarshal(b, &entries); err != nil {
		return 0, fmt.Errorf("decode answer: %w", err)
	}
	return len(entries), nil
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
