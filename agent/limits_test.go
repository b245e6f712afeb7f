package agent_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
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
