package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/shoal-sd/shoal/catalog"
)

// ProtocolVersion is the version of Shoal's gossip messages. A receiver
// refuses messages of a version it does not speak. Version 2 added check
// entries.
const ProtocolVersion = 2

// Message types: the first byte of every Shoal message.
const (
	msgEntry    byte = 1 // one catalog entry (UDP gossip)
	msgSnapshot byte = 2 // a whole catalog (TCP push/pull)
	msgLeave    byte = 3 // a node announces its graceful departure
)

// Decoding limits: a message that claims more than these is refused before
// anything is allocated for it.
const (
	maxString   = 1 << 16
	maxTags     = catalog.MaxTags
	maxMeta     = catalog.MaxMetaPairs
	maxSnapshot = 4 << 20 // entries or origins in one snapshot
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed gossip message")

// EncodeEntry frames one entry as a gossip message.
func EncodeEntry(e catalog.Entry) []byte {
	n := catalog.EncodedSizeBound(e.Origin, e.Service)
	if e.Kind == catalog.KindCheck {
		n = catalog.CheckEncodedSizeBound(e.Origin, e.Check)
	}
	b := make([]byte, 0, 64+n)
	b = append(b, msgEntry, ProtocolVersion)
	return appendEntry(b, e)
}

// EncodeSnapshot frames a catalog snapshot for push/pull.
func EncodeSnapshot(s catalog.Snapshot) []byte {
	b := make([]byte, 0, 64+100*len(s.Entries))
	b = append(b, msgSnapshot, ProtocolVersion)
	b = appendString(b, s.From)
	b = binary.AppendUvarint(b, uint64(len(s.Origins)))
	for _, o := range s.Origins {
		b = appendString(b, o.Name)
		b = binary.AppendUvarint(b, o.Epoch)
		b = binary.AppendUvarint(b, o.Counter)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Entries)))
	for _, e := range s.Entries {
		b = appendEntry(b, e)
	}
	return b
}

// Entry flags.
const (
	flagDeleted byte = 1
	flagCheck   byte = 2 // a check entry (else a service entry)
	flagDamped  byte = 1 // in a check's own flags byte
)

func appendEntry(b []byte, e catalog.Entry) []byte {
	s := e.Service
	b = appendString(b, e.Origin)
	b = binary.AppendUvarint(b, e.Version.Epoch)
	b = binary.AppendUvarint(b, e.Version.Counter)
	var flags byte
	if e.Deleted {
		flags |= flagDeleted
	}
	if e.Kind == catalog.KindCheck {
		flags |= flagCheck
	}
	b = append(b, flags)
	if e.Kind == catalog.KindCheck {
		return appendCheck(b, e)
	}
	b = appendString(b, s.ID)
	b = appendString(b, s.Name)
	if e.Deleted {
		return b
	}
	b = appendString(b, s.Address)
	b = binary.AppendUvarint(b, uint64(s.Port))
	b = binary.AppendUvarint(b, uint64(s.Weights.Passing))
	b = binary.AppendUvarint(b, uint64(s.Weights.Warning))
	b = binary.AppendUvarint(b, uint64(len(s.Tags)))
	for _, t := range s.Tags {
		b = appendString(b, t)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Meta)))
	for _, k := range sortedKeys(s.Meta) {
		b = appendString(b, k)
		b = appendString(b, s.Meta[k])
	}
	return b
}

