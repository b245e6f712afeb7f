package catalog

import (
	"encoding/binary"
	"hash/fnv"
	"sort"
)

// DigestMetaKey is the node metadata key under which every node shows the
// digest of its catalog as it last announced it (see FormatDigest).
const DigestMetaKey = "shoal-digest"

// FormatDigest writes a digest as 16 hex digits.
func FormatDigest(d uint64) string {
	const hexDigits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[d&0xf]
		d >>= 4
	}
	return string(b[:])
}

// OriginDigest sums up what a catalog holds of one origin, so that two
// agents can tell whether they agree on it without comparing entries.
type OriginDigest struct {
	Origin  string
	Epoch   uint64
	Counter uint64 // the highest counter seen in Epoch
	Entries int    // entries held, tombstones included
	Digest  uint64 // FNV-1a of the entries' keys and versions, in key order
}

// Digests sums up every origin the catalog holds entries of, sorted by
// origin. Two
// catalogs that hold the same writes give the same digests, whatever order
// the writes came in (the entries are summed in key order); only the
// versions are summed, since a version names exactly one write.
func (c *Catalog) Digests() []OriginDigest {
	out := make([]OriginDigest, 0, len(c.origins))
	for name, o := range c.origins {
		if !o.reaped.IsZero() || len(o.entries) == 0 {
			// Forgotten but for its epoch, as in Snapshot, or a node
			// that announced nothing: neither is anything to agree on.
			continue
		}
		out = append(out, OriginDigest{Origin: name, Epoch: o.epoch, Counter: o.counter, Entries: len(o.entries), Digest: digestOf(o)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin < out[j].Origin })
	return out
}

// Digest sums up the whole catalog: the digests of every origin.
func (c *Catalog) Digest() uint64 { return CombineDigests(c.Digests()) }

// CombineDigests sums up a sorted list of origin digests into one.
func CombineDigests(ds []OriginDigest) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for _, d := range ds {
		h.Write([]byte(d.Origin))
		h.Write([]byte{0})
		binary.BigEndian.PutUint64(b[:], d.Digest)
		h.Write(b[:])
	}
	return h.Sum64()
}

func digestOf(o *origin) uint64 {
	h := fnv.New64a()
	var b [8 * 2]byte
	for _, k := range sortedKeys(o) {
		r := o.entries[k]
		flags := byte(k.kind) << 1
		if r.Deleted {
			flags |= 1
		}
		h.Write([]byte{flags})
		h.Write([]byte(k.id))
		h.Write([]byte{0}) // IDs are printable: no NUL inside
		binary.BigEndian.PutUint64(b[:8], r.Version.Epoch)
		binary.BigEndian.PutUint64(b[8:], r.Version.Counter)
		h.Write(b[:])
	}
	return h.Sum64()
}
