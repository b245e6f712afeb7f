package localapi

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-sd/shoal/catalog"
)

// The instance lists of /v1/health/service and /v1/catalog/service are
// the API's hot path (clients poll and block on them), so they are not
// built as api values and handed to encoding/json: the handler copies what
// it needs out of the catalog into a pooled serviceView, then appends the
// JSON to a pooled buffer. The output is byte for byte what encoding/json
// makes of []api.ServiceEntry and []api.CatalogService; the tests hold it
// to that.

// span is a run of serviceView.strs.
type span struct{ lo, hi int }

// nodeView is what a response shows of a node.
type nodeView struct {
	name, address string
	serving       bool
	preserved     bool // served by self-preservation (catalog.Node.Preserved)
	meta          span // key, value pairs, sorted by key once out of the lock
	createIndex   uint64
	modifyIndex   uint64
	id            [36]byte
	heard         time.Duration // since the agent last heard from it; -1: never (fillHeard)
	rtt           rtt           // from the ?near node (sortNear)
}

// instanceView is what a response shows of an instance.
type instanceView struct {
	node              int // in serviceView.nodes
	id, name, address string
	port              int
	weights           catalog.Weights
	tags, meta        span
	checks            span // of serviceView.checks
	createIndex       uint64
	modifyIndex       uint64
}

// checkView is what a response shows of a check (its node is the
// instance's).
type checkView struct {
	id, name, notes, output string
	serviceID, serviceName  string
	typ                     string
	status                  catalog.Health
	damped                  bool
	tags                    span // the service's tags; empty for a node check
	createIndex             uint64
	modifyIndex             uint64
}

// serviceView is a copy of the instances of one service, taken under the
// agent's lock and encoded after it.
type serviceView struct {
	local  string
	nodes  []nodeView
	insts  []instanceView
	checks []checkView
	strs   []string // tags and meta of all instances and nodes
	names  []string // node names, for fillHeard
	ago    []time.Duration
}

var viewPool = sync.Pool{New: func() any { return new(serviceView) }}

func getView() *serviceView { return viewPool.Get().(*serviceView) }

// release returns v to the pool, dropping its strings so that the pool
// does not keep them alive.
func (v *serviceView) release() {
	v.reset()
	viewPool.Put(v)
}

func (v *serviceView) reset() {
	clear(v.nodes)
	clear(v.insts)
	clear(v.checks)
	clear(v.strs)
	clear(v.names)
	v.nodes, v.insts, v.checks, v.strs, v.local = v.nodes[:0], v.insts[:0], v.checks[:0], v.strs[:0], ""
	v.names = v.names[:0]
}

// collect copies the instances of the named service that carry every one
// of tags (case-insensitively, as Consul matches them) and, if worst is
// not 0, whose state (their checks' and their node's serfHealth) is no
// worse than worst; with checks, it copies their checks too. It runs
// under the agent's lock, so it only copies; sorting and hashing wait for
// finish. It returns the service's index.
func (v *serviceView) collect(c *catalog.Catalog, name string, tags []string, checks bool, worst catalog.Health) uint64 {
	v.reset()
	v.local = c.LocalName()
	insts := c.Instances(name)
	for i := range insts {
		in := &insts[i]
		if worst != 0 && instanceHealth(in) > worst || !hasTags(in.Service.Tags, tags) {
			continue
		}
		// Instances come sorted by node name: one nodeView per run.
		if n := len(v.nodes); n == 0 || v.nodes[n-1].name != in.Node.Name {
			v.nodes = append(v.nodes, nodeView{
				name:        in.Node.Name,
				address:     in.Node.Address,
				serving:     in.Node.Serving(),
				preserved:   in.Node.Preserved,
				meta:        v.pairs(in.Node.Meta),
				createIndex: in.Node.CreateIndex,
				modifyIndex: in.Node.ModifyIndex,
				heard:       -1,
			})
		}
		iv := instanceView{
			node:        len(v.nodes) - 1,
			id:          in.Service.ID,
			name:        in.Service.Name,
			address:     in.Service.Address,
			port:        in.Service.Port,
			weights:     in.Service.Weights,
			tags:        v.list(in.Service.Tags),
			meta:        v.pairs(in.Service.Meta),
			createIndex: in.CreateIndex,
			modifyIndex: in.ModifyIndex,
		}
		if checks {
			iv.checks = v.collectChecks(in, iv.tags)
		}
		v.insts = append(v.insts, iv)
	}
	return c.ServiceIndex(name)
}

