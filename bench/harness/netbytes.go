package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Gossip bytes are counted by the kernel, the same way for every system:
// an nftables table of this process's own, with one chain on the output
// hook. On loopback every packet passes the output hook exactly once (and
// the input hook once more, which is not counted), before any
// fragmentation, so a counter there sees each datagram or TCP segment
// once. Counted bytes are whole packets as the kernel holds them: IP and
// UDP or TCP headers included, TCP handshakes, acknowledgements and
// teardown included. That overhead is the same for Shoal and Serf, both
// memberlist underneath, so the comparison is fair; it is not the payload
// alone.
//
// A watched range of ports lo…hi is one cluster's gossip listeners, and is
// counted as
//
//   - UDP with destination port in range: memberlist sends packets from
//     its listener to a listener, so both ports are in range;
//   - TCP with destination port in range: a push/pull or a reliable
//     message, dialed from an ephemeral port to a listener;
//   - TCP with source port in range and destination port out of it: the
//     listener's answers back to the ephemeral port.
//
// Ranges must lie below the kernel's ephemeral ports (32768 and up by
// default) so that the ephemeral end of a connection never falls inside
// one. Counting needs root (CAP_NET_ADMIN) and the nft command.

// bytesTablePrefix starts the name of every table a byteCounter makes;
// tables of processes that died without closing theirs are removed.
const bytesTablePrefix = "shoalbench_"

var bytesTableSeq atomic.Int64

// byteCounter counts gossip bytes per port range in an nftables table.
type byteCounter struct {
	nft   string
	table string

	mu     sync.Mutex
	next   int
	closed bool
}

// byteWatch is one watched port range; Read sums its counters.
type byteWatch struct {
	id     int
	lo, hi int
}

func (w byteWatch) counters() []string {
	return []string{
		fmt.Sprintf("w%d_udp", w.id),
		fmt.Sprintf("w%d_tcp_in", w.id),
		fmt.Sprintf("w%d_tcp_out", w.id),
	}
}

// newByteCounter creates this process's table and its output chain. It
// fails, with a reason, when nft is missing or we may not use it.
func newByteCounter(ctx context.Context) (*byteCounter, error) {
	nft, err := findNft()
	if err != nil {
		return nil, fmt.Errorf("counting gossip bytes needs nftables: %w", err)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("counting gossip bytes needs root: nftables counters are not open to other users")
	}
	b := &byteCounter{
		nft:   nft,
		table: fmt.Sprintf("%s%d_%d", bytesTablePrefix, os.Getpid(), bytesTableSeq.Add(1)),
	}
	b.removeStale(ctx)
	// "add" then "delete" clears a table left with this name (a reused
	// pid), and the whole script is applied atomically.
	script := fmt.Sprintf(`add table inet %[1]s
delete table inet %[1]s
add table inet %[1]s
add chain inet %[1]s out { type filter hook output priority 0; policy accept; }
`, b.table)
	if _, err := b.run(ctx, script); err != nil {
		return nil, fmt.Errorf("creating nftables table %s: %w", b.table, err)
	}
	return b, nil
}

// findNft finds the nft command, also where sbin is not on $PATH.
func findNft() (string, error) {
	p, err := exec.LookPath("nft")
	if err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nft", "/sbin/nft"} {
		if fi, serr := os.Stat(p); serr == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no nft command (Debian package nftables): %w", err)
}

