// Package bench holds Shoal's benchmarks that need a whole cluster: how
// fast a registration reaches every agent, beside what memberlist's own
// broadcast achieves at the same size. Run them with
//
//	go test -run '^$' -bench . -benchtime 20x ./bench/
//
// and record the results in docs/BENCHMARKS.md.
package bench
