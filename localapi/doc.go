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
//
// Every GET is a blocking query in Consul's manner (?index=N&wait=D, with
// X-Consul-Index on every answer). Errors are a 4xx with one line of text
// that names the bad field or parameter, and a refused request changes
// nothing. Requests that a browser makes for a page of another origin are
// refused.
package localapi
