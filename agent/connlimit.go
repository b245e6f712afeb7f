package agent

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// DefaultMaxConnsPerClient is Consul's limits.http_max_conns_per_client.
const DefaultMaxConnsPerClient = 200

// DefaultMaxBlocking is how many blocking queries and streams may wait at
// once (each holds a goroutine and a connection: about 10 KB).
const DefaultMaxBlocking = 4096

// connLimit caps the HTTP connections one client address holds at once,
// as Consul's http_max_conns_per_client does: blocking queries, watch
// streams and log streams each hold a connection, so one client cannot
// take them all. A connection past the cap is answered 429 and closed.
type connLimit struct {
	max int

	mu  sync.Mutex
	per map[string]int
	ips map[net.Conn]string
}

func newConnLimit(max int) *connLimit {
	return &connLimit{max: max, per: make(map[string]int), ips: make(map[net.Conn]string)}
}

// tooMany is written on a connection refused by the cap.
const tooMany = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 66\r\n\r\nlimits.http_max_conns_per_client: too many connections from here\n"

// connState is the http.Server's ConnState hook.
func (l *connLimit) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		ip := clientIP(c)
		l.mu.Lock()
		over := l.max > 0 && l.per[ip] >= l.max
		if !over {
			l.per[ip]++
			l.ips[c] = ip
		}
		l.mu.Unlock()
		if over {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(tooMany))
			_ = c.Close()
		}
	case http.StateClosed, http.StateHijacked:
		l.mu.Lock()
		if ip, ok := l.ips[c]; ok {
			delete(l.ips, c)
			if l.per[ip]--; l.per[ip] <= 0 {
				delete(l.per, ip)
			}
		}
		l.mu.Unlock()
	}
}

func clientIP(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}