// instanceHealth is an instance's state as ?passing judges it: the worst
// of its checks and of its node's serfHealth.
func instanceHealth(in *catalog.Instance) catalog.Health {
	if !in.Node.Serving() {
		return catalog.HealthCritical
	}
	return in.Status
}

// collectChecks copies an instance's checks; svcTags is the span of the
// instance's tags, which its service checks show as their ServiceTags.
func (v *serviceView) collectChecks(in *catalog.Instance, svcTags span) span {
	lo := len(v.checks)
	for i := range in.Checks {
		ck := &in.Checks[i]
		cv := checkView{
			id:          ck.Check.ID,
			name:        ck.Check.Name,
			notes:       ck.Check.Notes,
			output:      ck.Check.Output,
			serviceID:   ck.Check.ServiceID,
			serviceName: ck.ServiceName,
			typ:         ck.Check.Type,
			status:      ck.Check.Status,
			damped:      ck.Check.Damped,
			createIndex: ck.CreateIndex,
			modifyIndex: ck.ModifyIndex,
		}
		switch t := ck.ServiceTags; {
		case len(t) == 0:
		case len(t) == len(in.Service.Tags) && &t[0] == &in.Service.Tags[0]:
			cv.tags = svcTags // the catalog shares the service's own slice
		default:
			cv.tags = v.list(t)
		}
		v.checks = append(v.checks, cv)
	}
	return span{lo, len(v.checks)}
}

func (v *serviceView) list(ss []string) span {
	lo := len(v.strs)
	v.strs = append(v.strs, ss...)
	return span{lo, len(v.strs)}
}

func (v *serviceView) pairs(m map[string]string) span {
	lo := len(v.strs)
	for k, val := range m {
		v.strs = append(v.strs, k, val)
	}
	return span{lo, len(v.strs)}
}

// finish does, out of the lock, what collect left: it sorts the meta
// pairs, computes node IDs, and gives the local node its gossip address
// if the catalog has none for it yet (localAddr is called at most once).
func (v *serviceView) finish(localAddr func() string) {
	addr, looked := "", false
	for i := range v.nodes {
		n := &v.nodes[i]
		sortPairs(v.strs[n.meta.lo:n.meta.hi])
		n.id = catalog.NodeIDBytes(n.name)
		if n.address == "" && n.name == v.local {
			if !looked {
				addr, looked = localAddr(), true
			}
			n.address = addr
		}
	}
	for i := range v.insts {
		m := v.insts[i].meta
		sortPairs(v.strs[m.lo:m.hi])
	}
}

