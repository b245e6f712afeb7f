package agent_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// One client cannot hold more than limits.http_max_conns_per_client
// connections, and no more than limits.http_max_blocking blocking queries
// and streams wait at once; past either, 429 at once, and every other
// request is still served.
func TestHTTPLimits(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	c.Configure = func(cfg *agent.Config) { cfg.MaxConnsPerClient, cfg.MaxBlocking = 6, 3 }
	n := c.Start("node-0", 0)
	addr := n.Agent.HTTPAddr()
	cl := consulClient(t, n)
	_, meta, err := cl.Catalog().Services(nil)
	if err != nil {
		t.Fatal(err)
	}

	// Three blocking queries wait (each on a connection of its own).
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for range 3 {
		go func() {
			wcl := consulClient(t, n)
			index := meta.LastIndex
			for ctx.Err() == nil {
				q := (&consul.QueryOptions{WaitIndex: index, WaitTime: time.Minute}).WithContext(ctx)
				if _, m, err := wcl.Catalog().Services(q); err == nil {
					index = m.LastIndex
				}
			}
		}()
	}
	// The fourth is refused at once; reads that do not wait are served.
	testutil.WaitFor(t, converge, func() error {
		_, meta, err := cl.Catalog().Services(nil)
		if err != nil {
			return err
		}
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/v1/catalog/services?index=%d&wait=2s", addr, meta.LastIndex), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			return fmt.Errorf("fourth blocking query: %d", resp.StatusCode)
		}
		return nil
	})
	if _, _, err := cl.Catalog().Services(nil); err != nil {
		t.Fatalf("a plain read past the blocking cap: %v", err)
	}

	// Connections: the three waiting, the default client's kept-alive ones;
	// idle ones fill the rest, and the next is told 429 and closed.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	refused := false
	for range 10 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		line, _ := bufio.NewReader(conn).ReadString('\n')
		if strings.HasPrefix(line, "HTTP/1.1 429") {
			refused = true
			break
		}
	}
	if !refused {
		t.Fatal("no connection was refused past the per-client cap")
	}
	// Closing them frees the cap.
	cancel()
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	http.DefaultClient.CloseIdleConnections()
	testutil.WaitFor(t, converge, func() error {
		_, _, err := consulClient(t, n).Catalog().Services(nil)
		return err
	})
}

// A client that opens a thousand blocking queries and a thousand watch
// streams holds at most limits.http_max_conns_per_client (200) of them;
// the rest are refused at once, the agent's memory stays bounded, and a
// client from another address is served meanwhile.
func TestThousandWaitersFromOneClient(t *testing.T) {
	c := testutil.NewEmptyCluster(t)
	n := c.Start("node-0", 0)
	addr := n.Agent.HTTPAddr()
	_, meta, err := consulClient(t, n).Catalog().Services(nil)
	if err != nil {
		t.Fatal(err)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var held, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 2000 {
		target := fmt.Sprintf("http://%s/v1/catalog/services?index=%d&wait=1m", addr, meta.LastIndex)
		if i%2 == 1 {
			target = fmt.Sprintf("http://%s/v1/shoal/watch/service/web", addr)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				refused.Add(1) // closed by the cap before an answer was read
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				refused.Add(1)
				return
			}
			held.Add(1)
			_, _ = io.Copy(io.Discard, resp.Body) // until the test ends
		}()
	}
	// Every request is refused or held open (a blocking query's answer
	// has not come, a stream's headers have): at most the cap held.
	testutil.WaitFor(t, converge, func() error {
		if r := refused.Load(); r < 2000-agent.DefaultMaxConnsPerClient {
			return fmt.Errorf("%d held or pending, %d refused", 2000-r, r)
		}
		return nil
	})
	// Another client (another loopback address) is served at once.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	start := time.Now()
	resp, err := other.Get("http://" + addr + "/v1/health/service/web")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || time.Since(start) > 5*time.Second {
		t.Fatalf("another client: %d after %v", resp.StatusCode, time.Since(start))
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	// 200 waiting requests, the 1,800 refused gone: a few MB, not the
	// hundreds two thousand held streams with their buffers would take.
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 64<<20 {
		t.Errorf("heap grew by %d MiB", grew>>20)
	}
	t.Logf("%d streams and queries open (%d streams answered), %d refused, heap %d → %d MiB",
		2000-refused.Load(), held.Load(), refused.Load(), before.HeapInuse>>20, after.HeapInuse>>20)
	cancel()
	wg.Wait()
}
