package bench

import (
	"context"
	"fmt"
	"io"
	"log"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/internal/testutil"
)

var sizes = []int{8, 32, 64}

// productionTimers undoes the harness's fast timers: the benchmark runs
// memberlist's LAN defaults, as a real deployment would.
func productionTimers(cfg *agent.Config) {
	fast := cfg.Memberlist
	cfg.Memberlist = func(mc *memberlist.Config) {
		fast(mc)
		def := memberlist.DefaultLANConfig()
		mc.GossipInterval = def.GossipInterval
		mc.ProbeInterval = def.ProbeInterval
		mc.ProbeTimeout = def.ProbeTimeout
		mc.SuspicionMult = def.SuspicionMult
		mc.PushPullInterval = def.PushPullInterval
		mc.GossipToTheDeadTime = def.GossipToTheDeadTime
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkRegistrationPropagation measures, at each N, the time from a
// registration on one agent until every agent serves it.
func BenchmarkRegistrationPropagation(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			c := testutil.NewEmptyCluster(b)
			c.Configure = productionTimers
			for i := 0; i < n; i++ {
				c.Start(fmt.Sprintf("node-%d", i), 0)
			}
			c.JoinAll()
			nodes := c.Nodes()
			var lat []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				origin := nodes[i%len(nodes)]
				id := fmt.Sprintf("svc-%d", i)
				// Each agent is watched through its change notifications,
				// so arrival times are exact rather than a poll's tick.
				arrived := make(chan time.Time, len(nodes))
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				for _, nd := range nodes {
					go func() {
						for {
							ch := nd.Agent.Changed()
							if serves(nd, origin.Name, id) {
								arrived <- time.Now()
								return
							}
							select {
							case <-ch:
							case <-ctx.Done():
								return
							}
						}
					}()
				}
				start := time.Now()
				if err := origin.Agent.RegisterService(catalog.Service{ID: id, Name: "web", Port: 80}, nil); err != nil {
					b.Fatal(err)
				}
				var last time.Time
				for range nodes {
					select {
					case t := <-arrived:
						if t.After(last) {
							last = t
						}
					case <-ctx.Done():
						b.Fatalf("%s from %s did not reach every agent within a minute", id, origin.Name)
					}
				}
				cancel()
				lat = append(lat, last.Sub(start))
			}
			b.StopTimer()
			reportLatency(b, lat)
		})
	}
}

// reportLatency reports the median and 99th percentile in milliseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
}

// serves reports whether the node serves the instance id of origin.
func serves(n *testutil.Node, origin, id string) bool {
	found := false
	n.Agent.Read(func(cat *catalog.Catalog) {
		for _, in := range cat.Instances("web") {
			if in.Service.ID == id && in.Node.Name == origin {
				found = true
			}
		}
	})
	return found
}

// rawDelegate is a bare memberlist delegate that records when a message
// (or a node's metadata) arrives and never relays a user message.
type rawDelegate struct {
	queue *memberlist.TransmitLimitedQueue
	mu    sync.Mutex
	got   map[string]time.Time // user message or "node|meta" → first arrival
	meta  []byte
}

func (d *rawDelegate) NodeMeta(int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.meta
}
func (d *rawDelegate) NotifyMsg(b []byte) { d.saw(string(b)) }
func (d *rawDelegate) saw(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.got[key]; !ok {
		d.got[key] = time.Now()
	}
}
func (d *rawDelegate) seen(key string) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.got[key]
	return t, ok
}
func (d *rawDelegate) GetBroadcasts(o, l int) [][]byte { return d.queue.GetBroadcasts(o, l) }
func (d *rawDelegate) LocalState(bool) []byte          { return nil }
func (d *rawDelegate) MergeRemoteState([]byte, bool)   {}
func (d *rawDelegate) NotifyJoin(n *memberlist.Node)   {}
func (d *rawDelegate) NotifyLeave(n *memberlist.Node)  {}
func (d *rawDelegate) NotifyUpdate(n *memberlist.Node) { d.saw(n.Name + "|" + string(n.Meta)) }

type rawBroadcast []byte

