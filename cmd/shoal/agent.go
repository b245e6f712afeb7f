package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

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
			"a second signal exits at once. SIGHUP reloads the services of the --config\n" +
			"file, as `shoal reload` does. Every option can also be set by the\n" +
			"environment variable shown beside it (--http-addr by $" + api.EnvHTTPAddr + ").",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node", EnvVars: envVar("node"),
				Usage: "this agent's name, unique in the cluster", DefaultText: "the host name"},
			&cli.StringFlag{Name: "datacenter", EnvVars: envVar("datacenter"),
				Usage: "the cluster's datacenter", DefaultText: def.Datacenter},
			&cli.StringSliceFlag{Name: "node-meta", EnvVars: envVar("node-meta"),
				Usage: "a KEY:VALUE pair of this node's metadata (repeat for several; added to the config file's node_meta)"},
			&cli.StringFlag{Name: "bind", EnvVars: envVar("bind"),
				Usage: "IP or go-sockaddr template that gossip listens on", DefaultText: def.BindAddr + ", 127.0.0.1 with --dev"},
			&cli.StringFlag{Name: "advertise", EnvVars: envVar("advertise"),
				Usage: "IP or go-sockaddr template other agents reach this one at", DefaultText: "the bind address"},
			&cli.IntFlag{Name: "port", EnvVars: envVar("port"),
				Usage: "gossip port, TCP and UDP (0 picks a free one)", DefaultText: strconv.Itoa(def.Port)},
			httpAddrFlag(false),
			&cli.StringFlag{Name: "https-addr", EnvVars: envVar("https-addr"),
				Usage: "host:port of the HTTP API over TLS (needs --cert-file and --key-file)", DefaultText: "none"},
			&cli.StringFlag{Name: "cert-file", EnvVars: envVar("cert-file"), Usage: "the HTTPS API's certificate (PEM)"},
			&cli.StringFlag{Name: "key-file", EnvVars: envVar("key-file"), Usage: "the HTTPS API's private key (PEM)"},
			&cli.StringFlag{Name: "ca-file", EnvVars: envVar("ca-file"), Usage: "CAs that client certificates of the HTTPS API must chain to (PEM)"},
			&cli.BoolFlag{Name: "verify-incoming", EnvVars: envVar("verify-incoming"), Usage: "refuse HTTPS clients without a certificate from --ca-file"},
			&cli.StringFlag{Name: "dns-addr", EnvVars: envVar("dns-addr"),
				Usage: "host:port of the DNS interface, UDP and TCP; \"\" turns DNS off", DefaultText: def.DNSAddr},
			&cli.StringFlag{Name: "domain", EnvVars: envVar("domain"),
				Usage: "the DNS domain the agent answers for", DefaultText: def.Domain},
			&cli.DurationFlag{Name: "dns-service-ttl", EnvVars: envVar("dns-service-ttl"),
				Usage: "TTL of DNS service answers (whole seconds)", DefaultText: def.DNSServiceTTL.String()},
			&cli.DurationFlag{Name: "dns-node-ttl", EnvVars: envVar("dns-node-ttl"),
				Usage: "TTL of DNS node answers (whole seconds)", DefaultText: def.DNSNodeTTL.String()},
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
			&cli.DurationFlag{Name: "epoch-max-skew", EnvVars: envVar("epoch-max-skew"),
				Usage: "refuse agents whose start time (epoch) is further ahead of this agent's clock", DefaultText: "175200h (20 years)"},
			&cli.StringFlag{Name: "data-dir", EnvVars: envVar("data-dir"), TakesFile: true,
				Usage: "directory for state kept across restarts", DefaultText: "none"},
			&cli.StringFlag{Name: "encrypt", EnvVars: envVar("encrypt"),
				Usage: "base64 gossip encryption key (see shoal keygen)", DefaultText: "no encryption"},
			&cli.BoolFlag{Name: "gossip-compression", EnvVars: envVar("gossip-compression"),
				Usage: "compress gossip packets and push/pull (LZW): fewer bytes, more CPU"},
			&cli.StringFlag{Name: "config", EnvVars: envVar("config"), TakesFile: true,
				Usage: "JSON agent config file in Consul's format (settings and services); flags and environment variables override it", DefaultText: "none"},
			&cli.IntFlag{Name: "flap-threshold", EnvVars: envVar("flap-threshold"),
				Usage: "damp a check that changes state more than this many times within --flap-window", DefaultText: strconv.Itoa(def.Damping.Threshold)},
			&cli.DurationFlag{Name: "flap-window", EnvVars: envVar("flap-window"),
				Usage: "the window in which --flap-threshold counts state changes", DefaultText: def.Damping.Window.String()},
			&cli.DurationFlag{Name: "flap-hold-down", EnvVars: envVar("flap-hold-down"),
				Usage: "how long a damped check's state must stay unchanged before it is released", DefaultText: def.Damping.HoldDown.String()},
			&cli.BoolFlag{Name: "no-flap-damping", EnvVars: envVar("no-flap-damping"),
				Usage: "report every check state as it comes, without flap damping"},
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
	cfg, file, err := agentConfig(c)
	if err != nil {
		return err
	}
	level, json := c.String("log-level"), c.Bool("log-json")
	if file != nil && file.LogLevel != nil && !c.IsSet("log-level") {
		lvl, _ := agent.ParseLogLevel(*file.LogLevel) // checked at load
		level = lvl.String()
	}
	if file != nil && file.LogJSON != nil && !c.IsSet("log-json") {
		json = *file.LogJSON
	}
	log, err := newLogger(s.stderr, level, json)
	if err != nil {
		return err
	}
	ctx, stop := s.onSignals(c.Context, log)
	defer stop()
	hangups, stopHangups := s.hangups()
	defer stopHangups()
	return s.runAgent(ctx, cfg, log, hangups)
}

