package harness

import (
	"io"
	"log/slog"
	"time"
)

// Options says what to measure and how long to spend on it.
type Options struct {
	// Sizes are the cluster sizes N to start.
	Sizes []int
	// Modes are "in-process" (N Shoal agents in this process, on
	// loopback) and "processes" (N `shoal agent` processes, and N `serf
	// agent` processes beside them).
	Modes []string
	// Repeats is how many changes are timed to every agent, per N.
	Repeats int
	// FailRepeats is how many crashes and how many graceful leaves are
	// timed per N (each takes an agent away for the rest of the run).
	FailRepeats int
	// Burst is the number of registrations of the burst.
	Burst int
	// ByteWindow is how long gossip traffic is counted, idle and under
	// churn; ChurnRate is the changes per agent per second of the churn.
	ByteWindow time.Duration
	ChurnRate  float64
	// Settle is how long a new cluster is left alone before its idle
	// traffic is counted: joining and the first registrations are still
	// being gossiped for a while after every agent serves them.
	Settle time.Duration
	// Instances are the catalog sizes whose memory is measured.
	Instances []int
	// APIDuration, APIConns and APIInstances shape the local API load:
	// that many connections asking health/service for a service of
	// APIInstances instances, for that long.
	APIDuration  time.Duration
	APIConns     int
	APIInstances int
	// ShoalBin is the shoal binary for the processes mode; empty builds
	// one into WorkDir.
	ShoalBin string
	// SerfBin is the serf binary; empty finds one on $PATH or installs
	// v0.10.2 with `go install`; "none" leaves Serf out.
	SerfBin string
	// WorkDir holds binaries, agents' logs and scratch files.
	WorkDir string
	// OutDir receives results.csv and the SVG plots; empty writes none.
	OutDir string
	// Timeout bounds each single wait (a change reaching every agent, a
	// cluster forming).
	Timeout time.Duration
	// Log receives progress; nil discards it.
	Log *slog.Logger
}

// Full is the complete run of docs/BENCHMARKS.md.
func Full() Options {
	return Options{
		Sizes:        []int{8, 16, 32, 64, 128},
		Modes:        []string{ModeInProcess, ModeProcesses},
		Repeats:      40,
		FailRepeats:  3,
		Burst:        1000,
		ByteWindow:   20 * time.Second,
		ChurnRate:    1,
		Settle:       10 * time.Second,
		Instances:    []int{10_000, 100_000},
		APIDuration:  10 * time.Second,
		APIConns:     16,
		APIInstances: 100,
		Timeout:      2 * time.Minute,
	}
}

// Quick is the run the test suite makes: N = 8, seconds in all.
func Quick() Options {
	return Options{
		Sizes:        []int{8},
		Modes:        []string{ModeInProcess, ModeProcesses},
		Repeats:      10,
		FailRepeats:  1,
		Burst:        1000,
		ByteWindow:   2 * time.Second,
		ChurnRate:    1,
		Settle:       2 * time.Second,
		Instances:    []int{2_000},
		APIDuration:  time.Second,
		APIConns:     4,
		APIInstances: 100,
		Timeout:      time.Minute,
	}
}

// Modes of running agents.
const (
	ModeInProcess = "in-process"
	ModeProcesses = "processes"
)

// Result is one measured figure.
type Result struct {
	// Scenario is what was measured: "convergence", "crash", "leave",
	// "burst", "bytes-idle", "bytes-churn", "agent-rss" (one agent of an
	// idle cluster), "catalog-memory", "catalog-rss" (agents holding N
	// instances), "api".
	Scenario string
	// System is "shoal" or "serf"; Mode as in Options.Modes.
	System string
	Mode   string
	// N is the cluster size (for memory: the number of instances).
	N int
	// Stat names the figure: "p50", "p99", "max", "total", "per-instance",
	// "req/s".
	Stat  string
	Value float64
	// Unit is "ms", "B/node/s", "MiB", "B", "req/s".
	Unit string
	// Samples is how many measurements the figure summarises.
	Samples int
	// Note says anything a reader needs (resolution, what was left out).
	Note string
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
