package gossip

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-sd/shoal/catalog"
)

func TestPushFanoutGrowsWithLogN(t *testing.T) {
	for _, tc := range []struct{ n, least, want int }{
		{1, 3, 3}, {8, 3, 5}, {64, 3, 7}, {1000, 3, 9}, {8, 6, 6},
	} {
		if got := pushFanout(tc.n, tc.least); got != tc.want {
			t.Errorf("pushFanout(%d, %d) = %d, want %d", tc.n, tc.least, got, tc.want)
		}
	}
}

// A late older write of an instance must not push a newer queued one out
// of memberlist's named queue.
func TestOlderEntryDoesNotReplaceNewerQueued(t *testing.T) {
	g := &Gossip{
		queue:  &memberlist.TransmitLimitedQueue{NumNodes: func() int { return 2 }, RetransmitMult: 1},
		queued: make(map[string]*broadcast),
		log:    slog.New(slog.DiscardHandler),
	}
	entry := func(counter uint64, port int) catalog.Entry {
		return catalog.Entry{Origin: "a", Version: catalog.Version{Epoch: 1, Counter: counter},
			Service: catalog.Service{ID: "web", Name: "web", Port: port, Weights: catalog.Weights{Passing: 1, Warning: 1}}}
	}
	g.Broadcast(entry(2, 2002))
	g.Broadcast(entry(1, 2001))
	msgs := g.queue.GetBroadcasts(0, 1400)
	if len(msgs) != 1 {
		t.Fatalf("%d messages queued, want 1", len(msgs))
	}
	m, err := Decode(msgs[0])
	if err != nil || m.Entry.Version.Counter != 2 {
		t.Fatalf("queued %+v (%v), want the newer write", m.Entry.Version, err)
	}
	// A newer write still replaces an older queued one.
	g.Broadcast(entry(3, 2003))
	msgs = g.queue.GetBroadcasts(0, 1400)
	if m, _ := Decode(msgs[0]); len(msgs) != 1 || m.Entry.Version.Counter != 3 {
		t.Fatalf("newer write did not replace the queued one: %d messages", len(msgs))
	}
}

// pushNow's targets: distinct peers, as many as the fanout, every peer
// when there are fewer.
func TestPushNowPicksDistinctPeers(t *testing.T) {
	for _, peers := range []int{0, 1, 3, 10, 200} {
		g := &Gossip{fanout: 3}
		for i := 0; i < peers; i++ {
			g.peers = append(g.peers, memberlist.Node{Name: fmt.Sprint("p", i)})
		}
		got := g.pushTargets()
		want := min(peers, pushFanout(peers+1, 3))
		seen := map[string]bool{}
		for _, n := range got {
			seen[n.Name] = true
		}
		if len(got) != want || len(seen) != want {
			t.Errorf("%d peers: %d targets (%d distinct), want %d", peers, len(got), len(seen), want)
		}
	}
}
