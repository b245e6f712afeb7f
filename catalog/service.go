package catalog

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Service is one instance of a service, as an app registered it with its
// local agent.
type Service struct {
	ID      string            // unique among the origin's services
	Name    string            // the service's DNS-safe name
	Tags    []string          // free-form labels, order kept
	Address string            // empty means the node's address
	Port    int               // 1–65535
	Meta    map[string]string // small key/value facts
	Weights Weights           // DNS SRV weights by health state
}

// Weights are the SRV weights of an instance while it is passing or warning.
type Weights struct {
	Passing int
	Warning int
}

// Limits on one service. They keep every instance inside one gossip packet
// (memberlist leaves about 1,400 bytes a UDP packet; a user message must fit
// beside memberlist's own framing), which is tighter than Consul's limits.
const (
	MaxNameLen       = 63  // a DNS label
	MaxIDLen         = 128 // printable, no '/'
	MaxTags          = 32
	MaxTagLen        = 128
	MaxMetaPairs     = 32
	MaxMetaKeyLen    = 64
	MaxMetaValueLen  = 256
	MaxAddressLen    = 255
	MaxWeight        = 65535
	MaxEncodedSize   = 1000 // bytes of one encoded entry, see EncodedSizeBound
	entryFixedFields = 40   // origin-independent framing: versions, port, weights, counts
)

// FieldError is a validation failure of one named field. Field uses the
// JSON name the HTTP API uses ("Name", "Tags[2]", "Meta[env]").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// ErrInvalid is matched (errors.Is) by every FieldError.
var ErrInvalid = errors.New("invalid service")

// Is makes errors.Is(err, ErrInvalid) true for field errors.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Normalize fills defaults the way Consul does: an empty ID becomes the
// name, zero weights become passing 1 / warning 1. It returns a copy with
// its own tag slice and meta map, so the caller's values are never shared.
func (s Service) Normalize() Service {
	if s.ID == "" {
		s.ID = s.Name
	}
	if s.Weights.Passing == 0 && s.Weights.Warning == 0 {
		s.Weights = Weights{Passing: 1, Warning: 1}
	}
	return s.Clone()
}

// Clone returns a deep copy.
func (s Service) Clone() Service {
	if s.Tags != nil {
		s.Tags = append([]string(nil), s.Tags...)
	}
	if s.Meta != nil {
		m := make(map[string]string, len(s.Meta))
		for k, v := range s.Meta {
			m[k] = v
		}
		s.Meta = m
	}
	return s
}

// Validate checks a normalized service against the limits above and returns
// a *FieldError naming the first bad field.
func (s Service) Validate() error {
	if err := ValidateName("Name", s.Name); err != nil {
		return err
	}
	if s.ID == "" {
		return fieldErr("ID", "must not be empty")
	}
	if len(s.ID) > MaxIDLen {
		return fieldErr("ID", "is %d bytes long; the limit is %d", len(s.ID), MaxIDLen)
	}
	if strings.Contains(s.ID, "/") {
		return fieldErr("ID", "must not contain '/'")
	}
	if !printable(s.ID) {
		return fieldErr("ID", "must be printable ASCII without spaces")
	}
	if s.Port < 1 || s.Port > 65535 {
		return fieldErr("Port", "%d is out of range 1-65535", s.Port)
	}
	if err := validateAddress(s.Address); err != nil {
		return err
	}
	if len(s.Tags) > MaxTags {
		return fieldErr("Tags", "has %d tags; the limit is %d", len(s.Tags), MaxTags)
	}
	for i, t := range s.Tags {
		f := fmt.Sprintf("Tags[%d]", i)
		if t == "" {
			return fieldErr(f, "must not be empty")
		}
		if len(t) > MaxTagLen {
			return fieldErr(f, "is %d bytes long; the limit is %d", len(t), MaxTagLen)
		}
		if !printableSpace(t) {
			return fieldErr(f, "must be printable text")
		}
	}
	if len(s.Meta) > MaxMetaPairs {
		return fieldErr("Meta", "has %d keys; the limit is %d", len(s.Meta), MaxMetaPairs)
	}
	keys := make([]string, 0, len(s.Meta))
	for k := range s.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || len(k) > MaxMetaKeyLen || !metaKey(k) {
			return fieldErr("Meta", "key %q must be 1-%d characters of letters, digits, '_' or '-'", k, MaxMetaKeyLen)
		}
		if v := s.Meta[k]; len(v) > MaxMetaValueLen {
			return fieldErr("Meta["+k+"]", "is %d bytes long; the limit is %d", len(v), MaxMetaValueLen)
		} else if !printableSpace(v) {
			return fieldErr("Meta["+k+"]", "must be printable text")
		}
	}
	if s.Weights.Passing < 1 || s.Weights.Passing > MaxWeight {
		return fieldErr("Weights.Passing", "%d is out of range 1-%d", s.Weights.Passing, MaxWeight)
	}
	if s.Weights.Warning < 0 || s.Weights.Warning > MaxWeight {
		return fieldErr("Weights.Warning", "%d is out of range 0-%d", s.Weights.Warning, MaxWeight)
	}
	// The origin is a node name of at most MaxNameLen bytes.
	if n := EncodedSizeBound("", s) + MaxNameLen; n > MaxEncodedSize {
		return fieldErr("Service", "is %d bytes encoded; one instance must fit in %d bytes (shorten Tags or Meta)", n, MaxEncodedSize)
	}
	return nil
}

