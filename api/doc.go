// Package api is the Go client for a Shoal agent's local HTTP API, and the
// wire types of that API.
//
// The API is the discovery subset of Consul's HTTP API, path for path and
// field for field, so the JSON types here have Consul's names and shapes.
// The package imports nothing outside the standard library, and the zero
// value of Client talks to the agent at SHOAL_HTTP_ADDR or 127.0.0.1:8500.
package api
