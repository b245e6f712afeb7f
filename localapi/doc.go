// Package localapi serves Shoal's local HTTP API: the discovery subset of
// Consul's HTTP API, path for path and field for field, answered from the
// agent's own copy of the catalog through a narrow Backend interface.
package localapi
