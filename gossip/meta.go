package gossip

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/shoal-sd/shoal/catalog"
)

// NodeMeta is what a Shoal agent puts in its memberlist node metadata:
// small facts only (memberlist allows 512 bytes), never the catalog.
type NodeMeta struct {
	// Protocol is the highest protocol version the agent speaks; MinProtocol
	// the lowest (0: Protocol only, as agents before version 3 announced).
	Protocol    uint8
	MinProtocol uint8
	Epoch       uint64 // the agent's current epoch: a restart announces a new one
	Datacenter  string
	Version     string // Shoal's version, for `shoal members`
	// User is the operator's node metadata (node_meta), valid for
	// catalog.ValidateNodeMeta; nil when there is none.
	User map[string]string
	// Gen grows each time the agent refutes a leave announced in its
	// name: a leave counts only for the (Epoch, Gen) it names, so a forged
	// one is undone by the next announcement.
	Gen uint64
}

// Protocols is the range of protocol versions the agent speaks.
func (m NodeMeta) Protocols() (lo, hi uint8) {
	if m.MinProtocol == 0 || m.MinProtocol > m.Protocol {
		return m.Protocol, m.Protocol
	}
	return m.MinProtocol, m.Protocol
}

const metaMagic = 's'

// The metadata holds, after the fields every version has, records of a
// type byte, a length and that many bytes. Agents before node_meta stop
// reading after Version, and an agent skips the records of types it does
// not know, so a record type added later needs no new ProtocolVersion
// (which would split the cluster during an upgrade).
const (
	metaRecordUser byte = 1 // User: a count, then sorted key, value pairs
	// 2 was the catalog digest of protocol 2, which rode in metadata.
	metaRecordProtocols byte = 3 // MinProtocol: 1 byte (Protocol is the maximum)
	metaRecordGen       byte = 4 // Gen: a uvarint
)

// EncodeMeta encodes node metadata. User metadata is encoded with its
// keys sorted, so that equal metadata encodes to equal bytes.
func EncodeMeta(m NodeMeta) []byte {
	b := []byte{metaMagic, m.Protocol}
	b = binary.AppendUvarint(b, m.Epoch)
	b = appendString(b, m.Datacenter)
	b = appendString(b, m.Version)
	if len(m.User) > 0 {
		var rec []byte
		rec = binary.AppendUvarint(rec, uint64(len(m.User)))
		for _, k := range sortedKeys(m.User) {
			rec = appendString(rec, k)
			rec = appendString(rec, m.User[k])
		}
		b = append(b, metaRecordUser)
		b = binary.AppendUvarint(b, uint64(len(rec)))
		b = append(b, rec...)
	}
	if m.MinProtocol != 0 {
		b = append(b, metaRecordProtocols, 1, m.MinProtocol)
	}
	if m.Gen != 0 {
		gen := binary.AppendUvarint(nil, m.Gen)
		b = append(b, metaRecordGen, byte(len(gen)))
		b = append(b, gen...)
	}
	return b
}

// DecodeMeta decodes node metadata; anything that is not a Shoal agent's
// is an error.
func DecodeMeta(b []byte) (NodeMeta, error) {
	if len(b) < 2 || b[0] != metaMagic {
		return NodeMeta{}, fmt.Errorf("%w: node metadata is not a Shoal agent's", ErrMalformed)
	}
	m := NodeMeta{Protocol: b[1]}
	d := decoder{buf: b[2:]}
	m.Epoch = d.uvarint("epoch")
	m.Datacenter = d.string("datacenter")
	m.Version = d.string("version")
	seen := map[byte]bool{}
	for d.err == nil && len(d.buf) > 0 {
		typ := d.byte("metadata record type")
		n := d.uvarint("metadata record length")
		if d.err == nil && n > uint64(len(d.buf)) {
			d.fail("metadata record of %d bytes exceeds the metadata", n)
		}
		if d.err != nil {
			break
		}
		rec := decoder{buf: d.buf[:n]}
		d.buf = d.buf[n:]
		if seen[typ] {
			d.fail("metadata record %d given twice", typ)
			break
		}
		seen[typ] = true
		switch typ {
		case metaRecordUser:
			m.User = rec.userMeta()
			d.err = rec.err
		case metaRecordProtocols:
			if len(rec.buf) != 1 || rec.buf[0] == 0 || rec.buf[0] > m.Protocol {
				d.fail("bad protocol range record")
				break
			}
			m.MinProtocol = rec.buf[0]
		case metaRecordGen:
			m.Gen = rec.uvarint("gen")
			if rec.err == nil && (len(rec.buf) != 0 || m.Gen == 0) {
				rec.fail("bad generation record")
			}
			d.err = rec.err
		default:
			// A later version's record: skipped, so that a newer agent
			// is not refused.
		}
	}
	if d.err != nil {
		return NodeMeta{}, d.err
	}
	return m, nil
}

// userMeta decodes the record of user node metadata: every pair valid,
// keys in increasing order (so none twice), no byte left over.
func (d *decoder) userMeta() map[string]string {
	count := d.count("node meta pairs", catalog.MaxNodeMetaPairs)
	if d.err != nil || count == 0 {
		return nil
	}
	m := make(map[string]string, count)
	prev := ""
	for i := range count {
		k := d.string("node meta key")
		v := d.string("node meta value")
		if d.err != nil {
			return nil
		}
		if i > 0 && k <= prev {
			d.fail("node meta keys out of order at %q", k)
			return nil
		}
		if err := catalog.ValidateNodeMetaPair("node meta", k, v); err != nil {
			d.fail("%v", err)
			return nil
		}
		m[k], prev = v, k
	}
	if len(d.buf) > 0 {
		d.fail("%d bytes after the node meta", len(d.buf))
		return nil
	}
	return m
}

// nodeMetaMap is the Meta of a node as the catalog shows it: its user
// metadata and "shoal-version".
func nodeMetaMap(m NodeMeta) map[string]string {
	out := make(map[string]string, len(m.User)+2)
	maps.Copy(out, m.User)
	out[VersionMetaKey] = m.Version
	return out
}

// VersionMetaKey is the key of a node's Meta that holds the Shoal
// version it runs.
const VersionMetaKey = catalog.ReservedNodeMetaPrefix + "version"

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
