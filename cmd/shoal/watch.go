package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shoal-sd/shoal/api"
)

func (s *shell) watchCommand() *cli.Command {
	return &cli.Command{
		Name:  "watch",
		Usage: "print a service's instances each time they change, or run a command",
		UsageText: "shoal watch NAME [--tag T]... [--node-meta K:V]... [--filter EXPR] [--passing [--warning]] [--json]\n" +
			"shoal watch NAME ... --exec CMD [--min-quiet D] [--max-quiet D]",
		Description: "Follows the instances of NAME with blocking queries on the local agent and\n" +
			"prints them at start and after every change, until SIGINT or SIGTERM.\n" +
			"With --exec, runs CMD (by /bin/sh -c) with the instances' JSON (as\n" +
			"/v1/health/service/NAME answers) on its stdin instead: once at start,\n" +
			"then after changes have been quiet for --min-quiet, but at least every\n" +
			"--max-quiet while they keep coming; $SHOAL_WATCH_INSTANCES holds the count.\n" +
			"A failing CMD is reported and the watch goes on. While the agent is\n" +
			"unreachable the watch retries.",
		Flags: append(append([]cli.Flag{httpAddrFlag(false), jsonFlag()}, instanceFlags()...),
			&cli.StringFlag{Name: "exec", Usage: "run this shell command with the instances' JSON on stdin"},
			&cli.DurationFlag{Name: "min-quiet", Usage: "with --exec, wait until changes stop for this long", DefaultText: "0s: at once"},
			&cli.DurationFlag{Name: "max-quiet", Usage: "with --exec, but never longer than this after the first change", DefaultText: "0s: no bound"},
		),
		Action: s.watchAction,
	}
}

func (s *shell) watchAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return errors.New("watch: give exactly one service NAME")
	}
	name := c.Args().First()
	q, err := instanceQuery(c, "watch")
	if err != nil {
		return err
	}
	cmd := c.String("exec")
	d := debouncer{min: c.Duration("min-quiet"), max: c.Duration("max-quiet")}
	if cmd == "" && (c.IsSet("min-quiet") || c.IsSet("max-quiet")) {
		return errors.New("watch: --min-quiet and --max-quiet go with --exec")
	}
	if d.min < 0 || d.max < 0 || d.max > 0 && d.max < d.min {
		return fmt.Errorf("watch: --min-quiet %v and --max-quiet %v: both at least 0, and --max-quiet (when set) at least --min-quiet", d.min, d.max)
	}
	ctx, stop := s.onSignals(c.Context, slog.New(slog.DiscardHandler))
	defer stop()

	sets := make(chan []*api.ServiceEntry)
	errs := make(chan error, 1)
	go func() { errs <- follow(ctx, client(c), name, *q, sets, s.stderr) }()

	var (
		latest  []*api.ServiceEntry
		shown   []byte // the last set printed or given to CMD
		started bool
	)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// One timer, re-armed each time round (since Go 1.23 a Reset or
		// Stop leaves no stale tick in the channel).
		var fire <-chan time.Time
		if at, ok := d.due(); ok {
			timer.Reset(time.Until(at))
			fire = timer.C
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			<-errs
			return nil // stopped by a signal
		case err := <-errs:
			return fmt.Errorf("watch %s: %w", name, err)
		case set := <-sets:
			latest = set
			key := setKey(set)
			if started && bytes.Equal(key, shown) {
				d.reset() // changed back to what CMD last got
				continue
			}
			if cmd == "" || !started {
				// Printing is not debounced, nor is the first run.
				if err := s.showSet(ctx, c, cmd, latest); err != nil {
					return err
				}
				shown, started = key, true
				d.reset()
				continue
			}
			d.change(time.Now())
		case <-fire:
			d.reset()
			key := setKey(latest)
			if bytes.Equal(key, shown) {
				continue // changed and changed back
			}
			if err := s.showSet(ctx, c, cmd, latest); err != nil {
				return err
			}
			shown = key
		}
	}
}

