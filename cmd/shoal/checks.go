package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shoal-sd/shoal/api"
)

// defaultInterval is how often an HTTP, TCP or gRPC check given on the
// command line runs when --interval does not say.
const defaultInterval = 10 * time.Second

// checkFlagSet names the flags that define a check: `shoal register`
// spells the kinds --http-check and so on, `shoal check register` --http.
type checkFlagSet struct {
	http, tcp, grpc string // the kinds besides --ttl
	service         bool   // a service's own check: --deregister-critical-after applies
}

var (
	serviceCheckFlags = checkFlagSet{http: "http-check", tcp: "tcp-check", grpc: "grpc-check", service: true}
	agentCheckFlags   = checkFlagSet{http: "http", tcp: "tcp", grpc: "grpc"}
)

// kinds lists the flags of the kinds of check, for messages.
func (set checkFlagSet) kinds() string {
	return "--" + set.http + ", --" + set.tcp + ", --" + set.grpc + " or --ttl"
}

// checkFlags are the flags that define a check.
func checkFlags(set checkFlagSet) []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: set.http, Usage: "check: request this http:// or https:// URL every --interval; 2xx passes, 429 warns"},
		&cli.StringFlag{Name: set.tcp, Usage: "check: connect to this host:port every --interval"},
		&cli.StringFlag{Name: set.grpc, Usage: "check: ask host:port[/service] the standard gRPC health service every --interval"},
		&cli.DurationFlag{Name: "ttl", Usage: "check: critical unless reported (shoal check pass) within this time", DefaultText: "none"},
		&cli.DurationFlag{Name: "interval", Value: defaultInterval, Usage: "how often an HTTP, TCP or gRPC check runs"},
		&cli.DurationFlag{Name: "timeout", Usage: "the longest one run of an HTTP, TCP or gRPC check may take", DefaultText: "10s, or the interval if shorter"},
	}
	if set.service {
		flags = append(flags, &cli.DurationFlag{Name: "deregister-critical-after",
			Usage: "deregister the instance once its check has stayed critical this long", DefaultText: "never"})
	}
	return flags
}

// readCheck reads the check the flags of set define: nil if they define
// none. It refuses two kinds of check, and tuning flags that do not apply;
// the agent validates the rest.
func readCheck(c *cli.Context, set checkFlagSet) (*api.AgentServiceCheck, error) {
	chk := &api.AgentServiceCheck{}
	var given []string
	for _, k := range []struct {
		flag string
		dst  *string
	}{{set.http, &chk.HTTP}, {set.tcp, &chk.TCP}, {set.grpc, &chk.GRPC}} {
		if !c.IsSet(k.flag) {
			continue
		}
		if *k.dst = c.String(k.flag); *k.dst == "" {
			return nil, fmt.Errorf("--%s: empty", k.flag)
		}
		given = append(given, "--"+k.flag)
	}
	if c.IsSet("ttl") {
		ttl, err := positiveDuration(c, "ttl")
		if err != nil {
			return nil, err
		}
		chk.TTL = ttl.String()
		given = append(given, "--ttl")
	}
	tuning := []string{"interval", "timeout"}
	if set.service {
		tuning = append(tuning, "deregister-critical-after")
	}
	switch len(given) {
	case 0:
		for _, f := range tuning {
			if c.IsSet(f) {
				return nil, fmt.Errorf("--%s needs a check: %s", f, set.kinds())
			}
		}
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("%s and %s cannot be combined: one kind of check", given[0], given[1])
	}
	if chk.TTL != "" {
		for _, f := range []string{"interval", "timeout"} {
			if c.IsSet(f) {
				return nil, fmt.Errorf("--%s does not apply to --ttl: a TTL check runs nothing", f)
			}
		}
	} else {
		interval, err := positiveDuration(c, "interval")
		if err != nil {
			return nil, err
		}
		chk.Interval = interval.String()
		if c.IsSet("timeout") {
			timeout, err := positiveDuration(c, "timeout")
			if err != nil {
				return nil, err
			}
			chk.Timeout = timeout.String()
		}
	}
	if set.service && c.IsSet("deregister-critical-after") {
		after, err := positiveDuration(c, "deregister-critical-after")
		if err != nil {
			return nil, err
		}
		chk.DeregisterCriticalServiceAfter = after.String()
	}
	return chk, nil
}

// positiveDuration reads a duration flag that must be positive.
func positiveDuration(c *cli.Context, flag string) (time.Duration, error) {
	v := c.Duration(flag)
	if v <= 0 {
		return 0, fmt.Errorf("--%s must be positive, got %s", flag, v)
	}
	return v, nil
}

// oneArg returns the argument of a command that takes exactly one; what
// names it in messages.
func oneArg(c *cli.Context, what string) (string, error) {
	name := commandName(c)
	switch c.NArg() {
	case 0:
		return "", fmt.Errorf("%s: missing %s (%s)", name, what, c.Command.UsageText)
	case 1:
		if c.Args().First() == "" {
			return "", fmt.Errorf("%s: empty %s", name, what)
		}
		return c.Args().First(), nil
	}
	return "", fmt.Errorf("%s: unexpected argument %q (one %s)", name, c.Args().Get(1), what)
}

