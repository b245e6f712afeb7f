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
	return (&Overlay{Chords: chords}).Neighbors(self, members)
}

// Overlay computes Neighbors, keeping the members' hashes between calls:
// a node recomputes its neighbours at every membership change, and at a
// thousand members hashing every name each time would dominate.
type Overlay struct {
	Chords int
	hashes map[string][]uint64 // name → its ring point, then its chord points
}

type point struct {
	h    uint64
	name string
}

func (o *Overlay) points(name string) []uint64 {
	if p, ok := o.hashes[name]; ok {
		return p
	}
	if o.hashes == nil {
		o.hashes = make(map[string][]uint64)
	}
	p := []uint64{hashOf(name)}
	for c := 1; c < o.Chords; c++ {
		p = append(p, hashOf(name+"#"+strconv.Itoa(c)))
	}
	o.hashes[name] = p
	return p
}

// Neighbors is the package's Neighbors with o's chords.
func (o *Overlay) Neighbors(self string, members []string) []string {
	ring := make([]point, 0, len(members)+1)
	seen := make(map[string]bool, len(members)+1)
	for _, m := range append([]string{self}, members...) {
		if !seen[m] {
			seen[m] = true
			ring = append(ring, point{o.points(m)[0], m})
		}
	}
	if len(o.hashes) > 2*len(ring)+64 {
		// Forget the hashes of members long gone.
		for n := range o.hashes {
			if !seen[n] {
				delete(o.hashes, n)
			}
		}
	}
	if len(ring) <= o.Chords+1 {
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
	less := func(a, b point) int {
		if a.h != b.h {
			if a.h < b.h {
				return -1
			}
			return 1
		}
		return compareStrings(a.name, b.name)
	}
	slices.SortFunc(ring, less)
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
		ps := o.points(m)
		out := []string{successor(ps[0]+1, m)}
		for _, h := range ps[1:] {
			out = append(out, successor(h, m))
		}
		return out
	}
	set := map[string]bool{}
	for _, n := range links(self) {
		set[n] = true
	}
	// Who links to self: a member whose ring successor or chord successor
	// is self. Its points then fall between self's two ring predecessors
	// and self (the second predecessor for a point of the first, which
	// skips itself), so only the chord points in that arc are checked.
	at := slices.IndexFunc(ring, func(p point) bool { return p.name == self })
	pred := ring[(at-1+len(ring))%len(ring)]
	pred2 := ring[(at-2+len(ring))%len(ring)]
	set[pred.name] = true // its ring successor is self
	if o.Chords > 1 {
		var chordPts []point
		for _, p := range ring {
			for _, h := range o.points(p.name)[1:] {
				if inArc(h, pred2.h, ring[at].h) {
					chordPts = append(chordPts, point{h, p.name})
				}
			}
		}
		for _, cp := range chordPts {
			if cp.name != self && successor(cp.h, cp.name) == self {
				set[cp.name] = true
			}
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

// inArc reports whether h lies on the ring's arc from lo (excluded) to hi
// (included), going up and wrapping past the top.
func inArc(h, lo, hi uint64) bool {
	if lo < hi {
		return h > lo && h <= hi
	}
	return h > lo || h <= hi
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
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
