package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sd/shoal/api"
	"github.com/shoal-sd/shoal/internal/testutil"
)

const (
	// hosts is the cluster's size.
	hosts = 3
	// waitMax bounds every wait for the cluster to reach a state. CI runs
	// this on two cores beside the other packages, and a failure takes
	// memberlist several probe rounds and a suspicion timeout to declare.
	waitMax = 90 * time.Second
	// pollEvery spaces the attempts of a wait: each one starts processes
	// in the namespaces, and Poll's 10 ms tick would keep a core busy
	// while the agents' failure detectors need theirs.
	pollEvery = 200 * time.Millisecond
)

// cluster drives scripts/netns-cluster.sh for one test, with namespace
// names and a state directory of its own.
type cluster struct {
	t      *testing.T
	script string
	prefix string // namespaces are prefix-1..N and prefix-hub
	state  string
	env    []string
}

// newCluster skips the test unless network namespaces can be made here,
// and returns a cluster whose names no leftover of another run can share.
// Nothing is started yet.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("network namespaces are Linux only")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (.ci/run runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip from iproute2 to create network namespaces")
	}
	c := &cluster{t: t, prefix: fmt.Sprintf("shoal-e2e-%06x", rand.IntN(1<<24))}
	probe := c.prefix + "-probe"
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here: ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command("ip", "netns", "del", probe).CombinedOutput(); err != nil {
		t.Fatalf("ip netns del %s: %v: %s", probe, err, out)
	}

	script, err := filepath.Abs("../scripts/netns-cluster.sh")
	if err != nil {
		t.Fatal(err)
	}
	c.script = script
	c.state = filepath.Join(t.TempDir(), "state")
	// The script's and the agents' settings come from here alone, not
	// from whatever SHOAL_* the caller's environment holds.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHOAL_") && !strings.HasPrefix(kv, "CONSUL_HTTP_ADDR=") {
			c.env = append(c.env, kv)
		}
	}
	c.env = append(c.env,
		"SHOAL_NETNS_PREFIX="+c.prefix,
		"SHOAL_NETNS_STATE="+c.state,
		"SHOAL_NETNS_WAIT=90",
		// The agents' own setting, passed through by the script: rejoin
		// failed members every second, so that a healed link heals the
		// cluster at once.
		"SHOAL_RECONNECT_INTERVAL=1s",
		// Each host's data dir is a small tmpfs, to fill (full disk).
		"SHOAL_NETNS_DATA_SIZE=1m",
	)
	return c
}

// run runs the script with args and returns its output.
func (c *cluster) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{c.script}, args...)...)
	cmd.Env = c.env
	// A process still holding the output pipe when the script is killed
	// must not hold up Wait.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (killed after %s)", err, timeout)
	}
	return string(out), err
}

// must runs the script, logs its output and fails the test if it fails.
func (c *cluster) must(timeout time.Duration, args ...string) string {
	c.t.Helper()
	start := time.Now()
	out, err := c.run(timeout, args...)
	c.t.Logf("netns-cluster.sh %s (%s):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		c.t.Fatalf("netns-cluster.sh %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// shoal runs the shoal command line inside host h's namespace (through
// `ip netns exec`), against the agent there, and returns its stdout.
func (c *cluster) shoal(h int, args ...string) (string, error) {
	out, err := c.run(30*time.Second, append([]string{"exec", strconv.Itoa(h), "shoal"}, args...)...)
	if err != nil {
		return "", fmt.Errorf("host-%d: shoal %s: %w: %s", h, strings.Join(args, " "), err, strings.TrimSpace(out))
	}
	return out, nil
}

// members is host h's view of the cluster, one "node status address" per
// member, sorted.
func (c *cluster) members(h int) (string, error) {
	out, err := c.shoal(h, "members", "--json")
	if err != nil {
		return "", err
	}
	var ms []api.AgentMember
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		return "", fmt.Errorf("host-%d: members --json: %w: %q", h, err, out)
	}
	view := make([]string, 0, len(ms))
	for _, m := range ms {
		view = append(view, fmt.Sprintf("%s %s %s:%d", m.Name, api.MemberStatusString(m.Status), m.Addr, m.Port))
	}
	slices.Sort(view)
	return strings.Join(view, ", "), nil
}

// instances is host h's answer for a service, whatever the instances'
// health: one "node id status" per instance, sorted.
func (c *cluster) instances(h int, service string) (string, error) {
	out, err := c.shoal(h, "services", service, "--json")
	if err != nil {
		return "", err
	}
	var es []api.ServiceEntry
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		return "", fmt.Errorf("host-%d: services %s --json: %w: %q", h, service, err, out)
	}
	view := make([]string, 0, len(es))
	for _, e := range es {
		if e.Node == nil || e.Service == nil {
			return "", fmt.Errorf("host-%d: services %s: an entry without node or service: %q", h, service, out)
		}
		view = append(view, fmt.Sprintf("%s %s %s", e.Node.Node, e.Service.ID, api.AggregatedStatus(e.Checks)))
	}
	slices.Sort(view)
	return strings.Join(view, ", "), nil
}

