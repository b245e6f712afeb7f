package api

// AgentWeights are an instance's DNS SRV weights while passing or warning.
type AgentWeights struct {
	Passing int
	Warning int
}

// AgentService is a service instance as /v1/agent/services and the
// Service field of /v1/health/service show it.
type AgentService struct {
	Kind              string `json:",omitempty"`
	ID                string
	Service           string
	Tags              []string
	Meta              map[string]string
	Port              int
	Address           string
	TaggedAddresses   map[string]ServiceAddress `json:",omitempty"`
	Weights           AgentWeights
	EnableTagOverride bool
	CreateIndex       uint64 `json:",omitempty"`
	ModifyIndex       uint64 `json:",omitempty"`
	ContentHash       string `json:",omitempty"`
	Datacenter        string `json:",omitempty"`
}

// ServiceAddress is one of an instance's tagged addresses.
type ServiceAddress struct {
	Address string
	Port    int
}

// AgentServiceCheck is a check definition, as Consul's clients send it
// inside a service registration (Check, Checks) and, inline, in
// AgentCheckRegistration. Shoal runs HTTP, TCP, gRPC and TTL checks; the
// other kinds Consul knows (ScriptArgs, DockerContainerID with Shell,
// H2PING, AliasNode and AliasService) are accepted by the decoder so that
// the agent can refuse them by name as not supported.
type AgentServiceCheck struct {
	CheckID                        string              `json:",omitempty"`
	Name                           string              `json:",omitempty"`
	Args                           []string            `json:"ScriptArgs,omitempty"`
	DockerContainerID              string              `json:",omitempty"`
	Shell                          string              `json:",omitempty"`
	Interval                       string              `json:",omitempty"`
	Timeout                        string              `json:",omitempty"`
	TTL                            string              `json:",omitempty"`
	HTTP                           string              `json:",omitempty"`
	Header                         map[string][]string `json:",omitempty"`
	Method                         string              `json:",omitempty"`
	Body                           string              `json:",omitempty"`
	TCP                            string              `json:",omitempty"`
	GRPC                           string              `json:",omitempty"`
	GRPCUseTLS                     bool                `json:",omitempty"`
	H2PING                         string              `json:",omitempty"`
	AliasNode                      string              `json:",omitempty"`
	AliasService                   string              `json:",omitempty"`
	Status                         string              `json:",omitempty"`
	Notes                          string              `json:",omitempty"`
	TLSServerName                  string              `json:",omitempty"`
	TLSSkipVerify                  bool                `json:",omitempty"`
	DeregisterCriticalServiceAfter string              `json:",omitempty"`
	SuccessBeforePassing           int                 `json:",omitempty"`
	FailuresBeforeWarning          int                 `json:",omitempty"`
	FailuresBeforeCritical         int                 `json:",omitempty"`
	OutputMaxSize                  int                 `json:",omitempty"`
}

// AgentCheckRegistration is the body of PUT /v1/agent/check/register.
// As in Consul, the check's fields sit inline beside ID, Name, Notes and
// ServiceID; the outer Name and Notes shadow the embedded ones, so JSON
// "Name" and "Notes" land in the outer fields.
type AgentCheckRegistration struct {
	ID        string `json:",omitempty"`
	Name      string `json:",omitempty"`
	Notes     string `json:",omitempty"`
	ServiceID string `json:",omitempty"`
	AgentServiceCheck
}

// AgentServiceRegistration is the body of PUT /v1/agent/service/register.
type AgentServiceRegistration struct {
	Kind              string                    `json:",omitempty"`
	ID                string                    `json:",omitempty"`
	Name              string                    `json:",omitempty"`
	Tags              []string                  `json:",omitempty"`
	Port              int                       `json:",omitempty"`
	Address           string                    `json:",omitempty"`
	TaggedAddresses   map[string]ServiceAddress `json:",omitempty"`
	EnableTagOverride bool                      `json:",omitempty"`
	Meta              map[string]string         `json:",omitempty"`
	Weights           *AgentWeights             `json:",omitempty"`
	Check             *AgentServiceCheck        `json:",omitempty"`
	Checks            []*AgentServiceCheck      `json:",omitempty"`
}

// AgentMember is a gossip member as /v1/agent/members shows it. Status
// uses Serf's numbers: see the Member* constants.
type AgentMember struct {
	Name        string
	Addr        string
	Port        uint16
	Tags        map[string]string
	Status      int
	ProtocolMin uint8
	ProtocolMax uint8
	ProtocolCur uint8
	DelegateMin uint8
	DelegateMax uint8
	DelegateCur uint8
	// ShoalLastHeardMs (Shoal) is how many milliseconds ago the agent
	// last heard from this member; see ServiceEntry.
	ShoalLastHeardMs *int64 `json:",omitempty"`
}

// Member statuses, as Consul (and Serf) number them.
const (
	MemberNone    = 0
	MemberAlive   = 1
	MemberLeaving = 2
	MemberLeft    = 3
	MemberFailed  = 4
)

