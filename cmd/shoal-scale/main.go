// Command shoal-scale runs Shoal at sizes no machine holds as processes:
// N real agents in this process on an in-memory network with latency,
// jitter and loss (package bench/scale), measuring change propagation,
// bytes per change, idle bytes with a large catalog and the time a new
// agent takes to fetch a catalog.
//
//	go run ./cmd/shoal-scale --sizes 500,1000
package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shoal-sd/shoal/bench/scale"
)

func main() {
	if err := app().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "shoal-scale:", err)
		os.Exit(1)
	}
}

func app() *cli.App {
	return &cli.App{
		Name:  "shoal-scale",
		Usage: "run N Shoal agents in one process on an in-memory network and measure them",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "sizes", Value: "500", Usage: "cluster sizes, comma-separated"},
			&cli.DurationFlag{Name: "latency", Value: 500 * time.Microsecond, Usage: "one-way latency of every packet and stream"},
			&cli.DurationFlag{Name: "jitter", Value: 500 * time.Microsecond, Usage: "up to this much more per packet (reorders them)"},
			&cli.Float64Flag{Name: "loss", Usage: "the probability that a packet is lost (0 to 1)"},
			&cli.IntFlag{Name: "changes", Value: 40, Usage: "registrations timed until every agent serves them"},
			&cli.DurationFlag{Name: "window", Value: 20 * time.Second, Usage: "how long bytes are counted, idle and under churn; 0 skips them"},
			&cli.Float64Flag{Name: "churn", Value: 20, Usage: "registrations per second, cluster-wide, while bytes are counted under churn; 0 skips it"},
			&cli.StringFlag{Name: "instances", Usage: "catalog sizes (spread over the agents) to count idle bytes with, comma-separated"},
			&cli.IntFlag{Name: "fetch", Usage: "one agent gets this many more instances, then a new agent joins and is timed until it holds the whole catalog (0: skip)"},
			&cli.BoolFlag{Name: "preload", Usage: "put --instances and --fetch into every agent's catalog directly, as anti-entropy would leave them, instead of gossiping them"},
			&cli.DurationFlag{Name: "probe-interval", Usage: "memberlist's probe interval (its probe timeout scales with it)", DefaultText: "1s, memberlist's LAN default"},
			&cli.DurationFlag{Name: "settle", Value: 15 * time.Second, Usage: "how long a cluster is left alone before anything is counted"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Minute, Usage: "longest wait for any one thing"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the whole run to this file"},
		},
		Action: run,
	}
}

func run(cc *cli.Context) error {
	o := scale.Options{
		Latency: cc.Duration("latency"), Jitter: cc.Duration("jitter"), Loss: cc.Float64("loss"),
		Changes: cc.Int("changes"), Window: cc.Duration("window"), ChurnRate: cc.Float64("churn"),
		Fetch: cc.Int("fetch"), Preload: cc.Bool("preload"), Settle: cc.Duration("settle"), Timeout: cc.Duration("timeout"),
		ProbeInterval: cc.Duration("probe-interval"),
		Log:           slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	if o.Loss < 0 || o.Loss > 1 {
		return fmt.Errorf("--loss: %v is not between 0 and 1", o.Loss)
	}
	var err error
	if o.Sizes, err = ints("sizes", cc.String("sizes")); err != nil {
		return err
	}
	if s := cc.String("instances"); s != "" {
		if o.Instances, err = ints("instances", s); err != nil {
			return err
		}
	}
	if f := cc.String("cpuprofile"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer out.Close()
		if err := pprof.StartCPUProfile(out); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(cc.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	rs, err := scale.Run(ctx, o)
	probe := "memberlist's LAN timers"
	if o.ProbeInterval > 0 {
		probe = fmt.Sprintf("memberlist's LAN timers but probes every %s", o.ProbeInterval)
	}
	fmt.Printf("%d cores, %s, %s; latency %s + up to %s, loss %g; %s; took %s\n\n", runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 MST"),
		o.Latency, o.Jitter, o.Loss, probe, time.Since(start).Round(time.Second))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "N\tfigure\tvalue\tunit\tnote")
	for _, r := range rs {
		fmt.Fprintf(tw, "%d\t%s\t%.1f\t%s\t%s\n", r.N, r.Figure, r.Value, r.Unit, r.Note)
	}
	tw.Flush()
	return err
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
