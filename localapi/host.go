package localapi

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// GET /v1/agent/host: what the agent knows of its host, in the shape of
// Consul's (gopsutil's field names): Host, CPU, Memory, CollectionTime
// and Errors. It reads /proc on Linux; what it cannot read is left out
// and said in Errors, never guessed. Consul also reports the data
// directory's disk; Shoal does not.
func (s *server) agentHost(w http.ResponseWriter, r *http.Request, q *query, _ string) error {
	return s.writeJSON(w, q, 0, readHost(procRoot))
}

// procRoot is where /proc is read from (a test points it elsewhere).
var procRoot = "/proc"

// hostInfo is the body of /v1/agent/host.
type hostInfo struct {
	Host           map[string]any
	CPU            []map[string]any
	Memory         map[string]any `json:",omitempty"`
	CollectionTime int64
	Errors         []string
}

func readHost(proc string) *hostInfo {
	start := time.Now()
	h := &hostInfo{Host: map[string]any{"os": runtime.GOOS}, Errors: []string{}}
	fail := func(what string, err error) { h.Errors = append(h.Errors, fmt.Sprintf("%s: %v", what, err)) }
	if name, err := os.Hostname(); err == nil {
		h.Host["hostname"] = name
	} else {
		fail("hostname", err)
	}
	read := func(name string) ([]byte, bool) {
		b, err := os.ReadFile(filepath.Join(proc, name))
		if err != nil {
			fail(name, err)
			return nil, false
		}
		return b, true
	}
	if b, ok := read("sys/kernel/osrelease"); ok {
		h.Host["kernelVersion"] = strings.TrimSpace(string(b))
	}
	if b, ok := read("uptime"); ok {
		if up, err := parseUptime(b); err == nil {
			h.Host["uptime"] = up
			h.Host["bootTime"] = uint64(start.Unix()) - up
		} else {
			fail("uptime", err)
		}
	}
	h.CPU = []map[string]any{}
	if b, ok := read("cpuinfo"); ok {
		h.CPU = parseCPUInfo(b)
	}
	if b, ok := read("meminfo"); ok {
		if m, err := parseMeminfo(b); err == nil {
			h.Memory = m
		} else {
			fail("meminfo", err)
		}
	}
	h.CollectionTime = time.Since(start).Nanoseconds()
	return h
}

// parseUptime reads /proc/uptime: seconds since boot, then idle seconds.
func parseUptime(b []byte) (uint64, error) {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("empty")
	}
	secs, err := strconv.ParseFloat(f[0], 64)
	if err != nil || secs < 0 || secs > 1<<40 {
		return 0, fmt.Errorf("%q is not a number of seconds", f[0])
	}
	return uint64(secs), nil
}

// parseCPUInfo reads /proc/cpuinfo: one entry per logical CPU, with the
// fields Linux gives (x86 names them; other architectures give fewer).
func parseCPUInfo(b []byte) []map[string]any {
	out := []map[string]any{}
	var cur map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			n, err := strconv.Atoi(v)
			if err != nil {
				cur = nil
				continue
			}
			cur = map[string]any{"cpu": n}
			out = append(out, cur)
		case "vendor_id":
			if cur != nil {
				cur["vendorId"] = v
			}
		case "model name":
			if cur != nil {
				cur["modelName"] = v
			}
		case "cpu MHz":
			if f, err := strconv.ParseFloat(v, 64); err == nil && cur != nil {
				cur["mhz"] = f
			}
		case "cpu cores":
			if n, err := strconv.Atoi(v); err == nil && cur != nil {
				cur["cores"] = n
			}
		}
	}
	return out
}

// parseMeminfo reads /proc/meminfo (values in kB) into bytes: total,
// available, free, used (total less available) and usedPercent.
func parseMeminfo(b []byte) (map[string]any, error) {
	kb := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		if n, err := strconv.ParseUint(f[0], 10, 64); err == nil && n < 1<<50 {
			kb[k] = n
		}
	}
	total, ok := kb["MemTotal"]
	if !ok || total == 0 {
		return nil, fmt.Errorf("no MemTotal")
	}
	avail, ok := kb["MemAvailable"]
	if !ok {
		avail = kb["MemFree"] + kb["Buffers"] + kb["Cached"]
	}
	avail = min(avail, total)
	used := total - avail
	return map[string]any{
		"total":       total * 1024,
		"available":   avail * 1024,
		"free":        kb["MemFree"] * 1024,
		"used":        used * 1024,
		"usedPercent": 100 * float64(used) / float64(total),
	}, nil
}
