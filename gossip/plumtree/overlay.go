package plumtree

import (
	"hash/fnv"
	"slices"
	"sort"
	"strconv"
)

// Neighbors picks a node's overlay neighbours from the cluster's member
// names (self included or not), the same way on every node, so that two
// nodes with the same view of the membership agree on who is whose
// neighbour without any message of their own.
//
// Members sit on a ring in the order of a hash of their names. Each
// member links to its successor on the ring and to chords-1 more members:
// the successors of points hashed from its name. A node's neighbours are
// the members it links to and the members that link to it, so links are
// symmetric. The ring keeps the overlay connected; the chords keep its
// diameter near log N, so a tree over it is shallow. With chords = 2 a
// node has about 4 neighbours whatever N.
func Neighbors(self string, members []string, chords int) []string {
	type point struct {
		h    uint64
		name string
	}
	ring := make([]point, 0, len(members)+1)
	seen := make(map[string]bool, len(members)+1)
	for _, m := range append([]string{self}, members...) {
		if !seen[m] {
			seen[m] = true
			ring = append(ring, point{hashOf(m), m})
		}
	}
	if len(ring) <= chords+1 {
		// Few enough for everyone to be everyone's neighbour.
		out := make([]string, 0, len(ring))
		for _, p := range ring {
			if p.name != self {
				out = append(out, p.name)
			}
		}
		sort.Strings(out)
		return out
	}
	sort.Slice(ring, func(i, j int) bool {
		if ring[i].h != ring[j].h {
			return ring[i].h < ring[j].h
		}
		return ring[i].name < ring[j].name
	})
	// successor is the first member at or after h on the ring, other
	// than skip.
	successor := func(h uint64, skip string) string {
		i := sort.Search(len(ring), func(i int) bool { return ring[i].h >= h })
		for k := 0; k < len(ring); k++ {
			p := ring[(i+k)%len(ring)]
			if p.name != skip {
				return p.name
			}
		}
		return ""
	}
	links := func(m string) []string {
		h := hashOf(m)
		out := []string{successor(h+1, m)}
		for c := 1; c < chords; c++ {
			out = append(out, successor(hashOf(m+"#"+strconv.Itoa(c)), m))
		}
		return out
	}
	set := map[string]bool{}
	for _, n := range links(self) {
		set[n] = true
	}
	for _, p := range ring {
		if p.name != self && slices.Contains(links(p.name), self) {
			set[p.name] = true
		}
	}
	delete(set, self)
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func hashOf(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	// FNV's low bits mix poorly for short, similar names (node-1,
	// node-2, …); a final avalanche spreads them around the ring.
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
