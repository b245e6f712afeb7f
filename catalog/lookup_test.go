package catalog

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// EachInstance sees what Instances sees, status included, on random
// catalogs of several origins, checks and node states.
func TestEachInstanceAgreesWithInstances(t *testing.T) {
	healths := []Health{HealthPassing, HealthWarning, HealthCritical}
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		c := New("a", 1)
		for _, origin := range []string{"a", "b", "c", "d"} {
			o := c
			if origin != "a" {
				o = New(origin, 1)
				states := []NodeStatus{StatusAlive, StatusSuspect, StatusDead, StatusLeft}
				setNode(c, origin, states[rng.IntN(len(states))], 1, t0)
			}
			for i := range rng.IntN(5) {
				id := fmt.Sprintf("%s-%d", origin, i)
				mustPut(t, o, svc(id, []string{"web", "db"}[rng.IntN(2)]), t0)
				for j := range rng.IntN(3) {
					mustPutCheck(t, o, chk(fmt.Sprintf("%s-c%d", id, j), id, healths[rng.IntN(3)]))
				}
			}
			for j := range rng.IntN(2) {
				mustPutCheck(t, o, chk(fmt.Sprintf("node-c%d", j), "", healths[rng.IntN(3)]))
			}
			if o != c {
				applyAll(t, c, t0, o.LocalEntries()...)
			}
		}
		for _, name := range []string{"web", "db", "none"} {
			var want, got []string
			for _, in := range c.Instances(name) {
				want = append(want, fmt.Sprintf("%s/%s %s %s", in.Node.Name, in.Service.ID, in.Node.Address, in.Status))
			}
			c.EachInstance(name, func(n Node, s *Service, status Health) {
				got = append(got, fmt.Sprintf("%s/%s %s %s", n.Name, s.ID, n.Address, status))
			})
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d, %s: EachInstance %v, Instances %v", seed, name, got, want)
			}
		}
	}
}

func TestFoldNames(t *testing.T) {
	c := New("a", 1)
	mustPut(t, c, svc("w1", "Web"), t0)
	mustPut(t, c, svc("w2", "web"), t0)
	mustPut(t, c, svc("d1", "DB"), t0)
	setNode(c, "Node-B", StatusAlive, 1, t0)
	for _, tt := range []struct {
		fold       func(string) (string, bool)
		in, want   string
		wantExists bool
	}{
		{c.FoldServiceName, "web", "web", true},
		{c.FoldServiceName, "Web", "Web", true},
		{c.FoldServiceName, "WEB", "Web", true}, // the smallest spelling
		{c.FoldServiceName, "db", "DB", true},
		{c.FoldServiceName, "api", "", false},
		{c.FoldNodeName, "node-b", "Node-B", true},
		{c.FoldNodeName, "node-c", "", false},
	} {
		if got, ok := tt.fold(tt.in); got != tt.want || ok != tt.wantExists {
			t.Errorf("fold(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantExists)
		}
	}
}

// NodeServices lists, per node, exactly the instances Instances serves
// of every name, with the same indexes; a node not served lists none.
func TestNodeServicesAgreesWithInstances(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 2))
		c := New("a", 1)
		for _, origin := range []string{"a", "b", "c"} {
			o := c
			if origin != "a" {
				o = New(origin, 1)
				states := []NodeStatus{StatusAlive, StatusSuspect, StatusDead, StatusLeft}
				setNode(c, origin, states[rng.IntN(len(states))], 1, t0)
			}
			for i := range rng.IntN(5) {
				mustPut(t, o, svc(fmt.Sprintf("%s-%d", origin, i), []string{"web", "db"}[rng.IntN(2)]), t0)
			}
			if rng.IntN(2) == 0 {
				o.Delete(fmt.Sprintf("%s-0", origin), t0) // a tombstone, if it was registered
			}
			if o != c {
				applyAll(t, c, t0, o.LocalEntries()...)
			}
		}
		want := map[string][]string{}
		for _, name := range []string{"web", "db"} {
			for _, in := range c.Instances(name) {
				want[in.Node.Name] = append(want[in.Node.Name], fmt.Sprintf("%s %d %d", in.Service.ID, in.CreateIndex, in.ModifyIndex))
			}
		}
		for _, node := range []string{"a", "b", "c", "none"} {
			var got []string
			for _, in := range c.NodeServices(node) {
				if in.Node.Name != node {
					t.Fatalf("seed %d: NodeServices(%s) gave an instance of %s", seed, node, in.Node.Name)
				}
				got = append(got, fmt.Sprintf("%s %d %d", in.Service.ID, in.CreateIndex, in.ModifyIndex))
			}
			w := want[node]
			slices.Sort(w)
			if !slices.Equal(got, w) {
				t.Fatalf("seed %d, node %s: NodeServices %v, Instances %v", seed, node, got, w)
			}
		}
	}
}
