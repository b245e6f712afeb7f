package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/api"
)

// envPrefix prefixes the environment variable of every agent flag:
// --retry-join is SHOAL_RETRY_JOIN.
const envPrefix = "SHOAL_"

func envVar(flag string) []string {
	return []string{envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))}
}

func (s *shell) agentCommand() *cli.Command {
	def := agent.DefaultConfig()
	return &cli.Command{
		Name:      "agent",
		Usage:     "run a Shoal agent",
		UsageText: "shoal agent [options]",
		Description: "Runs an agent until SIGINT or SIGTERM, then leaves the cluster gracefully;\n" +
			"a second signal exits at once. Every option can also be set by the\n" +
			"environment variable shown beside it (--http-addr by $" + api.EnvHTTPAddr + ").",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node", EnvVars: envVar("node"),
				Usage: "this agent's name, unique in the cluster", DefaultText: "the host name"},
			&cli.StringFlag{Name: "datacenter", EnvVars: envVar("datacenter"),
				Usage: "the cluster's datacenter", DefaultText: def.Datacenter},
			&cli.StringFlag{Name: "bind", EnvVars: envVar("bind"),
				Usage: "IP or go-sockaddr template that gossip listens on", DefaultText: def.BindAddr + ", 127.0.0.1 with --dev"},
			&cli.StringFlag{Name: "advertise", EnvVars: envVar("advertise"),
				Usage: "IP or go-sockaddr template other agents reach this one at", DefaultText: "the bind address"},
			&cli.IntFlag{Name: "port", EnvVars: envVar("port"),
				Usage: "gossip port, TCP and UDP (0 picks a free one)", DefaultText: strconv.Itoa(def.Port)},
			httpAddrFlag(false),
			&cli.StringSliceFlag{Name: "join", EnvVars: envVar("join"),
				Usage: "agent to join at start; repeat or separate by commas"},
			&cli.StringSliceFlag{Name: "retry-join", EnvVars: envVar("retry-join"),
				Usage: "agent to keep trying to join until it answers; repeat or separate by commas"},
			&cli.DurationFlag{Name: "retry-interval", EnvVars: envVar("retry-interval"),
				Usage: "longest wait between retry-join attempts", DefaultText: def.RetryInterval.String()},
			&cli.IntFlag{Name: "retry-max", EnvVars: envVar("retry-max"),
				Usage: "give up retry-join after this many attempts; 0 never does", DefaultText: "0"},
			&cli.DurationFlag{Name: "reconnect-interval", EnvVars: envVar("reconnect-interval"),
				Usage: "how often to try rejoining failed members (heals long partitions)", DefaultText: def.ReconnectInterval.String()},
			&cli.StringFlag{Name: "data-dir", EnvVars: envVar("data-dir"), TakesFile: true,
				Usage: "directory for state kept across restarts", DefaultText: "none"},
			&cli.StringFlag{Name: "encrypt", EnvVars: envVar("encrypt"),
				Usage: "base64 gossip encryption key (see shoal keygen)", DefaultText: "no encryption"},
			&cli.BoolFlag{Name: "dev", EnvVars: envVar("dev"),
				Usage: "development agent: one node, loopback only, nothing on disk"},
			&cli.StringFlag{Name: "log-level", EnvVars: envVar("log-level"), Value: "info",
				Usage: "debug, info, warn or error"},
			&cli.BoolFlag{Name: "log-json", EnvVars: envVar("log-json"),
				Usage: "log JSON lines instead of text"},
		},
		Action: s.agentAction,
	}
}

func (s *shell) agentAction(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	cfg, err := agentConfig(c)
	if err != nil {
		return err
	}
	log, err := newLogger(s.stderr, c.String("log-level"), c.Bool("log-json"))
	if err != nil {
		return err
	}
	ctx, stop := s.onSignals(c.Context, log)
	defer stop()
	return s.runAgent(ctx, cfg, log)
}

// agentConfig maps the agent's flags and their environment variables onto
// agent.DevConfig (with --dev) or agent.DefaultConfig. A flag that is not
// given leaves the default alone, so the defaults live in package agent
// only. Validation is left to agent.New.
func agentConfig(c *cli.Context) (agent.Config, error) {
	cfg := agent.DefaultConfig()
	if c.Bool("dev") {
		cfg = agent.DevConfig()
	}
	setString := func(flag string, dst *string) {
		if c.IsSet(flag) {
			*dst = c.String(flag)
		}
	}
	setString("node", &cfg.NodeName)
	setString("datacenter", &cfg.Datacenter)
	setString("bind", &cfg.BindAddr)
	setString("advertise", &cfg.AdvertiseAddr)
	setString("encrypt", &cfg.EncryptKey)
	if c.IsSet("port") {
		cfg.Port = c.Int("port")
	}
	if addr := httpAddr(c); addr != "" {
		cfg.HTTPAddr = addr
	}
	if c.IsSet("join") {
		cfg.Join = splitList(c.StringSlice("join"))
	}
	if c.IsSet("retry-join") {
		cfg.RetryJoin = splitList(c.StringSlice("retry-join"))
	}
	if c.IsSet("retry-interval") {
		cfg.RetryInterval = c.Duration("retry-interval")
	}
	if c.IsSet("retry-max") {
		cfg.RetryMax = c.Int("retry-max")
	}
	if c.IsSet("reconnect-interval") {
		cfg.ReconnectInterval = c.Duration("reconnect-interval")
	}
	if c.IsSet("data-dir") {
		cfg.DataDir = c.String("data-dir") // Validate refuses it with --dev
	}
	return cfg, nil
}

// splitList flattens repeated and comma-separated values ("a,b" "c") into
// one list without empty items.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// newLogger builds the agent's logger: text or JSON lines on w.
func newLogger(w io.Writer, level string, json bool) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lvl = slog.LevelDebug
	case "info":
		lvl = slog.LevelInfo
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		return nil, fmt.Errorf("agent: --log-level %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if json {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// runAgent builds an agent from cfg and runs it until ctx ends.
func runAgent(ctx context.Context, cfg agent.Config, log *slog.Logger) error {
	a, err := agent.New(cfg, log)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// onSignals returns a context that the first SIGINT or SIGTERM cancels, so
// that the agent leaves gracefully; a second signal exits at once. stop
// ends the watch.
func (s *shell) onSignals(parent context.Context, log *slog.Logger) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs, unsubscribe := s.signals()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case sig := <-sigs:
			log.Info("leaving the cluster; signal again to exit at once", "signal", sig.String())
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			log.Warn("exiting without leaving the cluster", "signal", sig.String())
			s.exit(1)
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		wg.Wait()
		unsubscribe()
		cancel()
	}
}
