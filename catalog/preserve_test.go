package catalog

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// preserveCluster is agent "r" knowing peers p0..p(n-1), all alive, each
// with one instance of web, self-preservation on with the defaults.
func preserveCluster(t *testing.T, n int) (*Catalog, []string) {
	t.Helper()
	r := New("r", 1)
	r.SetPreserve(DefaultPreserveConfig(), t0)
	var peers, want []string
	for i := range n {
		name := fmt.Sprintf("p%d", i)
		peers = append(peers, name)
		p := New(name, uint64(10+i))
		setNode(r, name, StatusAlive, uint64(10+i), t0)
		applyAll(t, r, t0, mustPut(t, p, svc("web-"+name, "web"), t0))
		want = append(want, name+"/web-"+name)
	}
	wantIDs(t, r, "web", want...)
	return r, peers
}

func served(c *Catalog) []string { return ids(c, "web") }

// Five of six members failing within the window: the agent is the one cut
// off, most likely. It keeps serving all five (the first three, hidden
// before the share was crossed, come back), marked preserved and
// passing, and moves the service's index so blocking readers see it.
func TestSelfPreservationKeepsMembersThatFailTogether(t *testing.T) {
	r, peers := preserveCluster(t, 5)
	all := served(r)
	idx := r.ServiceIndex("web")
	for i, p := range peers {
		setNode(r, p, StatusDead, uint64(10+i), t0.Add(time.Duration(i)*time.Second))
		checkConsistency(t, r)
	}
	st := r.Preservation()
	if !st.Active || st.Nodes != 5 || !st.Since.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("preservation %+v; want active with 5 nodes since the fourth failure (4 of 6 is more than half)", st)
	}
	if got := served(r); !slices.Equal(got, all) {
		t.Fatalf("served %v, want %v", got, all)
	}
	if r.ServiceIndex("web") <= idx {
		t.Error("ServiceIndex did not move")
	}
	for _, in := range r.Instances("web") {
		if in.Node.Status != StatusDead || !in.Node.Preserved || !in.Node.Serving() {
			t.Errorf("node %+v: want failed, preserved, serving", in.Node)
		}
	}
}

// Failures spread wider than the window, too few at once, a cluster
// below the minimum, self-preservation turned off: none starts it, and
// the failed are hidden as before.
func TestSelfPreservationNeedsManyFailuresAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		peers int
		fail  int
		apart time.Duration
		off   bool
	}{
		{"spread out", 5, 5, 40 * time.Second, false}, // one at a time in any window
		{"half exactly", 5, 3, time.Second, false},    // 3 of 6 is not more than half
		{"two nodes", 1, 1, 0, false},
		{"turned off", 5, 5, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, peers := preserveCluster(t, tc.peers)
			if tc.off {
				r.SetPreserve(PreserveConfig{}, t0)
			}
			for i := range tc.fail {
				setNode(r, peers[i], StatusDead, uint64(10+i), t0.Add(time.Duration(i)*tc.apart))
			}
			if r.Preservation().Active {
				t.Fatalf("self-preservation started: %+v", r.Preservation())
			}
			if got := len(served(r)); got != tc.peers-tc.fail {
				t.Fatalf("served %v", served(r))
			}
		})
	}
}

// A member that leaves gracefully is never kept, before or during
// self-preservation.
func TestSelfPreservationNeverKeepsLeftMembers(t *testing.T) {
	r, peers := preserveCluster(t, 5)
	setNode(r, peers[0], StatusLeft, 10, t0)
	for i := 1; i < 5; i++ {
		setNode(r, peers[i], StatusDead, uint64(10+i), t0)
	}
	if !r.Preservation().Active {
		t.Fatal("4 of 5 failing did not start self-preservation")
	}
	if got := served(r); slices.Contains(got, "p0/web-p0") || len(got) != 4 {
		t.Fatalf("served %v", got)
	}
	setNode(r, peers[1], StatusLeft, 11, t0.Add(time.Second))
	if got := served(r); slices.Contains(got, "p1/web-p1") || len(got) != 3 || r.Preservation().Nodes != 3 {
		t.Fatalf("after p1 left: served %v, %+v", got, r.Preservation())
	}
}

// It ends when every member kept answers again; or, once some answered,
// a window after the last of them if those still failed would not have
// started it (they are hidden then); or after its maximum.
func TestSelfPreservationEnds(t *testing.T) {
	fail := func(r *Catalog, peers []string) {
		for i, p := range peers {
			setNode(r, p, StatusDead, uint64(10+i), t0)
		}
		if !r.Preservation().Active {
			t.Fatal("not started")
		}
	}
	t.Run("all back", func(t *testing.T) {
		r, peers := preserveCluster(t, 5)
		fail(r, peers)
		for i, p := range peers {
			setNode(r, p, StatusAlive, uint64(10+i), t0.Add(time.Minute))
		}
		if r.Preservation().Active || len(served(r)) != 5 {
			t.Fatalf("%+v, served %v", r.Preservation(), served(r))
		}
	})
	t.Run("most back", func(t *testing.T) {
		r, peers := preserveCluster(t, 5)
		fail(r, peers)
		back := t0.Add(time.Minute)
		for i, p := range peers[:3] {
			setNode(r, p, StatusAlive, uint64(10+i), back)
		}
		r.TickPreserve(back.Add(time.Second))
		if !r.Preservation().Active {
			t.Fatal("ended before the others had a window to answer")
		}
		r.TickPreserve(back.Add(DefaultPreserveConfig().Window))
		if r.Preservation().Active {
			t.Fatalf("still on with 2 of 6 failed, a window after the last answer: %+v", r.Preservation())
		}
		if got := served(r); len(got) != 3 || slices.Contains(got, "p4/web-p4") {
			t.Fatalf("served %v; the two still failed should be hidden", got)
		}
	})
	t.Run("maximum", func(t *testing.T) {
		r, peers := preserveCluster(t, 5)
		fail(r, peers)
		r.TickPreserve(t0.Add(DefaultPreserveConfig().Max - time.Second))
		if !r.Preservation().Active {
			t.Fatal("ended early")
		}
		r.TickPreserve(t0.Add(DefaultPreserveConfig().Max))
		if r.Preservation().Active || len(served(r)) != 0 {
			t.Fatalf("after the maximum: %+v, served %v", r.Preservation(), served(r))
		}
	})
}
