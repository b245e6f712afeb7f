// Package e2e holds end-to-end tests that run real shoal processes on a
// real network: scripts/netns-cluster.sh puts each host in a Linux network
// namespace of its own, joined by a bridge, and the tests talk to the hosts
// with the shoal command line run inside their namespaces, the way an
// operator would. They need root (as .ci/run has) and skip without it.
package e2e