// MemberStatusString names a member status the way `consul members` does.
func MemberStatusString(s int) string {
	switch s {
	case MemberAlive:
		return "alive"
	case MemberLeaving:
		return "leaving"
	case MemberLeft:
		return "left"
	case MemberFailed:
		return "failed"
	}
	return "none"
}

// Node is a node of the catalog.
type Node struct {
	ID              string
	Node            string
	Address         string
	Datacenter      string
	TaggedAddresses map[string]string
	Meta            map[string]string
	CreateIndex     uint64
	ModifyIndex     uint64
}

// CatalogService is one instance as /v1/catalog/service/:name shows it.
type CatalogService struct {
	ID                       string
	Node                     string
	Address                  string
	Datacenter               string
	TaggedAddresses          map[string]string
	NodeMeta                 map[string]string
	ServiceID                string
	ServiceName              string
	ServiceAddress           string
	ServiceTaggedAddresses   map[string]ServiceAddress `json:",omitempty"`
	ServiceTags              []string
	ServiceMeta              map[string]string
	ServicePort              int
	ServiceWeights           AgentWeights
	ServiceEnableTagOverride bool
	CreateIndex              uint64
	ModifyIndex              uint64
	// ShoalLastHeardMs (Shoal): see ServiceEntry.
	ShoalLastHeardMs *int64 `json:",omitempty"`
}

// HealthCheck is one check's state.
type HealthCheck struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	Notes       string
	Output      string
	ServiceID   string
	ServiceName string
	ServiceTags []string
	Type        string
	CreateIndex uint64
	ModifyIndex uint64
	Damped      bool `json:",omitempty"` // Shoal: held at its worse state by flap damping
}

// AgentCheck is one check as GET /v1/agent/checks shows it (a map from
// check ID to AgentCheck).
type AgentCheck struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	Notes       string
	Output      string
	ServiceID   string
	ServiceName string
	ServiceTags []string
	Type        string
	Interval    string
	Timeout     string
	ExposedPort int
	Definition  HealthCheckDefinition
	Damped      bool `json:",omitempty"` // Shoal: held at its worse state by flap damping
}

// HealthCheckDefinition is what a check runs, as the Definition field of
// AgentCheck. Durations are Go duration strings ("10s") under the names
// Consul's Go client reads (it also accepts them as Interval, Timeout and
// DeregisterCriticalServiceAfter, the names Consul's agent writes); zero
// ones are left out.
type HealthCheckDefinition struct {
	HTTP                                   string              `json:",omitempty"`
	Header                                 map[string][]string `json:",omitempty"`
	Method                                 string              `json:",omitempty"`
	Body                                   string              `json:",omitempty"`
	TLSServerName                          string              `json:",omitempty"`
	TLSSkipVerify                          bool                `json:",omitempty"`
	TCP                                    string              `json:",omitempty"`
	GRPC                                   string              `json:",omitempty"`
	GRPCUseTLS                             bool                `json:",omitempty"`
	IntervalDuration                       string              `json:",omitempty"`
	TimeoutDuration                        string              `json:",omitempty"`
	TTLDuration                            string              `json:",omitempty"`
	DeregisterCriticalServiceAfterDuration string              `json:",omitempty"`
}

// Health check states.
const (
	HealthPassing  = "passing"
	HealthWarning  = "warning"
	HealthCritical = "critical"
	// HealthAny asks HealthState for checks in every state.
	HealthAny = "any"
)

// The IDs of the maintenance checks (see EnableNodeMaintenance and
// EnableServiceMaintenance), as Consul names them: a service's is
// ServiceMaintPrefix followed by the service ID.
const (
	NodeMaint          = "_node_maintenance"
	ServiceMaintPrefix = "_service_maintenance:"
)

// ServiceEntry is one instance as /v1/health/service/:name shows it.
type ServiceEntry struct {
	Node    *Node
	Service *AgentService
	Checks  []*HealthCheck
	// ShoalLastHeardMs (Shoal) is how many milliseconds ago the answering
	// agent last heard from the instance's node (an answered ping, news
	// the node wrote, a push/pull with it): 0 for the agent's own
	// instances, nil if it has not heard from the node since it joined.
	ShoalLastHeardMs *int64 `json:",omitempty"`
}

// SelfConfig is the Config section of /v1/agent/self.
type SelfConfig struct {
	Datacenter        string
	PrimaryDatacenter string
	NodeName          string
	NodeID            string
	Revision          string
	Server            bool
	Version           string
}

// Self is the body of /v1/agent/self.
type Self struct {
	Config SelfConfig
	Member AgentMember
	Meta   map[string]string
}

// KeyringResponse is one gossip pool's answer to a keyring operation, as
// GET /v1/operator/keyring lists it (Consul's shape; Shoal has one pool,
// the LAN): how many of the NumNodes nodes asked hold each key (base64)
// and use it as primary, and the error of each node that failed or did
// not answer.
type KeyringResponse struct {
	WAN         bool
	Datacenter  string
	Segment     string
	Partition   string `json:",omitempty"`
	Keys        map[string]int
	PrimaryKeys map[string]int
	NumNodes    int
	Messages    map[string]string `json:",omitempty"`
}