// ValidateName checks a DNS-safe name: 1–63 letters, digits and hyphens,
// not starting or ending with a hyphen. field names the field in the error.
func ValidateName(field, name string) error {
	if name == "" {
		return fieldErr(field, "must not be empty")
	}
	if len(name) > MaxNameLen {
		return fieldErr(field, "is %d characters long; the limit is %d", len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
		if !ok {
			return fieldErr(field, "%q is not DNS-safe: use letters, digits and '-'", name)
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return fieldErr(field, "%q must not start or end with '-'", name)
	}
	return nil
}

func validateAddress(a string) error {
	if a == "" {
		return nil
	}
	if len(a) > MaxAddressLen {
		return fieldErr("Address", "is %d bytes long; the limit is %d", len(a), MaxAddressLen)
	}
	if net.ParseIP(a) != nil {
		return nil
	}
	// A host name: dot-separated DNS labels.
	for _, label := range strings.Split(strings.TrimSuffix(a, "."), ".") {
		if err := ValidateName("Address", label); err != nil {
			return fieldErr("Address", "%q is neither an IP address nor a host name", a)
		}
	}
	return nil
}

// EncodedSizeBound is an upper bound on the bytes one entry of s from the
// named origin takes in the gossip wire format (every string is at most its
// length plus a 2-byte length prefix, every integer at most 10 bytes). The
// gossip codec tests hold the codec to it.
func EncodedSizeBound(origin string, s Service) int {
	n := entryFixedFields + len(origin) + len(s.ID) + len(s.Name) + len(s.Address) + 4*2
	for _, t := range s.Tags {
		n += len(t) + 2
	}
	for k, v := range s.Meta {
		n += len(k) + len(v) + 4
	}
	return n
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// printableSpace allows spaces and any valid UTF-8 but control characters
// (C0, DEL and C1).
func printableSpace(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

func metaKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// NodeID is the stable UUID-formatted ID of the named node, derived from its
// name, for API fields where Consul shows a node ID.
func NodeID(name string) string {
	id := NodeIDBytes(name)
	return string(id[:])
}

// NodeIDBytes is NodeID without allocating, for hot read paths where every
// instance carries its node's ID. It is the SHA-256 of "shoal-node:" and
// the name, laid out as a version 5 (name-based) UUID, so the same name
// gets the same ID on every agent.
func NodeIDBytes(name string) [36]byte {
	const prefix = "shoal-node:"
	var in [len(prefix) + MaxNameLen]byte
	sum := sha256.Sum256(append(append(in[:0], prefix...), name...))
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	const hexDigits = "0123456789abcdef"
	var id [36]byte
	j := 0
	for i := 0; i < 16; i++ {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			id[j] = '-'
			j++
		}
		id[j], id[j+1] = hexDigits[sum[i]>>4], hexDigits[sum[i]&0x0f]
		j += 2
	}
	return id
}