// waitFor polls try, at most every pollEvery, until it succeeds, and
// fails the test if waitMax passes first. It logs and returns how long
// the wait took.
func (c *cluster) waitFor(what string, try func() error) time.Duration {
	c.t.Helper()
	start := time.Now()
	var last time.Time
	var lastErr error
	err := testutil.Poll(waitMax, func() error {
		if !last.IsZero() && time.Since(last) < pollEvery {
			return lastErr
		}
		last = time.Now()
		lastErr = try()
		return lastErr
	})
	if err != nil {
		c.t.Fatalf("%s: gave up after %s: %v", what, waitMax, err)
	}
	took := time.Since(start)
	c.t.Logf("%s: after %s", what, took.Round(10*time.Millisecond))
	return took
}

// sees waits until every host in hs gives want for what view returns.
func (c *cluster) sees(what string, hs []int, view func(h int) (string, error), want string) time.Duration {
	c.t.Helper()
	return c.waitFor(what, func() error {
		for _, h := range hs {
			got, err := view(h)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("host-%d answers %q, want %q", h, got, want)
			}
		}
		return nil
	})
}

// namespaces lists the namespaces of this cluster's prefix, sorted.
func (c *cluster) namespaces() []string {
	c.t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		c.t.Fatalf("ip netns list: %v: %s", err, out)
	}
	var ours []string
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], c.prefix+"-") {
			ours = append(ours, f[0])
		}
	}
	slices.Sort(ours)
	return ours
}

// processes lists the running processes started from the cluster's
// binaries (zombies left for init to reap do not count).
func (c *cluster) processes() []string {
	c.t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		c.t.Fatal(err)
	}
	var ps []string
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !bytes.HasPrefix(cmdline, []byte(c.state+"/bin/")) {
			continue // gone, a zombie (empty cmdline) or not ours
		}
		ps = append(ps, d.Name()+" "+strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))))
	}
	return ps
}

// cleanup runs after the test: on failure it logs the end of every log
// the cluster wrote, then it takes the cluster down whatever happened.
func (c *cluster) cleanup() {
	if c.t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(c.state, "host-*", "*.log"))
		for _, l := range logs {
			b, err := os.ReadFile(l)
			if err != nil {
				continue
			}
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			lines = lines[max(0, len(lines)-40):]
			c.t.Logf("the end of %s:\n%s", l, strings.Join(lines, "\n"))
		}
	}
	out, err := c.run(2*time.Minute, "down")
	if err != nil {
		c.t.Errorf("cleanup: netns-cluster.sh down: %v\n%s", err, out)
	}
	if left := c.namespaces(); len(left) > 0 {
		c.t.Errorf("cleanup: namespaces left behind: %v", left)
	}
	if ps := c.processes(); len(ps) > 0 {
		c.t.Errorf("cleanup: processes left running: %q", ps)
	}
}

// watch follows a service on host h with `shoal watch --exec`, which runs
// at every change the agent sees (a blocking query, not a poll), and
// records each answer with the time it came. Stop kills the watcher.
type watch struct {
	log  string
	cmd  *exec.Cmd
	host int
}

func (c *cluster) watch(h int, service string) *watch {
	c.t.Helper()
	w := &watch{log: filepath.Join(c.t.TempDir(), fmt.Sprintf("watch-%d-%s.log", h, service)), host: h}
	// One line per answer: the time, then the answer's JSON.
	script := fmt.Sprintf(`{ date +%%s.%%N; tr -d '\n'; } | tr '\n' ' ' >> %s; echo >> %s`, w.log, w.log)
	w.cmd = exec.Command("ip", "netns", "exec", fmt.Sprintf("%s-%d", c.prefix, h), filepath.Join(c.state, "bin", "shoal"),
		"watch", service, "--exec", script)
	w.cmd.Env = c.env
	if err := w.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(w.stop)
	// It answers once at start.
	c.waitFor(fmt.Sprintf("host-%d watches %s", h, service), func() error {
		if len(w.answers()) == 0 {
			return fmt.Errorf("no answer yet in %s", w.log)
		}
		return nil
	})
	return w
}