func hasTags(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if strings.EqualFold(h, w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// sortPairs sorts key, value pairs by key. Meta has at most a few dozen
// keys, so insertion sort, which allocates nothing, is the right tool.
func sortPairs(kv []string) {
	for i := 2; i < len(kv); i += 2 {
		for j := i; j > 0 && kv[j] < kv[j-2]; j -= 2 {
			kv[j], kv[j-2] = kv[j-2], kv[j]
			kv[j+1], kv[j-1] = kv[j-1], kv[j+1]
		}
	}
}

// sortedPairs returns a map's key, value pairs sorted by key.
func sortedPairs(m map[string]string) []string {
	kv := make([]string, 0, 2*len(m))
	for k, v := range m {
		kv = append(kv, k, v)
	}
	sortPairs(kv)
	return kv
}

// appendHealth appends the view as []api.ServiceEntry.
func (v *serviceView) appendHealth(b []byte, dc string) []byte {
	b = append(b, '[')
	for i := range v.insts {
		in := &v.insts[i]
		n := &v.nodes[in.node]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Node":`...)
		b = v.appendNode(b, n, dc)
		b = append(b, `,"Service":{"ID":`...)
		b = appendString(b, in.id)
		b = append(b, `,"Service":`...)
		b = appendString(b, in.name)
		b = append(b, `,"Tags":`...)
		b = v.appendList(b, in.tags)
		b = append(b, `,"Meta":`...)
		b = v.appendObject(b, in.meta)
		b = append(b, `,"Port":`...)
		b = strconv.AppendInt(b, int64(in.port), 10)
		b = append(b, `,"Address":`...)
		b = appendString(b, in.address)
		b = append(b, `,"Weights":`...)
		b = appendWeights(b, in.weights)
		b = append(b, `,"EnableTagOverride":false`...)
		if in.createIndex != 0 {
			b = append(b, `,"CreateIndex":`...)
			b = strconv.AppendUint(b, in.createIndex, 10)
		}
		if in.modifyIndex != 0 {
			b = append(b, `,"ModifyIndex":`...)
			b = strconv.AppendUint(b, in.modifyIndex, 10)
		}
		b = append(b, `},"Checks":[`...)
		b = appendSerfHealth(b, n)
		for j := in.checks.lo; j < in.checks.hi; j++ {
			b = append(b, ',')
			b = v.appendCheck(b, n.name, &v.checks[j])
		}
		b = append(b, ']')
		b = appendLastHeard(b, n)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendCatalog appends the view as []api.CatalogService.
func (v *serviceView) appendCatalog(b []byte, dc string) []byte {
	b = append(b, '[')
	for i := range v.insts {
		in := &v.insts[i]
		n := &v.nodes[in.node]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNodeHead(b, n, dc)
		b = append(b, `,"NodeMeta":`...)
		b = v.appendObject(b, n.meta)
		b = append(b, `,"ServiceID":`...)
		b = appendString(b, in.id)
		b = append(b, `,"ServiceName":`...)
		b = appendString(b, in.name)
		b = append(b, `,"ServiceAddress":`...)
		b = appendString(b, in.address)
		b = append(b, `,"ServiceTags":`...)
		b = v.appendList(b, in.tags)
		b = append(b, `,"ServiceMeta":`...)
		b = v.appendObject(b, in.meta)
		b = append(b, `,"ServicePort":`...)
		b = strconv.AppendInt(b, int64(in.port), 10)
		b = append(b, `,"ServiceWeights":`...)
		b = appendWeights(b, in.weights)
		b = append(b, `,"ServiceEnableTagOverride":false,"CreateIndex":`...)
		b = strconv.AppendUint(b, in.createIndex, 10)
		b = append(b, `,"ModifyIndex":`...)
		b = strconv.AppendUint(b, in.modifyIndex, 10)
		b = appendLastHeard(b, n)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendNodeHead opens an object with the node fields that api.Node and
// api.CatalogService share, in their order: ID, Node, Address, Datacenter,
// TaggedAddresses.
func appendNodeHead(b []byte, n *nodeView, dc string) []byte {
	b = append(b, `{"ID":"`...)
	b = append(b, n.id[:]...)
	b = append(b, `","Node":`...)
	b = appendString(b, n.name)
	b = append(b, `,"Address":`...)
	b = appendString(b, n.address)
	b = append(b, `,"Datacenter":`...)
	b = appendString(b, dc)
	b = append(b, `,"TaggedAddresses":`...)
	return appendTaggedAddresses(b, n.address)
}

// appendNode appends a node as api.Node.
func (v *serviceView) appendNode(b []byte, n *nodeView, dc string) []byte {
	b = appendNodeHead(b, n, dc)
	b = append(b, `,"Meta":`...)
	b = v.appendObject(b, n.meta)
	b = append(b, `,"CreateIndex":`...)
	b = strconv.AppendUint(b, n.createIndex, 10)
	b = append(b, `,"ModifyIndex":`...)
	b = strconv.AppendUint(b, n.modifyIndex, 10)
	return append(b, '}')
}

// The node-level check Consul reports with every node, first among an
// instance's checks: passing while the node is serving (alive or suspect
// in memberlist), critical otherwise.
const (
	serfCheckID       = "serfHealth"
	serfCheckName     = "Serf Health Status"
	serfAliveOutput   = "Agent alive and reachable"
	serfFailingOutput = "Agent not live or unreachable"
	// serfKeptOutput: the node failed while this agent was in
	// self-preservation; its last known state is served, passing.
	serfKeptOutput = "Agent unreachable; served from its last known state (self-preservation)"
)

// appendSerfHealth appends the node's serfHealth check as api.HealthCheck.
func appendSerfHealth(b []byte, n *nodeView) []byte {
	status, output := serfStatus(n.serving, n.preserved)
	b = append(b, `{"Node":`...)
	b = appendString(b, n.name)
	b = append(b, `,"CheckID":"`+serfCheckID+`","Name":"`+serfCheckName+`","Status":"`...)
	b = append(b, status...)
	b = append(b, `","Notes":"","Output":"`...)
	b = append(b, output...)
	b = append(b, `","ServiceID":"","ServiceName":"","ServiceTags":[],"Type":"","CreateIndex":`...)
	b = strconv.AppendUint(b, n.createIndex, 10)
	b = append(b, `,"ModifyIndex":`...)
	b = strconv.AppendUint(b, n.modifyIndex, 10)
	return append(b, '}')
}

// appendCheck appends one of an instance's checks as api.HealthCheck.
func (v *serviceView) appendCheck(b []byte, node string, c *checkView) []byte {
	b = append(b, `{"Node":`...)
	b = appendString(b, node)
	b = append(b, `,"CheckID":`...)
	b = appendString(b, c.id)
	b = append(b, `,"Name":`...)
	b = appendString(b, c.name)
	b = append(b, `,"Status":`...)
	b = appendString(b, c.status.String())
	b = append(b, `,"Notes":`...)
	b = appendString(b, c.notes)
	b = append(b, `,"Output":`...)
	b = appendString(b, c.output)
	b = append(b, `,"ServiceID":`...)
	b = appendString(b, c.serviceID)
	b = append(b, `,"ServiceName":`...)
	b = appendString(b, c.serviceName)
	b = append(b, `,"ServiceTags":`...)
	b = v.appendList(b, c.tags)
	b = append(b, `,"Type":`...)
	b = appendString(b, c.typ)
	b = append(b, `,"CreateIndex":`...)
	b = strconv.AppendUint(b, c.createIndex, 10)
	b = append(b, `,"ModifyIndex":`...)
	b = strconv.AppendUint(b, c.modifyIndex, 10)
	if c.damped {
		b = append(b, `,"Damped":true`...)
	}
	return append(b, '}')
}

func serfStatus(serving, preserved bool) (status, output string) {
	if preserved {
		return "passing", serfKeptOutput
	}
	if serving {
		return "passing", serfAliveOutput
	}
	return "critical", serfFailingOutput
}

func appendWeights(b []byte, w catalog.Weights) []byte {
	b = append(b, `{"Passing":`...)
	b = strconv.AppendInt(b, int64(w.Passing), 10)
	b = append(b, `,"Warning":`...)
	b = strconv.AppendInt(b, int64(w.Warning), 10)
	return append(b, '}')
}

// appendList appends a span as a JSON array of strings.
func (v *serviceView) appendList(b []byte, s span) []byte {
	b = append(b, '[')
	for i, str := range v.strs[s.lo:s.hi] {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, str)
	}
	return append(b, ']')
}

// appendObject appends a span of sorted key, value pairs as a JSON object
// of strings (encoding/json sorts map keys the same way).
func (v *serviceView) appendObject(b []byte, s span) []byte {
	b = append(b, '{')
	kv := v.strs[s.lo:s.hi]
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, kv[i])
		b = append(b, ':')
		b = appendString(b, kv[i+1])
	}
	return append(b, '}')
}

// appendString appends s as a JSON string. Names, IDs, tags and addresses
// are nearly always plain ASCII, which is copied as is; anything else
// goes through encoding/json so that the escaping is exactly its own
// (HTML-safe, U+2028 and U+2029 escaped, invalid UTF-8 replaced).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainJSON[s[i]] {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainJSON marks the bytes encoding/json copies into a string unchanged:
// printable ASCII other than the quote, the backslash and the three
// characters it escapes for HTML.
var plainJSON = func() (t [256]bool) {
	for c := ' '; c <= '~'; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// taggedAddressKeys are the keys of a node's TaggedAddresses, as Consul
// sets them: lan and wan, and the address again under its family.
func taggedAddressKeys(addr string) [4]string {
	if strings.Contains(addr, ":") {
		return [4]string{"lan", "lan_ipv6", "wan", "wan_ipv6"}
	}
	return [4]string{"lan", "lan_ipv4", "wan", "wan_ipv4"}
}

// taggedAddresses is a node's TaggedAddresses: Shoal has one address per
// node, so LAN and WAN are the same.
func taggedAddresses(addr string) map[string]string {
	m := make(map[string]string, 4)
	for _, k := range taggedAddressKeys(addr) {
		m[k] = addr
	}
	return m
}

// appendTaggedAddresses appends taggedAddresses(addr) as JSON; the keys
// are already in the sorted order encoding/json uses.
func appendTaggedAddresses(b []byte, addr string) []byte {
	b = append(b, '{')
	var quoted []byte
	for i, k := range taggedAddressKeys(addr) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, `":`...)
		if quoted == nil {
			start := len(b)
			b = appendString(b, addr)
			quoted = b[start:len(b):len(b)]
		} else {
			b = append(b, quoted...)
		}
	}
	return append(b, '}')
}
