package catalog

import (
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits of a node's user metadata (an agent's node_meta), as Consul has
// them. Everything must also fit memberlist's 512 bytes of node metadata
// beside the agent's own facts, which the agent checks at start.
const (
	MaxNodeMetaPairs    = 32
	MaxNodeMetaKeyLen   = 128
	MaxNodeMetaValueLen = 512
)

// ReservedNodeMetaPrefix starts the node metadata keys Shoal sets itself
// ("shoal-version"); user metadata may not use it, as Consul reserves
// "consul-".
const ReservedNodeMetaPrefix = "shoal-"

// ValidateNodeMeta checks a node's user metadata: at most
// MaxNodeMetaPairs pairs, each valid for ValidateNodeMetaPair. field names
// the setting in errors.
func ValidateNodeMeta(field string, m map[string]string) error {
	if len(m) > MaxNodeMetaPairs {
		return fieldErr(field, "has %d pairs; the limit is %d", len(m), MaxNodeMetaPairs)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) { // the first bad key, always the same
		if err := ValidateNodeMetaPair(field, k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

// ValidateNodeMetaPair checks one pair of node metadata: the key is 1 to
// MaxNodeMetaKeyLen letters, digits, '_' and '-' and does not start with
// ReservedNodeMetaPrefix; the value is UTF-8 of at most
// MaxNodeMetaValueLen bytes.
func ValidateNodeMetaPair(field, key, value string) error {
	switch {
	case key == "":
		return fieldErr(field, "a key is empty")
	case len(key) > MaxNodeMetaKeyLen:
		return fieldErr(field, "key %.20q… is %d bytes long; the limit is %d", key, len(key), MaxNodeMetaKeyLen)
	case strings.HasPrefix(key, ReservedNodeMetaPrefix):
		return fieldErr(field, "key %q: the prefix %q is reserved for Shoal's own keys", key, ReservedNodeMetaPrefix)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fieldErr(field, "key %q: use letters, digits, '_' and '-'", key)
		}
	}
	if len(value) > MaxNodeMetaValueLen {
		return fieldErr(field, "value of %q is %d bytes long; the limit is %d", key, len(value), MaxNodeMetaValueLen)
	}
	if !utf8.ValidString(value) {
		return fieldErr(field, "value of %q is not valid UTF-8", key)
	}
	return nil
}