func appendCheck(b []byte, e catalog.Entry) []byte {
	c := e.Check
	b = appendString(b, c.ID)
	b = appendString(b, c.ServiceID)
	if e.Deleted {
		return b
	}
	b = appendString(b, c.Name)
	b = appendString(b, c.Type)
	var flags byte
	if c.Damped {
		flags |= flagDamped
	}
	b = append(b, byte(c.Status), flags)
	b = appendString(b, c.Notes)
	return appendString(b, c.Output)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// EncodeLeave frames a node's announcement that it is leaving, in the
// given epoch.
func EncodeLeave(l Leave) []byte {
	b := []byte{msgLeave, ProtocolVersion}
	b = appendString(b, l.Node)
	return binary.AppendUvarint(b, l.Epoch)
}

// Leave is a node's announcement of its graceful departure.
type Leave struct {
	Node  string
	Epoch uint64
}

// Message is a decoded Shoal message: the field Type names is set.
type Message struct {
	Type     byte
	Entry    catalog.Entry
	Snapshot catalog.Snapshot
	Leave    Leave
}

// Decode parses one Shoal message. It never panics on any input and never
// allocates more than the input can justify.
func Decode(buf []byte) (Message, error) {
	if len(buf) < 2 {
		return Message{}, fmt.Errorf("%w: %d bytes is shorter than the 2-byte header", ErrMalformed, len(buf))
	}
	if buf[1] != ProtocolVersion {
		return Message{}, fmt.Errorf("%w: protocol version %d, this agent speaks %d", ErrMalformed, buf[1], ProtocolVersion)
	}
	d := decoder{buf: buf[2:]}
	m := Message{Type: buf[0]}
	switch buf[0] {
	case msgEntry:
		m.Entry = d.entry()
	case msgSnapshot:
		m.Snapshot = d.snapshot()
	case msgLeave:
		m.Leave.Node = d.string("node")
		m.Leave.Epoch = d.uvarint("epoch")
		if d.err == nil && m.Leave.Node == "" {
			d.fail("leave without a node name")
		}
	default:
		return Message{}, fmt.Errorf("%w: unknown message type %d", ErrMalformed, buf[0])
	}
	if d.err == nil && len(d.buf) != 0 {
		d.fail("%d trailing bytes", len(d.buf))
	}
	if d.err != nil {
		return Message{}, d.err
	}
	return m, nil
}

type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	d.buf = nil
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail("bad varint for %s", what)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// count reads a length that must not exceed max, nor the bytes left (every
// counted item takes at least one byte).
func (d *decoder) count(what string, max int) int {
	v := d.uvarint(what)
	if v > uint64(max) || v > uint64(len(d.buf)) {
		d.fail("%s count %d exceeds the limit", what, v)
		return 0
	}
	return int(v)
}

func (d *decoder) int(what string, max int) int {
	v := d.uvarint(what)
	if v > uint64(max) {
		d.fail("%s %d exceeds %d", what, v, max)
		return 0
	}
	return int(v)
}

func (d *decoder) string(what string) string {
	n := d.uvarint(what)
	if d.err != nil {
		return ""
	}
	if n > maxString || n > uint64(len(d.buf)) {
		d.fail("%s length %d exceeds the message", what, n)
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

func (d *decoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) == 0 {
		d.fail("missing %s", what)
		return 0
	}
	c := d.buf[0]
	d.buf = d.buf[1:]
	return c
}

func (d *decoder) entry() catalog.Entry {
	var e catalog.Entry
	e.Origin = d.string("origin")
	e.Version.Epoch = d.uvarint("epoch")
	e.Version.Counter = d.uvarint("counter")
	flags := d.byte("flags")
	if flags&^(flagDeleted|flagCheck) != 0 {
		d.fail("unknown flags %#x", flags)
	}
	e.Deleted = flags&flagDeleted != 0
	if flags&flagCheck != 0 {
		e.Kind = catalog.KindCheck
		d.check(&e)
		return e
	}
	e.Service.ID = d.string("service id")
	e.Service.Name = d.string("service name")
	if d.err == nil {
		if catalog.ValidateName("origin", e.Origin) != nil || e.Service.ID == "" || len(e.Service.ID) > catalog.MaxIDLen {
			d.fail("entry with a bad origin or service id")
		}
	}
	if e.Deleted {
		if d.err == nil && catalog.ValidateName("service name", e.Service.Name) != nil {
			d.fail("tombstone with a bad service name")
		}
		return e
	}
	s := &e.Service
	s.Address = d.string("address")
	s.Port = d.int("port", 65535)
	s.Weights.Passing = d.int("passing weight", catalog.MaxWeight)
	s.Weights.Warning = d.int("warning weight", catalog.MaxWeight)
	if n := d.count("tags", maxTags); n > 0 {
		s.Tags = make([]string, n)
		for i := range s.Tags {
			s.Tags[i] = d.string("tag")
		}
	}
	if n := d.count("meta", maxMeta); n > 0 {
		s.Meta = make(map[string]string, n)
		for i := 0; i < n; i++ {
			k := d.string("meta key")
			s.Meta[k] = d.string("meta value")
		}
	}
	if d.err == nil {
		// A peer's entry passes the same checks as a local registration:
		// nothing invalid enters the catalog, whoever sent it.
		if err := s.Validate(); err != nil {
			d.fail("entry %s/%s: %v", e.Origin, s.ID, err)
		}
	}
	return e
}

func (d *decoder) check(e *catalog.Entry) {
	c := &e.Check
	c.ID = d.string("check id")
	c.ServiceID = d.string("check service id")
	if d.err == nil && (catalog.ValidateName("origin", e.Origin) != nil || c.ID == "" || len(c.ID) > catalog.MaxCheckIDLen || len(c.ServiceID) > catalog.MaxIDLen) {
		d.fail("check entry with a bad origin, check id or service id")
	}
	if e.Deleted {
		return
	}
	c.Name = d.string("check name")
	c.Type = d.string("check type")
	c.Status = catalog.Health(d.byte("check status"))
	flags := d.byte("check flags")
	if flags&^flagDamped != 0 {
		d.fail("unknown check flags %#x", flags)
	}
	c.Damped = flags&flagDamped != 0
	c.Notes = d.string("check notes")
	c.Output = d.string("check output")
	if d.err == nil {
		if err := c.Validate(); err != nil {
			d.fail("check %s/%s: %v", e.Origin, c.ID, err)
		}
	}
}

func (d *decoder) snapshot() catalog.Snapshot {
	var s catalog.Snapshot
	s.From = d.string("from")
	// Slices grow as items decode: a count only says what the sender
	// claims, and must not reserve memory the bytes cannot back.
	n := d.count("origins", maxSnapshot)
	for i := 0; i < n && d.err == nil; i++ {
		o := catalog.OriginState{Name: d.string("origin name")}
		o.Epoch = d.uvarint("origin epoch")
		o.Counter = d.uvarint("origin counter")
		if d.err == nil && catalog.ValidateName("origin", o.Name) != nil {
			d.fail("origin with a bad name")
		}
		s.Origins = append(s.Origins, o)
	}
	n = d.count("entries", maxSnapshot)
	for i := 0; i < n && d.err == nil; i++ {
		s.Entries = append(s.Entries, d.entry())
	}
	return s
}