func (w *watch) stop() {
	if w.cmd.Process != nil {
		w.cmd.Process.Kill()
		w.cmd.Wait()
	}
}

type answer struct {
	at  time.Time
	ids string // the instances' IDs, sorted, space-separated
}

func (w *watch) answers() []answer {
	b, err := os.ReadFile(w.log)
	if err != nil {
		return nil
	}
	var out []answer
	for line := range strings.Lines(string(b)) {
		ts, body, ok := strings.Cut(strings.TrimSpace(line), " ")
		sec, err := strconv.ParseFloat(ts, 64)
		if !ok || err != nil {
			continue
		}
		var es []api.ServiceEntry
		if json.Unmarshal([]byte(body), &es) != nil {
			continue // a line still being written
		}
		var ids []string
		for _, e := range es {
			if e.Service != nil {
				ids = append(ids, e.Service.ID)
			}
		}
		slices.Sort(ids)
		out = append(out, answer{at: time.Unix(0, int64(sec*1e9)), ids: strings.Join(ids, " ")})
	}
	return out
}

// first is when the watch first answered want after since.
func (w *watch) first(since time.Time, want string) (time.Time, bool) {
	for _, a := range w.answers() {
		if !a.at.Before(since) && a.ids == want {
			return a.at, true
		}
	}
	return time.Time{}, false
}

// logSays waits until host h's agent log holds s.
func (c *cluster) logSays(h int, s string) {
	c.t.Helper()
	path := filepath.Join(c.state, hostName(h), "agent.log")
	c.waitFor(fmt.Sprintf("host-%d logs %q", h, s), func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Contains(b, []byte(s)) {
			return fmt.Errorf("%s has no %q", path, s)
		}
		return nil
	})
}

// fullDisk fills host 2's data dir (a 1 MiB tmpfs): a registration there
// fails with one line and is applied nowhere, reads go on, and once the
// disk has room the same registration succeeds without a restart.
func (c *cluster) fullDisk() {
	c.t.Helper()
	filler := filepath.Join(c.state, hostName(2), "data", "filler")
	f, err := os.Create(filler)
	if err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			break // the disk is full
		}
	}
	f.Close()
	if _, err := c.shoal(2, "register", "--name", "full", "--id", "full-1", "--port", "9100"); err == nil ||
		!strings.Contains(err.Error(), "no space left on device") {
		c.t.Fatalf("a registration on a full disk: %v", err)
	}
	all := []int{1, 2, 3}
	c.waitFor("every agent says the cluster converged, the disk full", func() error {
		for _, h := range all {
			if _, err := c.shoal(h, "members", "--converged"); err != nil {
				return err
			}
		}
		return nil
	})
	full := func(h int) (string, error) { return c.instances(h, "full") }
	c.sees("nobody serves the registration refused on a full disk", all, full, "")
	c.sees("host-2 still answers reads", []int{2}, func(h int) (string, error) { return c.instances(h, "payment") }, "host-3 payment-10.77.0.13:8082 passing")
	if err := os.Remove(filler); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.shoal(2, "register", "--name", "full", "--id", "full-1", "--port", "9100"); err != nil {
		c.t.Fatalf("once the disk has room: %v", err)
	}
	c.sees("every host serves the registration made once the disk has room", all, full, "host-2 full-1 passing")
}