func (s *shell) checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "register and deregister the agent's checks, and report TTL checks",
		UsageText: "shoal check pass|warn|fail CHECK_ID [--note TEXT]\n" +
			"shoal check update CHECK_ID --status passing|warning|critical [--output TEXT]\n" +
			"shoal check register --name N [--id ID] [--service-id S] (--http URL | --tcp H:P | --grpc H:P[/svc] | --ttl D)\n" +
			"    [--interval D] [--timeout D] [--notes TEXT]\n" +
			"shoal check deregister CHECK_ID",
		Subcommands: []*cli.Command{
			s.ttlCommand("pass", api.HealthPassing, (*api.Client).PassTTL),
			s.ttlCommand("warn", api.HealthWarning, (*api.Client).WarnTTL),
			s.ttlCommand("fail", api.HealthCritical, (*api.Client).FailTTL),
			s.checkUpdateCommand(),
			s.checkRegisterCommand(),
			s.checkDeregisterCommand(),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return fmt.Errorf("check: unknown subcommand %q (pass, warn, fail, update, register or deregister)", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
	}
}

// ttlCommand is `shoal check pass|warn|fail`, which report calls.
func (s *shell) ttlCommand(verb, status string, report func(*api.Client, context.Context, string, string) error) *cli.Command {
	return &cli.Command{
		Name:      verb,
		Usage:     "set a TTL check " + status + " and start its TTL again",
		UsageText: "shoal check " + verb + " CHECK_ID [--note TEXT]",
		Flags: []cli.Flag{
			httpAddrFlag(false),
			&cli.StringFlag{Name: "note", Usage: "the check's output"},
		},
		Action: func(c *cli.Context) error {
			id, err := oneArg(c, "CHECK_ID")
			if err != nil {
				return err
			}
			if err := report(client(c), c.Context, id, c.String("note")); err != nil {
				return fmt.Errorf("check %s %s: %w", verb, id, err)
			}
			fmt.Fprintf(s.stdout, "Check %q is %s.\n", id, status)
			return nil
		},
	}
}

func (s *shell) checkUpdateCommand() *cli.Command {
	return &cli.Command{
		Name:      "update",
		Usage:     "set a TTL check's status and output",
		UsageText: "shoal check update CHECK_ID --status passing|warning|critical [--output TEXT]",
		Flags: []cli.Flag{
			httpAddrFlag(false),
			&cli.StringFlag{Name: "status", Usage: "passing, warning or critical (required)"},
			&cli.StringFlag{Name: "output", Usage: "the check's output"},
		},
		Action: func(c *cli.Context) error {
			id, err := oneArg(c, "CHECK_ID")
			if err != nil {
				return err
			}
			status := c.String("status")
			switch status {
			case api.HealthPassing, api.HealthWarning, api.HealthCritical:
			case "":
				return errors.New("check update: missing --status (passing, warning or critical)")
			default:
				return fmt.Errorf("check update: --status %q is not one of passing, warning, critical", status)
			}
			if err := client(c).UpdateTTL(c.Context, id, c.String("output"), status); err != nil {
				return fmt.Errorf("check update %s: %w", id, err)
			}
			fmt.Fprintf(s.stdout, "Check %q is %s.\n", id, status)
			return nil
		},
	}
}

func (s *shell) checkRegisterCommand() *cli.Command {
	return &cli.Command{
		Name:  "register",
		Usage: "add a check to the agent, of its node or of one of its services",
		UsageText: "shoal check register --name N [--id ID] [--service-id S] (--http URL | --tcp H:P | --grpc H:P[/svc] | --ttl D)\n" +
			"    [--interval D] [--timeout D] [--notes TEXT]",
		Flags: append([]cli.Flag{
			httpAddrFlag(false),
			&cli.StringFlag{Name: "name", Usage: "the check's name (required)"},
			&cli.StringFlag{Name: "id", Usage: "the check's ID on this agent", DefaultText: "the name"},
			&cli.StringFlag{Name: "service-id", Usage: "the service the check is of", DefaultText: "none: a check of the node"},
			&cli.StringFlag{Name: "notes", Usage: "notes for humans"},
		}, checkFlags(agentCheckFlags)...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if c.String("name") == "" {
				return errors.New("check register: missing --name")
			}
			chk, err := readCheck(c, agentCheckFlags)
			if err != nil {
				return fmt.Errorf("check register: %w", err)
			}
			if chk == nil {
				return fmt.Errorf("check register: missing a check: %s", agentCheckFlags.kinds())
			}
			reg := &api.AgentCheckRegistration{
				ID:                c.String("id"),
				Name:              c.String("name"),
				Notes:             c.String("notes"),
				ServiceID:         c.String("service-id"),
				AgentServiceCheck: *chk,
			}
			if err := client(c).CheckRegister(c.Context, reg); err != nil {
				return fmt.Errorf("check register: %w", err)
			}
			id := reg.ID
			if id == "" {
				id = reg.Name
			}
			fmt.Fprintf(s.stdout, "Registered check %q.\n", id)
			return nil
		},
	}
}

