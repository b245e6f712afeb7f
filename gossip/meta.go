package gossip

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// NodeMeta is what a Shoal agent puts in its memberlist node metadata:
// small facts only (memberlist allows 512 bytes), never the catalog.
type NodeMeta struct {
	Protocol   uint8  // ProtocolVersion of the agent
	Epoch      uint64 // the agent's current epoch: a restart announces a new one
	Datacenter string
	Version    string // Shoal's version, for `shoal members`
}

const metaMagic = 's'

// EncodeMeta encodes node metadata.
func EncodeMeta(m NodeMeta) []byte {
	b := []byte{metaMagic, m.Protocol}
	b = binary.AppendUvarint(b, m.Epoch)
	b = appendString(b, m.Datacenter)
	b = appendString(b, m.Version)
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
	if d.err != nil {
		return NodeMeta{}, d.err
	}
	return m, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
