// Package localapi serves Shoal's local HTTP API: the discovery subset of
// Consul's HTTP API, path for path and field for field, answered from the
// agent's own copy of the catalog through a narrow Backend interface.
//
// Routes (all under /v1/):
//
//	PUT agent/service/register        GET agent/services
//	PUT agent/service/deregister/:id  GET agent/service/:id
//	GET agent/members                 PUT agent/join/:address
//	PUT agent/leave                   GET agent/self
//	GET catalog/services              GET catalog/service/:name
//	GET catalog/nodes                 GET health/service/:name
//	GET status/leader                 GET status/peers
//	GET agent/metrics                 GET agent/monitor
//	GET coordinate/nodes              GET coordinate/node/:node
//	GET catalog/node/:node            GET catalog/node-services/:node
//	GET catalog/datacenters           GET agent/host
//	GET agent/version                 GET agent/health/service/id/:id
//	GET agent/health/service/name/:name
//	GET catalog/connect/:service      GET health/connect/:service
//	GET health/ingress/:service       (always []: Shoal has no Connect)
//
// catalog/service, catalog/nodes, health/service, health/checks and
// health/state sort by estimated round trip from a node with ?near=NODE
// (or _agent); the instance lists give each instance's ShoalLastHeardMs,
// a Shoal addition. Consul's routes that need its servers or Connect (kv,
// session, query, acl, connect, snapshot, …) are refused with 501 and
// the reason (refused.go); any other path is a 404.
//
// Health checks:
//
//	PUT agent/check/register                 PUT agent/check/deregister/:check_id
//	PUT agent/check/pass|warn|fail/:check_id PUT agent/check/update/:check_id
//	GET agent/checks                         PUT agent/maintenance
//	PUT agent/service/maintenance/:id        PUT agent/reload
//	GET health/checks/:service               GET health/node/:node
//	GET health/state/:state
//
// health/service shows each instance's checks after its node's
// serfHealth; ?passing keeps the instances whose checks all pass and, a
// Shoal addition, ?passing&warning those that warn too.
//
// Every GET is a blocking query in Consul's manner (?index=N&wait=D, with
// X-Consul-Index on every answer), except agent/metrics and agent/monitor,
// which streams the agent's log until the client goes away. Errors are a
// 4xx with one line of text that names the bad field or parameter, and a
// refused request changes nothing. Requests that a browser makes for a
// page of another origin are refused.
//
// DNSServer answers DNS from the same Backend, with Consul's names under
// the agent's domain (<name>.service.shoal., <node>.node.shoal., …; see
// dns.go), using github.com/miekg/dns.
package localapi