func (r rawBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (r rawBroadcast) Message() []byte                       { return r }
func (r rawBroadcast) Finished()                             {}

// rawCluster starts n plain memberlists with LAN defaults on loopback and
// waits until each knows all n.
func rawCluster(b *testing.B, n int) ([]*memberlist.Memberlist, []*rawDelegate) {
	var mls []*memberlist.Memberlist
	var ds []*rawDelegate
	for i := 0; i < n; i++ {
		mc := memberlist.DefaultLANConfig()
		mc.Name = fmt.Sprintf("raw-%d", i)
		mc.BindAddr, mc.BindPort, mc.AdvertisePort = "127.0.0.1", 0, 0
		mc.Logger = log.New(io.Discard, "", 0)
		d := &rawDelegate{got: map[string]time.Time{}}
		mc.Delegate, mc.Events = d, d
		ml, err := memberlist.Create(mc)
		if err != nil {
			b.Fatal(err)
		}
		d.queue = &memberlist.TransmitLimitedQueue{NumNodes: ml.NumMembers, RetransmitMult: mc.RetransmitMult}
		mls, ds = append(mls, ml), append(ds, d)
		b.Cleanup(func() { _ = ml.Shutdown() })
		if i > 0 {
			if _, err := ml.Join([]string{mls[0].LocalNode().Address()}); err != nil {
				b.Fatal(err)
			}
		}
	}
	testutil.WaitFor(b, 3*time.Minute, func() error {
		for _, ml := range mls {
			if ml.NumMembers() != n {
				return fmt.Errorf("%d members", ml.NumMembers())
			}
		}
		return nil
	})
	return mls, ds
}

// spread waits up to 3 s (the modelled time to reach all of 1,000 nodes is
// about one) for key to arrive at every delegate but the origin's, and
// returns the share reached and, if all were, the time the last one took.
func spread(ds []*rawDelegate, origin int, key string, start time.Time) (float64, time.Duration, bool) {
	count := func() int {
		c := 0
		for i, d := range ds {
			if _, ok := d.seen(key); ok || i == origin {
				c++
			}
		}
		return c
	}
	_ = testutil.Poll(3*time.Second, func() error {
		if count() < len(ds) {
			return fmt.Errorf("not everywhere")
		}
		return nil
	})
	got := count()
	if got < len(ds) {
		return float64(got) / float64(len(ds)), 0, false
	}
	var last time.Time
	for i, d := range ds {
		if t, _ := d.seen(key); i != origin && t.After(last) {
			last = t
		}
	}
	return 1, last.Sub(start), true
}

func reportSpread(b *testing.B, reached []float64, lat []time.Duration) {
	sum := 0.0
	for _, r := range reached {
		sum += r
	}
	b.ReportMetric(100*sum/float64(len(reached)), "%reached")
	b.ReportMetric(float64(len(lat))/float64(len(reached))*100, "%complete")
	if len(lat) > 0 {
		reportLatency(b, lat)
	}
}

// BenchmarkMemberlistBroadcast is the first baseline: one user broadcast
// from one node of a plain memberlist cluster with LAN defaults, which only
// its origin transmits (memberlist does not relay user broadcasts). It
// reports the share of nodes reached within 3 s and, where all were, how
// long that took.
func BenchmarkMemberlistBroadcast(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			_, ds := rawCluster(b, n)
			var lat []time.Duration
			var reached []float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				msg := fmt.Sprintf("msg-%d", i)
				start := time.Now()
				ds[i%n].queue.QueueBroadcast(rawBroadcast(msg))
				r, d, all := spread(ds, i%n, msg, start)
				reached = append(reached, r)
				if all {
					lat = append(lat, d)
				}
			}
			b.StopTimer()
			reportSpread(b, reached, lat)
		})
	}
}

// BenchmarkMemberlistMetaUpdate is the second baseline: memberlist's own
// epidemic broadcast, which every receiver relays — a node's metadata
// change (an alive message) until every other node has it.
func BenchmarkMemberlistMetaUpdate(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			mls, ds := rawCluster(b, n)
			var lat []time.Duration
			var reached []float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				o := i % n
				meta := fmt.Sprintf("v-%d", i)
				ds[o].mu.Lock()
				ds[o].meta = []byte(meta)
				ds[o].mu.Unlock()
				start := time.Now()
				// Returns once memberlist has sent it as often as it will;
				// the arrival times are what count.
				_ = mls[o].UpdateNode(0)
				r, d, all := spread(ds, o, mls[o].LocalNode().Name+"|"+meta, start)
				reached = append(reached, r)
				if all {
					lat = append(lat, d)
				}
			}
			b.StopTimer()
			reportSpread(b, reached, lat)
		})
	}
}