// agentConfig maps the agent's flags and their environment variables onto
// agent.DevConfig (with --dev) or agent.DefaultConfig, after the --config
// file, if any, has changed what it sets. A flag that is not given leaves
// the file's value or the default alone, so the defaults live in package
// agent only. Validation is left to agent.New. The file is returned too
// (nil without --config) for the settings outside agent.Config.
func agentConfig(c *cli.Context) (agent.Config, *agent.FileConfig, error) {
	cfg := agent.DefaultConfig()
	if c.Bool("dev") {
		cfg = agent.DevConfig()
	}
	var file *agent.FileConfig
	if path := c.String("config"); path != "" {
		var err error
		if file, err = agent.LoadConfigFile(path); err != nil {
			return agent.Config{}, nil, err
		}
		file.Apply(&cfg)
		cfg.ConfigFile = path
	}
	setString := func(flag string, dst *string) {
		if c.IsSet(flag) {
			*dst = c.String(flag)
		}
	}
	setString("node", &cfg.NodeName)
	setString("datacenter", &cfg.Datacenter)
	if c.IsSet("node-meta") {
		if err := addNodeMeta(&cfg, c.StringSlice("node-meta")); err != nil {
			return agent.Config{}, nil, err
		}
	}
	setString("bind", &cfg.BindAddr)
	setString("advertise", &cfg.AdvertiseAddr)
	setString("encrypt", &cfg.EncryptKey)
	setString("dns-addr", &cfg.DNSAddr)
	setString("https-addr", &cfg.HTTPSAddr)
	setString("cert-file", &cfg.TLS.CertFile)
	setString("key-file", &cfg.TLS.KeyFile)
	setString("ca-file", &cfg.TLS.CAFile)
	if c.IsSet("verify-incoming") {
		cfg.TLS.VerifyIncoming = c.Bool("verify-incoming")
	}
	setString("domain", &cfg.Domain)
	if c.IsSet("dns-service-ttl") {
		cfg.DNSServiceTTL = c.Duration("dns-service-ttl")
	}
	if c.IsSet("dns-node-ttl") {
		cfg.DNSNodeTTL = c.Duration("dns-node-ttl")
	}
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
	if c.IsSet("epoch-max-skew") {
		cfg.EpochMaxSkew = c.Duration("epoch-max-skew")
	}
	if c.IsSet("data-dir") {
		cfg.DataDir = c.String("data-dir") // Validate refuses it with --dev
	}
	if c.IsSet("gossip-compression") {
		cfg.GossipCompression = c.Bool("gossip-compression")
	}
	if err := dampingFlags(c, &cfg); err != nil {
		return agent.Config{}, nil, err
	}
	return cfg, file, nil
}

// dampingFlags applies the flap damping flags to cfg.Damping. They are
// checked here: a zero there means the default, so a --flap-window of 0s
// would silently become 2m.
func dampingFlags(c *cli.Context, cfg *agent.Config) error {
	d := &cfg.Damping
	if c.IsSet("flap-threshold") {
		if n := c.Int("flap-threshold"); n < 1 {
			return fmt.Errorf("agent: --flap-threshold must be at least 1, got %d", n)
		}
		d.Threshold = c.Int("flap-threshold")
	}
	for _, f := range []struct {
		flag string
		dst  *time.Duration
	}{{"flap-window", &d.Window}, {"flap-hold-down", &d.HoldDown}} {
		if !c.IsSet(f.flag) {
			continue
		}
		v, err := positiveDuration(c, f.flag)
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		*f.dst = v
	}
	if c.Bool("no-flap-damping") {
		for _, f := range []string{"flap-threshold", "flap-window", "flap-hold-down"} {
			if c.IsSet(f) {
				return fmt.Errorf("agent: --no-flap-damping cannot be combined with --%s", f)
			}
		}
		d.Disabled = true
	}
	return nil
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
	lvl, err := parseLevel("agent", level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if json {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// parseLevel reads the --log-level flag of the command cmd.
func parseLevel(cmd, level string) (slog.Level, error) {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%s: --log-level %q is not one of debug, info, warn, error", cmd, level)
}

// runAgent builds an agent from cfg and runs it until ctx ends; every
// signal on reloads makes it read its config file again.
func runAgent(ctx context.Context, cfg agent.Config, log *slog.Logger, reloads <-chan os.Signal) error {
	a, err := agent.New(cfg, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		reloadOnSignal(ctx, a, log, reloads)
	}()
	err = a.Run(ctx)
	cancel()
	wg.Wait()
	return err
}

// reloadOnSignal reloads the agent's config file at every signal on sigs,
// from the time the agent is ready until ctx ends. A reload that fails is
// logged, and the agent runs on as it was.
func reloadOnSignal(ctx context.Context, a *agent.Agent, log *slog.Logger, sigs <-chan os.Signal) {
	select {
	case <-a.Ready():
	case <-ctx.Done():
		return
	}
	for {
		select {
		case sig := <-sigs:
			log.Info("reloading the config file", "signal", sig.String())
			if err := a.Reload(ctx); err != nil {
				log.Error("reload failed; the agent runs on as it was", "err", err)
			}
		case <-ctx.Done():
			return
		}
	}
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
