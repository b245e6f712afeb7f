package catalog

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Health is the state of a check, and of an instance (the worst of its
// checks). The values are ordered from best to worst so that the worse of
// two is the larger; the zero value means "not set".
type Health uint8

// Health states, as Consul names them.
const (
	HealthPassing  Health = 1
	HealthWarning  Health = 2
	HealthCritical Health = 3
)

// String is Consul's name of the state: "passing", "warning", "critical".
func (h Health) String() string {
	switch h {
	case HealthPassing:
		return "passing"
	case HealthWarning:
		return "warning"
	case HealthCritical:
		return "critical"
	}
	return fmt.Sprintf("health(%d)", uint8(h))
}

// Valid reports whether h is one of the three states.
func (h Health) Valid() bool { return h >= HealthPassing && h <= HealthCritical }

// ParseHealth reads Consul's name of a state.
func ParseHealth(s string) (Health, error) {
	switch s {
	case "passing":
		return HealthPassing, nil
	case "warning":
		return HealthWarning, nil
	case "critical":
		return HealthCritical, nil
	}
	return 0, fmt.Errorf("%q is not a health state: use passing, warning or critical", s)
}

// Worse returns the worse of two states (an unset state loses to any).
func Worse(a, b Health) Health { return max(a, b) }

// Check is the gossiped state of one health check of an origin: bound to
// one of the origin's services (ServiceID) or to the node itself. What the
// check runs and how often stays with the agent that runs it; the catalog
// carries only what every agent needs to answer health queries.
type Check struct {
	ID        string // unique among the origin's checks
	Name      string
	ServiceID string // empty for a node check
	Type      string // "http", "tcp", "ttl", "grpc", "maintenance", …
	Status    Health
	Notes     string // operator's note, as registered
	Output    string // the head of the last output (see TruncateOutput)
	Damped    bool   // held at its worse state by flap damping
}

// Limits on one check, so that a check entry fits one gossip packet beside
// memberlist's framing, like a service entry.
const (
	MaxCheckIDLen   = MaxIDLen + len(ServiceMaintenancePrefix) // room for "service:" and maintenance IDs of any service ID
	MaxCheckNameLen = 128
	MaxCheckTypeLen = 16
	MaxNotesLen     = 256
	MaxOutputHead   = 200 // bytes of output gossiped; agents keep up to 4 KB locally
)

// Reserved check IDs: maintenance mode is a critical check, as in Consul,
// so every reader treats it like any other failing check.
const (
	NodeMaintenanceID         = "_node_maintenance"
	ServiceMaintenancePrefix  = "_service_maintenance:"
	MaintenanceType           = "maintenance"
	checkFixedFields          = 40 // versions, status, flags, counts
	maxCheckEncodedSizeStatic = checkFixedFields + MaxNameLen + MaxCheckIDLen + MaxCheckNameLen +
		MaxIDLen + MaxCheckTypeLen + MaxNotesLen + MaxOutputHead + 7*2
)

// ServiceMaintenanceID is the ID of the maintenance check of a service.
func ServiceMaintenanceID(serviceID string) string { return ServiceMaintenancePrefix + serviceID }

// TruncateOutput cuts s to at most n bytes without splitting a UTF-8
// character.
func TruncateOutput(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// Clone returns a copy (a Check holds no shared references; Clone exists
// for symmetry with Service).
func (c Check) Clone() Check { return c }

// Validate checks the fields against the limits above and returns a
// *FieldError naming the first bad one, with the JSON names of Consul's
// check fields.
func (c Check) Validate() error {
	if c.ID == "" {
		return fieldErr("CheckID", "must not be empty")
	}
	if len(c.ID) > MaxCheckIDLen {
		return fieldErr("CheckID", "is %d bytes long; the limit is %d", len(c.ID), MaxCheckIDLen)
	}
	if strings.Contains(c.ID, "/") || !printableSpace(c.ID) || strings.ContainsAny(c.ID, " \t") {
		return fieldErr("CheckID", "%q must be printable text without spaces or '/'", c.ID)
	}
	if c.Name == "" {
		return fieldErr("Name", "must not be empty")
	}
	if len(c.Name) > MaxCheckNameLen || !printableSpace(c.Name) {
		return fieldErr("Name", "must be printable text of at most %d bytes", MaxCheckNameLen)
	}
	if c.ServiceID != "" && (len(c.ServiceID) > MaxIDLen || !printable(c.ServiceID) || strings.Contains(c.ServiceID, "/")) {
		return fieldErr("ServiceID", "%q is not a valid service ID", c.ServiceID)
	}
	if len(c.Type) > MaxCheckTypeLen || !printable(c.Type) && c.Type != "" {
		return fieldErr("Type", "must be a short word of at most %d bytes", MaxCheckTypeLen)
	}
	if !c.Status.Valid() {
		return fieldErr("Status", "must be passing, warning or critical")
	}
	if len(c.Notes) > MaxNotesLen || !printableSpace(c.Notes) {
		return fieldErr("Notes", "must be printable text of at most %d bytes", MaxNotesLen)
	}
	if len(c.Output) > MaxOutputHead || !utf8.ValidString(c.Output) {
		return fieldErr("Output", "must be UTF-8 of at most %d bytes (truncate it first)", MaxOutputHead)
	}
	return nil
}

// CheckEncodedSizeBound is an upper bound on the bytes one check entry
// takes in the gossip wire format; the gossip codec tests hold the codec
// to it.
func CheckEncodedSizeBound(origin string, c Check) int {
	return checkFixedFields + len(origin) + len(c.ID) + len(c.Name) + len(c.ServiceID) +
		len(c.Type) + len(c.Notes) + len(c.Output) + 7*2
}

// The largest check entry must fit like the largest service entry.
var _ = [1]int{}[max(0, maxCheckEncodedSizeStatic-MaxEncodedSize)]
