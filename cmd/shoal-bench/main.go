// Command shoal-bench runs Shoal's benchmark harness (package
// bench/harness): N real agents in one process and as separate processes,
// with HashiCorp Serf beside them where it installs, measuring how fast
// changes, crashes and departures reach every agent, a burst of
// registrations, gossip bytes, memory and the local API. It prints a table
// and writes results.csv, results.md and SVG plots.
//
//	go run ./cmd/shoal-bench --quick          # N = 8, about a minute
//	go run ./cmd/shoal-bench --out bench-out  # the full run of docs/BENCHMARKS.md
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/shoal-sd/shoal/bench/harness"
)

func main() {
	if err := app().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "shoal-bench:", err)
		os.Exit(1)
	}
}

func app() *cli.App {
	return &cli.App{
		Name:  "shoal-bench",
		Usage: "measure Shoal (and Serf beside it) on this machine",
		Description: "Starts N real agents on loopback, in this process and as separate processes, and\n" +
			"measures convergence, crash and leave detection, a burst of registrations, gossip\n" +
			"bytes (needs root and nft), memory and the local HTTP API. Serf v0.10.2 runs beside\n" +
			"Shoal at the same N unless --serf none; it is installed with `go install` if not found.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quick", Usage: "the quick run of the test suite: N = 8, about a minute (other flags still apply)"},
			&cli.StringFlag{Name: "sizes", Usage: "cluster sizes, comma-separated (default: 8,16,32,64,128)"},
			&cli.StringFlag{Name: "modes", Usage: "in-process, processes, or both comma-separated (default: both)"},
			&cli.IntFlag{Name: "repeats", Value: -1, Usage: "changes timed per N (default: 40)"},
			&cli.IntFlag{Name: "fail-repeats", Value: -1, Usage: "crashes and leaves timed per N (default: 3)"},
			&cli.IntFlag{Name: "burst", Value: -1, Usage: "registrations in the burst (default: 1000)"},
			&cli.DurationFlag{Name: "byte-window", Usage: "how long gossip bytes are counted, idle and under churn; 0 skips them (default: 20s)"},
			&cli.DurationFlag{Name: "settle", Usage: "how long a new cluster is left alone before idle traffic is counted (default: 10s)"},
			&cli.StringFlag{Name: "instances", Usage: `catalog sizes for the memory figures, comma-separated; "none" skips them (default: 10000,100000)`},
			&cli.DurationFlag{Name: "api-duration", Usage: "how long the local API is loaded; 0 skips it (default: 10s)"},
			&cli.IntFlag{Name: "api-conns", Usage: "connections loading the local API (default: 16)"},
			&cli.StringFlag{Name: "shoal", Usage: "shoal binary for the processes (default: build one)"},
			&cli.StringFlag{Name: "serf", Usage: `serf binary; "none" leaves Serf out (default: $PATH, or go install v0.10.2)`},
			&cli.StringFlag{Name: "work-dir", Usage: "directory for binaries and agents' logs (default: a temporary one, removed)"},
			&cli.StringFlag{Name: "out", Value: "bench-results", Usage: `directory for results.csv, results.md and the SVG plots; "" writes none`},
			&cli.DurationFlag{Name: "timeout", Usage: "longest wait for any one thing (default: 2m)"},
		},
		Action: run,
	}
}

func run(cc *cli.Context) error {
	o := harness.Full()
	if cc.Bool("quick") {
		o = harness.Quick()
	}
	var err error
	if s := cc.String("sizes"); s != "" {
		if o.Sizes, err = ints("sizes", s); err != nil {
			return err
		}
	}
	if s := cc.String("instances"); s == "none" {
		o.Instances = nil
	} else if s != "" {
		if o.Instances, err = ints("instances", s); err != nil {
			return err
		}
	}
	if s := cc.String("modes"); s != "" {
		o.Modes = nil
		for _, m := range strings.Split(s, ",") {
			m = strings.TrimSpace(m)
			if m != harness.ModeInProcess && m != harness.ModeProcesses {
				return fmt.Errorf("--modes: %q is neither %s nor %s", m, harness.ModeInProcess, harness.ModeProcesses)
			}
			o.Modes = append(o.Modes, m)
		}
	}
	for name, p := range map[string]*int{"repeats": &o.Repeats, "fail-repeats": &o.FailRepeats, "burst": &o.Burst} {
		if v := cc.Int(name); v >= 0 {
			*p = v
		}
	}
	if v := cc.Int("api-conns"); v > 0 {
		o.APIConns = v
	}
	if cc.IsSet("byte-window") {
		o.ByteWindow = cc.Duration("byte-window")
	}
	if cc.IsSet("settle") {
		o.Settle = cc.Duration("settle")
	}
	if cc.IsSet("api-duration") {
		o.APIDuration = cc.Duration("api-duration")
	}
	if d := cc.Duration("timeout"); d > 0 {
		o.Timeout = d
	}
	o.ShoalBin = cc.String("shoal")
	o.SerfBin = cc.String("serf")
	o.WorkDir = cc.String("work-dir")
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	// Serf's RPC client logs through the standard logger each time an
	// agent's connection ends, which the crash and leave runs do on
	// purpose; the harness reports through o.Log.
	log.SetOutput(io.Discard)

	ctx, stop := signal.NotifyContext(cc.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := harness.Run(ctx, o)
	if rep != nil && len(rep.Results) > 0 {
		// What was measured before a failure is still worth keeping.
		if werr := report(cc, rep); err == nil {
			err = werr
		}
	}
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted")
	}
	return err
}

// report prints the table and writes the files of --out.
func report(cc *cli.Context, rep *harness.Report) error {
	if err := rep.WriteTable(os.Stdout, false); err != nil {
		return err
	}
	if out := cc.String("out"); out != "" {
		files, err := rep.WriteFiles(out)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stdout, "\nwrote %s\n", strings.Join(files, ", "))
	}
	return nil
}

func ints(flag, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("--%s: %q is not a positive whole number", flag, f)
		}
		out = append(out, v)
	}
	return out, nil
}