// flappingLink takes host 3's link down and up every 3 s for 30 s while
// hosts 1 and 3 change their services; afterwards every agent sees every
// member alive and serves the same catalog.
func (c *cluster) flappingLink() {
	c.t.Helper()
	// The flapping itself is a schedule: the link changes every 3 s,
	// whatever the agents do meanwhile.
	flap := time.NewTicker(3 * time.Second)
	defer flap.Stop()
	start := time.Now()
	var want []string
	i := 0
	for ; time.Since(start) < 30*time.Second; i++ {
		state := "down"
		if i%2 == 1 {
			state = "up"
		}
		c.must(time.Minute, "link", "3", state)
		if _, err := c.shoal(3, "register", "--name", "flap", "--id", fmt.Sprintf("flap-3-%d", i), "--port", "9200"); err != nil {
			c.t.Fatal(err)
		}
		if i > 0 {
			if _, err := c.shoal(3, "deregister", fmt.Sprintf("flap-3-%d", i-1)); err != nil {
				c.t.Fatal(err)
			}
		}
		if _, err := c.shoal(1, "register", "--name", "flap", "--id", fmt.Sprintf("flap-1-%d", i), "--port", "9201"); err != nil {
			c.t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("host-1 flap-1-%d passing", i))
		<-flap.C
	}
	c.must(time.Minute, "link", "3", "up")
	flapped := time.Now()
	all := []int{1, 2, 3}
	c.sees("after the flapping, every agent sees three members alive", all, c.members, strings.Join([]string{
		fmt.Sprintf("%s alive %s:7946", hostName(1), hostIP(1)), fmt.Sprintf("%s alive %s:7946", hostName(2), hostIP(2)),
		fmt.Sprintf("%s alive %s:7946", hostName(3), hostIP(3))}, ", "))
	want = append(want, fmt.Sprintf("host-3 flap-3-%d passing", i-1))
	slices.Sort(want)
	c.sees("after the flapping, every agent serves host-1's flap instances and host-3's last", all,
		func(h int) (string, error) { return c.instances(h, "flap") }, strings.Join(want, ", "))
	c.waitFor("after the flapping, every agent says the cluster converged", func() error {
		for _, h := range all {
			if _, err := c.shoal(h, "members", "--converged"); err != nil {
				return err
			}
		}
		return nil
	})
	c.t.Logf("after 30 s of a link flapping every 3 s, the agents agreed %v after it stayed up", time.Since(flapped).Round(time.Millisecond))
}

func hostName(h int) string { return fmt.Sprintf("host-%d", h) }
func hostIP(h int) string   { return fmt.Sprintf("10.77.0.%d", 10+h) }

