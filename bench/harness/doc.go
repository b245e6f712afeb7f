// Package harness is Shoal's benchmark harness: it starts N real agents,
// in one process on loopback or as separate `shoal agent` processes, and
// HashiCorp Serf agents beside them where Serf can be installed, and
// measures what an operator compares discovery systems by: how fast a
// change reaches every node, how fast a crashed or departed node
// disappears, a burst of registrations, gossip bytes, memory and the local
// API's throughput. It prints a table and writes CSV and SVG plots.
//
// cmd/shoal-bench is its command line; a quick mode (N = 8, seconds) runs
// as a test so the harness cannot rot.
package harness