// showSet prints a set, or gives it to the --exec command, which a
// signal (ctx) stops.
func (s *shell) showSet(ctx context.Context, c *cli.Context, cmd string, set []*api.ServiceEntry) error {
	set = orEmpty(set)
	if cmd == "" {
		if c.Bool("json") {
			b, err := json.Marshal(set)
			if err != nil {
				return fmt.Errorf("watch: %w", err)
			}
			_, err = fmt.Fprintf(s.stdout, "%s\n", b)
			return err
		}
		if err := instancesTable(s.stdout, set); err != nil {
			return err
		}
		_, err := fmt.Fprintln(s.stdout)
		return err
	}
	b, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	run := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	run.Stdin = bytes.NewReader(b)
	run.Stdout, run.Stderr = s.stdout, s.stderr
	run.Env = append(os.Environ(), "SHOAL_WATCH_INSTANCES="+fmt.Sprint(len(set)))
	if err := run.Run(); err != nil {
		fmt.Fprintf(s.stderr, "shoal: watch: %s: %v\n", cmd, err)
	}
	return nil
}

// setKey is what makes two answers the same set for a watcher: the
// answer without its change indexes, which move with changes a reader
// does not see (a check's output, say).
func setKey(set []*api.ServiceEntry) []byte {
	type view struct {
		Node, ID, Address string
		Port              int
		Tags              []string
		Meta              map[string]string
		Status            []string
	}
	vs := make([]view, 0, len(set))
	for _, e := range set {
		v := view{}
		if e.Node != nil {
			v.Node = e.Node.Node
		}
		if e.Service != nil {
			v.ID, v.Address, v.Port, v.Tags, v.Meta = e.Service.ID, e.Service.Address, e.Service.Port, e.Service.Tags, e.Service.Meta
		}
		for _, ck := range e.Checks {
			v.Status = append(v.Status, ck.CheckID+"="+ck.Status)
		}
		vs = append(vs, v)
	}
	b, _ := json.Marshal(vs)
	return b
}

// follow sends the service's instances on sets at start and after every
// change the agent reports, with blocking queries, until ctx ends. An
// unreachable agent is retried with backoff (1 s doubling to 30 s) and
// reported once per outage; other errors (a bad request) end the watch.
func follow(ctx context.Context, cl *api.Client, name string, q api.QueryOptions, sets chan<- []*api.ServiceEntry, stderr interface{ Write([]byte) (int, error) }) error {
	wait := time.Second
	down := false
	for {
		entries, meta, err := cl.HealthService(ctx, name, &q)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if !errors.Is(err, api.ErrAgentUnreachable) {
				return err
			}
			if !down {
				fmt.Fprintf(stderr, "shoal: watch: %v; retrying\n", err)
				down = true
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			wait = min(2*wait, 30*time.Second)
			continue
		}
		if down {
			fmt.Fprintln(stderr, "shoal: watch: the agent answers again")
			down, wait = false, time.Second
		}
		if meta.LastIndex < q.WaitIndex {
			// The agent restarted with a fresh catalog: its answer is
			// current, and so is its index from now on.
			q.WaitIndex = 0
		}
		select {
		case sets <- entries:
		case <-ctx.Done():
			return nil
		}
		q.WaitIndex = meta.LastIndex
	}
}

// debouncer decides when a watch runs its command after changes: once
// they have been quiet for min, but no later than max after the first
// of them (max 0: no bound). Time is passed in, so it is tested without
// waiting.
type debouncer struct {
	min, max    time.Duration
	pending     bool
	first, last time.Time
}

// change records a change at now.
func (d *debouncer) change(now time.Time) {
	if !d.pending {
		d.pending, d.first = true, now
	}
	d.last = now
}

// due is when to run, if a change is pending.
func (d *debouncer) due() (time.Time, bool) {
	if !d.pending {
		return time.Time{}, false
	}
	at := d.last.Add(d.min)
	if d.max > 0 {
		if bound := d.first.Add(d.max); bound.Before(at) {
			at = bound
		}
	}
	return at, true
}

// reset forgets pending changes (the command ran).
func (d *debouncer) reset() { d.pending = false }
