// Package testutil holds what Shoal's tests share: polling with a
// deadline, loggers that write to t.Log, free loopback addresses, and an
// in-process cluster of real agents on real loopback sockets whose traffic
// a test can cut to make partitions and crashes.
package testutil