// TestNetnsCluster runs three hosts in network namespaces, with the example
// services spread over them, and checks discovery across hosts, failure
// detection when a host's link goes down (and the cut-off host's
// self-preservation), healing when it comes back, a full data disk, a link
// that flaps for 30 s, and that `down` leaves nothing behind.
func TestNetnsCluster(t *testing.T) {
	c := newCluster(t)
	t.Cleanup(c.cleanup)

	// What a run killed half way up leaves: up must clear it first.
	for _, ns := range []string{c.prefix + "-hub", c.prefix + "-7"} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
	}

	// Building the binaries is part of up: allow for a cold build cache.
	c.must(5*time.Minute, "up", strconv.Itoa(hosts))
	want := []string{c.prefix + "-1", c.prefix + "-2", c.prefix + "-3", c.prefix + "-hub"}
	if got := c.namespaces(); !slices.Equal(got, want) {
		t.Fatalf("after up %d: namespaces %v, want %v", hosts, got, want)
	}
	// Gossip is encrypted, with the key kept out of the command lines.
	for h := 1; h <= hosts; h++ {
		log, err := os.ReadFile(filepath.Join(c.state, fmt.Sprintf("host-%d", h), "agent.log"))
		if err != nil || !bytes.Contains(log, []byte("encrypted=true")) {
			t.Errorf("host-%d: the agent does not gossip encrypted (%v)", h, err)
		}
	}
	key, _ := os.ReadFile(filepath.Join(c.state, "gossip.key"))
	for _, p := range c.processes() {
		if len(bytes.TrimSpace(key)) == 0 || strings.Contains(p, string(bytes.TrimSpace(key))) {
			t.Errorf("the gossip key is missing or in a command line: %q", p)
		}
	}

	all := []int{1, 2, 3}
	member := func(h int, status string) string {
		return fmt.Sprintf("%s %s %s:7946", hostName(h), status, hostIP(h))
	}
	allAlive := strings.Join([]string{member(1, "alive"), member(2, "alive"), member(3, "alive")}, ", ")
	// Each agent gossips on its eth0 address: the --bind template resolved
	// to the 10.77 address, not an IPv6 or a loopback one.
	c.sees("every agent sees three members alive", all, c.members, allAlive)

	// The example services, as the script spreads them: user on hosts 1
	// and 2, payment on host 3. Every host answers for all of them.
	userAll := "host-1 user-10.77.0.11:8081 passing, host-2 user-10.77.0.12:8081 passing"
	payment := "host-3 payment-10.77.0.13:8082 passing"
	c.sees("every host finds both user instances, passing", all, func(h int) (string, error) { return c.instances(h, "user") }, userAll)
	c.sees("every host finds the payment instance, passing", all, func(h int) (string, error) { return c.instances(h, "payment") }, payment)

	// The client on host 1 found the others' instances through its agent
	// and called them across the bridge.
	clientLog := filepath.Join(c.state, "host-1", "client.log")
	c.waitFor("the client on host-1 reached host-2's user and host-3's payment", func() error {
		b, err := os.ReadFile(clientLog)
		if err != nil {
			return err
		}
		for _, s := range []string{"user answered by user-10.77.0.12:8081", "payment answered by payment-10.77.0.13:8082"} {
			if !bytes.Contains(b, []byte(s)) {
				return fmt.Errorf("%s has no %q yet:\n%s", clientLog, s, b)
			}
		}
		return nil
	})

	// Register with one host's agent through the CLI, discover through the
	// others', then deregister.
	if _, err := c.shoal(2, "register", "--name", "e2e", "--id", "e2e-1", "--port", "9000", "--tag", "t1"); err != nil {
		t.Fatal(err)
	}
	e2e := func(h int) (string, error) { return c.instances(h, "e2e") }
	c.sees("hosts 1 and 3 find e2e-1, registered with host-2", []int{1, 3}, e2e, "host-2 e2e-1 passing")
	if _, err := c.shoal(2, "deregister", "e2e-1"); err != nil {
		t.Fatal(err)
	}
	c.sees("e2e-1 is gone from hosts 1 and 3 after its deregistration", []int{1, 3}, e2e, "")

	// Pull host 3's cable out: the others declare it failed and stop
	// serving its instances. Host 3, alone, sees both others fail at
	// once: more likely it is cut off than they are gone, so it enters
	// self-preservation and keeps serving their instances from its last
	// copy. While it is cut off it deregisters one of its services and
	// registers another; when it is back, the others serve its new
	// catalog at once (within a second or two of seeing it alive: its
	// payment instance shows when they do), not at their next push/pull.
	// Watches on hosts 1 and 2 time both from the agents' own answers.
	if _, err := c.shoal(3, "register", "--name", "heal", "--id", "heal-x", "--port", "9001"); err != nil {
		t.Fatal(err)
	}
	heal := func(h int) (string, error) { return c.instances(h, "heal") }
	c.sees("hosts 1 and 2 find heal-x", []int{1, 2}, heal, "host-3 heal-x passing")
	watches := map[string]*watch{}
	for _, h := range []int{1, 2} {
		watches[fmt.Sprintf("payment-%d", h)] = c.watch(h, "payment")
		watches[fmt.Sprintf("heal-%d", h)] = c.watch(h, "heal")
	}
	c.must(time.Minute, "link", "3", "down")
	cut := strings.Join([]string{member(1, "alive"), member(2, "alive"), member(3, "failed")}, ", ")
	c.sees("hosts 1 and 2 see host-3 failed", []int{1, 2}, c.members, cut)
	c.sees("host-3's payment instance is gone from hosts 1 and 2", []int{1, 2}, func(h int) (string, error) { return c.instances(h, "payment") }, "")
	c.sees("hosts 1 and 2 still serve both user instances", []int{1, 2}, func(h int) (string, error) { return c.instances(h, "user") }, userAll)
	alone := strings.Join([]string{member(1, "failed"), member(2, "failed"), member(3, "alive")}, ", ")
	c.sees("host-3 sees hosts 1 and 2 failed", []int{3}, c.members, alone)
	c.sees("host-3, cut off, keeps serving both user instances (self-preservation) and its own payment", []int{3}, func(h int) (string, error) {
		u, err := c.instances(h, "user")
		if err != nil {
			return "", err
		}
		p, err := c.instances(h, "payment")
		return u + " | " + p, err
	}, userAll+" | "+payment)
	c.logSays(3, "self-preservation: many members failed at once")
	for _, h := range []int{1, 2} {
		if b, _ := os.ReadFile(filepath.Join(c.state, hostName(h), "agent.log")); bytes.Contains(b, []byte("self-preservation:")) {
			t.Errorf("host-%d, which lost one member of three, entered self-preservation", h)
		}
	}
	if _, err := c.shoal(3, "deregister", "heal-x"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.shoal(3, "register", "--name", "heal", "--id", "heal-y", "--port", "9002"); err != nil {
		t.Fatal(err)
	}

	// Put it back: with a one-second reconnect interval the halves merge
	// at once, and everything is served everywhere again.
	healed := time.Now()
	c.must(time.Minute, "link", "3", "up")
	c.sees("after the link is back, every agent sees three members alive", all, c.members, allAlive)
	c.sees("after the link is back, every host finds the payment instance", all, func(h int) (string, error) { return c.instances(h, "payment") }, payment)
	c.sees("after the link is back, every host finds both user instances", all, func(h int) (string, error) { return c.instances(h, "user") }, userAll)
	c.sees("after the link is back, hosts 1 and 2 serve heal-y, not heal-x", []int{1, 2}, heal, "host-3 heal-y passing")
	c.logSays(3, "self-preservation ended")
	for _, h := range []int{1, 2} {
		alive, ok1 := watches[fmt.Sprintf("payment-%d", h)].first(healed, "payment-10.77.0.13:8082")
		current, ok2 := watches[fmt.Sprintf("heal-%d", h)].first(healed, "heal-y")
		if !ok1 || !ok2 {
			t.Fatalf("host-%d's watches missed host-3's return (%v) or its new catalog (%v)", h, ok1, ok2)
		}
		t.Logf("staleness after isolation: host-%d served host-3's current catalog %v after seeing it alive (%v after the link came up)",
			h, current.Sub(alive).Round(time.Millisecond), current.Sub(healed).Round(time.Millisecond))
	}

	// A cut shorter than failure detection: host 3's link is down for 3 s
	// while it registers a service. Nobody declared it failed, so nothing
	// but its own catch-up brings the change: within seconds, not at the
	// next push/pull.
	if _, err := c.shoal(3, "deregister", "heal-y"); err != nil {
		t.Fatal(err)
	}
	c.sees("heal-y is gone from hosts 1 and 2", []int{1, 2}, heal, "")
	c.must(time.Minute, "link", "3", "down")
	down := time.Now()
	if _, err := c.shoal(3, "register", "--name", "heal", "--id", "heal-z", "--port", "9003"); err != nil {
		t.Fatal(err)
	}
	if rest := 3*time.Second - time.Since(down); rest > 0 {
		time.Sleep(rest) // the outage itself, not a wait for a condition
	}
	healed = time.Now()
	c.must(time.Minute, "link", "3", "up")
	c.sees("after a 3 s outage, hosts 1 and 2 serve heal-z", []int{1, 2}, heal, "host-3 heal-z passing")
	for _, h := range []int{1, 2} {
		current, ok := watches[fmt.Sprintf("heal-%d", h)].first(healed, "heal-z")
		if !ok {
			t.Fatalf("host-%d's watch missed heal-z", h)
		}
		t.Logf("staleness after a 3 s outage: host-%d served heal-z %v after the link came up", h, current.Sub(healed).Round(time.Millisecond))
	}
	c.sees("every agent sees three members alive", all, c.members, allAlive)
	c.waitFor("every agent says the cluster converged", func() error {
		for _, h := range all {
			if _, err := c.shoal(h, "members", "--converged"); err != nil {
				return err
			}
		}
		return nil
	})
	for _, w := range watches {
		w.stop()
	}

	c.fullDisk()
	c.flappingLink()

	if ps := c.processes(); len(ps) != 7 { // 3 agents, 3 services, the client
		t.Errorf("before down: %d processes from %s/bin, want 7: %q", len(ps), c.state, ps)
	}
	c.must(2*time.Minute, "down")
	if left := c.namespaces(); len(left) > 0 {
		t.Errorf("after down: namespaces %v left behind", left)
	}
	if ps := c.processes(); len(ps) > 0 {
		t.Errorf("after down: processes left running: %q", ps)
	}
	if _, err := os.Stat(c.state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after down: state dir %s: %v, want it gone", c.state, err)
	}
	// down is idempotent: with nothing up it succeeds.
	if out := c.must(time.Minute, "down"); !strings.Contains(out, "nothing to stop") {
		t.Errorf("a second down says %q, want nothing to stop", out)
	}
}