func (s *shell) checkDeregisterCommand() *cli.Command {
	return &cli.Command{
		Name:      "deregister",
		Usage:     "remove a check from the agent",
		UsageText: "shoal check deregister CHECK_ID",
		Flags:     []cli.Flag{httpAddrFlag(false)},
		Action: func(c *cli.Context) error {
			id, err := oneArg(c, "CHECK_ID")
			if err != nil {
				return err
			}
			if err := client(c).CheckDeregister(c.Context, id); err != nil {
				return fmt.Errorf("check deregister %s: %w", id, err)
			}
			fmt.Fprintf(s.stdout, "Deregistered check %q.\n", id)
			return nil
		},
	}
}

func (s *shell) checksCommand() *cli.Command {
	return &cli.Command{
		Name:      "checks",
		Usage:     "list the agent's checks and their states",
		UsageText: "shoal checks [--json]",
		Description: "Lists the checks this agent runs, maintenance checks included. A damped check\n" +
			"changed state too often and is held at the worst state it showed.",
		Flags: []cli.Flag{httpAddrFlag(false), jsonFlag()},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			checks, err := client(c).AgentChecks(c.Context)
			if err != nil {
				return fmt.Errorf("checks: %w", err)
			}
			if c.Bool("json") {
				return writeJSON(s.stdout, orEmptyMap(checks))
			}
			return checksTable(s.stdout, checks)
		},
	}
}

func (s *shell) maintCommand() *cli.Command {
	return &cli.Command{
		Name:      "maint",
		Usage:     "put the node or a service into maintenance mode, take it out, or list",
		UsageText: "shoal maint [--enable [--reason TEXT] | --disable] [--service ID]",
		Description: "A node or service in maintenance mode carries a critical check, so that none of\n" +
			"its instances is served as healthy. Without --enable or --disable, lists what is\n" +
			"in maintenance mode (nothing when nothing is).",
		Flags: []cli.Flag{
			httpAddrFlag(false),
			&cli.BoolFlag{Name: "enable", Usage: "enter maintenance mode"},
			&cli.BoolFlag{Name: "disable", Usage: "leave maintenance mode"},
			&cli.StringFlag{Name: "service", Usage: "the ID of the service", DefaultText: "the whole node"},
			&cli.StringFlag{Name: "reason", Usage: "why, for whoever looks", DefaultText: "a default text"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			enable, disable := c.Bool("enable"), c.Bool("disable")
			switch {
			case enable && disable:
				return errors.New("maint: --enable and --disable cannot be combined")
			case !enable && !disable:
				for _, f := range []string{"service", "reason"} {
					if c.IsSet(f) {
						return fmt.Errorf("maint: --%s needs --enable or --disable", f)
					}
				}
				checks, err := client(c).AgentChecks(c.Context)
				if err != nil {
					return fmt.Errorf("maint: %w", err)
				}
				return maintenanceList(s.stdout, checks)
			case disable && c.IsSet("reason"):
				return errors.New("maint: --reason goes with --enable")
			}
			id := c.String("service")
			if c.IsSet("service") && id == "" {
				return errors.New("maint: --service: empty service ID")
			}
			cl := client(c)
			var err error
			switch {
			case id == "" && enable:
				err = cl.EnableNodeMaintenance(c.Context, c.String("reason"))
			case id == "":
				err = cl.DisableNodeMaintenance(c.Context)
			case enable:
				err = cl.EnableServiceMaintenance(c.Context, id, c.String("reason"))
			default:
				err = cl.DisableServiceMaintenance(c.Context, id)
			}
			if err != nil {
				return fmt.Errorf("maint: %w", err)
			}
			// Consul's words.
			what, verb := "Node", "entered"
			if id != "" {
				what = "Service"
			}
			if disable {
				verb = "left"
			}
			msg := what + " " + verb + " maintenance mode"
			if id != "" {
				msg += ": " + id
			}
			fmt.Fprintln(s.stdout, msg)
			return nil
		},
	}
}

func (s *shell) reloadCommand() *cli.Command {
	return &cli.Command{
		Name:      "reload",
		Usage:     "make the agent read its config file again",
		UsageText: "shoal reload",
		Description: "The agent registers the services its --config file defines now, and\n" +
			"deregisters those it no longer does; a file that does not load changes\n" +
			"nothing. `kill -HUP` of the agent does the same.",
		Flags: []cli.Flag{httpAddrFlag(false)},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if err := client(c).Reload(c.Context); err != nil {
				return fmt.Errorf("reload: %w", err)
			}
			fmt.Fprintln(s.stdout, "Configuration reloaded.")
			return nil
		},
	}
}