// run runs nft with args, or with script on standard input when args is
// empty, and returns its output.
func (b *byteCounter) run(ctx context.Context, script string, args ...string) ([]byte, error) {
	if len(args) == 0 {
		args = []string{"-f", "-"}
	}
	cmd := exec.CommandContext(ctx, b.nft, args...)
	if script != "" {
		cmd.Stdin = strings.NewReader(script)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("nft %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// removeStale deletes tables of ours whose process is gone. Failing to is
// harmless: they only count.
func (b *byteCounter) removeStale(ctx context.Context) {
	out, err := b.run(ctx, "", "-j", "list", "tables", "inet")
	if err != nil {
		return
	}
	var doc nftDoc
	if json.Unmarshal(out, &doc) != nil {
		return
	}
	for _, obj := range doc.Nftables {
		if obj.Table == nil || !strings.HasPrefix(obj.Table.Name, bytesTablePrefix) {
			continue
		}
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(obj.Table.Name, bytesTablePrefix), "_")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			_, _ = b.run(ctx, "", "delete", "table", "inet", obj.Table.Name)
		}
	}
}

// Watch starts counting the gossip traffic of ports lo…hi (inclusive) and
// returns the handle to Read it by. Counting starts at zero.
func (b *byteCounter) Watch(ctx context.Context, lo, hi int) (byteWatch, error) {
	if lo < 1 || hi > 65535 || lo > hi {
		return byteWatch{}, fmt.Errorf("watching gossip bytes: bad port range %d-%d", lo, hi)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return byteWatch{}, errors.New("watching gossip bytes: counter closed")
	}
	b.next++
	w := byteWatch{id: b.next, lo: lo, hi: hi}
	names := w.counters()
	r := fmt.Sprintf("%d-%d", lo, hi)
	var s strings.Builder
	for _, name := range names {
		fmt.Fprintf(&s, "add counter inet %s %s\n", b.table, name)
	}
	fmt.Fprintf(&s, "add rule inet %s out udp dport %s counter name %s\n", b.table, r, names[0])
	fmt.Fprintf(&s, "add rule inet %s out tcp dport %s counter name %s\n", b.table, r, names[1])
	fmt.Fprintf(&s, "add rule inet %s out tcp sport %s tcp dport != %s counter name %s\n", b.table, r, r, names[2])
	if _, err := b.run(ctx, s.String()); err != nil {
		return byteWatch{}, fmt.Errorf("watching gossip bytes of ports %s: %w", r, err)
	}
	return w, nil
}

// Read returns the bytes counted for w since Watch: whole packets, IP
// headers included.
func (b *byteCounter) Read(ctx context.Context, w byteWatch) (uint64, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return 0, errors.New("reading gossip bytes: counter closed")
	}
	out, err := b.run(ctx, "", "-j", "list", "counters", "table", "inet", b.table)
	if err != nil {
		return 0, fmt.Errorf("reading gossip bytes: %w", err)
	}
	got, err := parseNftCounters(out)
	if err != nil {
		return 0, fmt.Errorf("reading gossip bytes: %w", err)
	}
	var sum uint64
	for _, name := range w.counters() {
		v, ok := got[name]
		if !ok {
			return 0, fmt.Errorf("reading gossip bytes of ports %d-%d: no counter %s in table %s", w.lo, w.hi, name, b.table)
		}
		sum += v
	}
	return sum, nil
}

// nftDoc is the part of `nft -j` output read here.
type nftDoc struct {
	Nftables []struct {
		Table *struct {
			Name string `json:"name"`
		} `json:"table"`
		Counter *struct {
			Name  string `json:"name"`
			Bytes uint64 `json:"bytes"`
		} `json:"counter"`
	} `json:"nftables"`
}

// parseNftCounters maps named counters to their bytes.
func parseNftCounters(out []byte) (map[string]uint64, error) {
	var doc nftDoc
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("parsing nft output: %w", err)
	}
	got := make(map[string]uint64)
	for _, obj := range doc.Nftables {
		if obj.Counter != nil && obj.Counter.Name != "" {
			got[obj.Counter.Name] = obj.Counter.Bytes
		}
	}
	return got, nil
}

// Close deletes the table. Closing again does nothing.
func (b *byteCounter) Close(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if _, err := b.run(ctx, "", "delete", "table", "inet", b.table); err != nil {
		return fmt.Errorf("removing nftables table %s: %w", b.table, err)
	}
	return nil
}
