package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/api"
)

// shell is one run of the command line: where its output goes, and the
// seams that tests replace.
type shell struct {
	stdout, stderr io.Writer

	// runAgent runs an agent with cfg until ctx ends; every value on
	// reloads makes it read its config file again.
	runAgent func(ctx context.Context, cfg agent.Config, log *slog.Logger, reloads <-chan os.Signal) error
	// signals subscribes to SIGINT and SIGTERM; stop unsubscribes.
	signals func() (ch <-chan os.Signal, stop func())
	// hangups subscribes to SIGHUP, the agent's reload signal; stop
	// unsubscribes.
	hangups func() (ch <-chan os.Signal, stop func())
	// exit ends the process at once (a second signal to the agent).
	exit func(code int)
}

// run runs the command line args (without the program name) and returns
// the exit status. Any failure is one line, "shoal: <message>", on stderr
// and status 1. Runs must not overlap: urfave/cli/v2 keeps the --help flag
// in a package variable that every run writes to.
func run(args []string, stdout, stderr io.Writer) int {
	s := &shell{
		stdout:   stdout,
		stderr:   stderr,
		runAgent: runAgent,
		signals:  notifySignals,
		hangups:  notifyHangups,
		exit:     os.Exit,
	}
	return s.run(args)
}

func (s *shell) run(args []string) int {
	app := s.app()
	args = append([]string{app.Name}, reorder(app, args)...)
	if err := app.RunContext(context.Background(), args); err != nil {
		fmt.Fprintf(s.stderr, "shoal: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

// app builds the command tree. It is built afresh for every run because
// urfave/cli keeps parse state in the flag values.
func (s *shell) app() *cli.App {
	app := &cli.App{
		Name:      "shoal",
		Usage:     "service discovery without servers",
		UsageText: "shoal [--http-addr ADDR] COMMAND [options] [arguments]",
		Description: "Run `shoal agent` on every host; the other commands talk to the local agent\n" +
			"over its HTTP API at --http-addr (or $" + api.EnvHTTPAddr + ", default " + api.DefaultAddr + ").",
		Flags: []cli.Flag{httpAddrFlag(true), &cli.StringFlag{
			Name:    "token",
			Usage:   "the ACL token sent to the agent (X-Consul-Token)",
			EnvVars: []string{api.EnvHTTPToken, api.EnvConsulHTTPToken},
		}, &cli.StringFlag{
			Name:    "ca-file",
			Usage:   "CA certificate (PEM) to verify an https:// agent with",
			EnvVars: []string{"SHOAL_CACERT", "CONSUL_CACERT"},
		}, &cli.StringFlag{
			Name:    "client-cert",
			Usage:   "client certificate (PEM) for an agent that verifies incoming HTTPS",
			EnvVars: []string{"SHOAL_CLIENT_CERT", "CONSUL_CLIENT_CERT"},
		}, &cli.StringFlag{
			Name:    "client-key",
			Usage:   "the client certificate's key (PEM)",
			EnvVars: []string{"SHOAL_CLIENT_KEY", "CONSUL_CLIENT_KEY"},
		}},
		Writer:    s.stdout,
		ErrWriter: s.stderr,
		Commands: []*cli.Command{
			s.agentCommand(),
			s.joinCommand(),
			s.leaveCommand(),
			s.membersCommand(),
			s.rttCommand(),
			s.servicesCommand(),
			s.registerCommand(),
			s.deregisterCommand(),
			s.checkCommand(),
			s.checksCommand(),
			s.maintCommand(),
			s.reloadCommand(),
			s.monitorCommand(),
			s.watchCommand(),
			s.keygenCommand(),
			s.keyringCommand(),
			s.versionCommand(),
		},
		// `shoal version` is the one way to ask for the version.
		HideVersion: true,
		// Meta values and tags may hold commas; lists of addresses are
		// split where they are read (splitList).
		DisableSliceFlagSeparator: true,
		OnUsageError:              usageError,
		// run prints the error; urfave must neither print nor exit.
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return fmt.Errorf("unknown command %q (see shoal --help)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
	}
	for _, cmd := range app.Commands {
		for _, c := range append([]*cli.Command{cmd}, cmd.Subcommands...) {
			c.OnUsageError = usageError
			// Without this every command gets a `help` subcommand, and
			// `shoal deregister help` would print help instead of
			// deregistering the service "help".
			c.HideHelpCommand = true
		}
	}
	return app
}

// usageError keeps a flag error to itself: no help text is printed, run
// prints the one line.
func usageError(c *cli.Context, err error, isSubcommand bool) error {
	if isSubcommand {
		return fmt.Errorf("%s: %w", commandName(c), err)
	}
	return err
}

// commandName names the command c runs as the user typed it, with the
// command it is a subcommand of: "check pass".
func commandName(c *cli.Context) string {
	var names []string
	for _, p := range c.Lineage() {
		if p.Command != nil && p.Command.Name != c.App.Name {
			names = append([]string{p.Command.Name}, names...)
		}
	}
	return strings.Join(names, " ")
}

// httpAddrFlag is --http-addr. The global one (before the command) also
// reads $SHOAL_HTTP_ADDR; the one after a command has no environment
// variable so that it never hides a global flag given on the command line.
func httpAddrFlag(global bool) cli.Flag {
	f := &cli.StringFlag{
		Name:        "http-addr",
		Usage:       "the agent's HTTP API, host:port or http://host:port",
		DefaultText: api.DefaultAddr,
	}
	if global {
		f.EnvVars = []string{api.EnvHTTPAddr}
	}
	return f
}

// httpAddr resolves --http-addr: after the command, else before it or from
// $SHOAL_HTTP_ADDR; "" if none of them is given.
func httpAddr(c *cli.Context) string {
	if c.IsSet("http-addr") {
		return c.String("http-addr")
	}
	for _, p := range c.Lineage()[1:] {
		if p.Command != nil && p.Command.Name == c.App.Name {
			return p.String("http-addr")
		}
	}
	return ""
}

// globalString is a flag given before the command (or by its
// environment variable).
func globalString(c *cli.Context, name string) string {
	for _, p := range c.Lineage() {
		if p.Command == nil || p.Command.Name == c.App.Name {
			if v := p.String(name); v != "" {
				return v
			}
		}
	}
	return ""
}

// reorder moves a command's flags before its arguments, so that the forms
// the usage lines show (`shoal services NAME --tag T`) parse: Go's flag
// package, and so urfave/cli/v2, stop at the first argument. Flags before
// the command are left where they are; everything after "--" stays an
// argument.
func reorder(app *cli.App, args []string) []string {
	i := 0
	for i < len(args) && isFlag(args[i]) {
		if args[i] == "--" {
			return args
		}
		if takesValue(app.Flags, args[i]) {
			i++
		}
		i++
	}
	if i >= len(args) || app.Command(args[i]) == nil {
		return args
	}
	cmd := app.Command(args[i])
	// The flags of `shoal check pass ID --note x` are the subcommand's.
	for i+1 < len(args) && cmd.Command(args[i+1]) != nil {
		i++
		cmd = cmd.Command(args[i])
	}
	var flags, rest []string
	tail := args[i+1:]
	for j := 0; j < len(tail); j++ {
		a := tail[j]
		switch {
		case a == "--":
			// Flags, then "--", then every argument: parsing stops there.
			flags = append(flags, "--")
			rest = append(rest, tail[j+1:]...)
			return slices.Concat(args[:i+1], flags, rest)
		case isFlag(a):
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && j+1 < len(tail) {
				j++
				flags = append(flags, tail[j])
			}
		default:
			rest = append(rest, a)
		}
	}
	return slices.Concat(args[:i+1], flags, rest)
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// takesValue reports whether the flag token a ("-x" or "--x", without
// "=value") names one of flags that consumes the next word.
func takesValue(flags []cli.Flag, a string) bool {
	name := strings.TrimLeft(a, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				v, ok := f.(cli.DocGenerationFlag)
				return ok && v.TakesValue()
			}
		}
	}
	return false
}

// oneLine folds a message onto one line, so that every failure is exactly
// one line of stderr.
func oneLine(msg string) string {
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	if len(parts) == 0 {
		return "failed"
	}
	return strings.Join(parts, "; ")
}

// noArgs refuses arguments to a command that takes none.
func noArgs(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("%s: unexpected argument %q", commandName(c), c.Args().First())
	}
	return nil
}

// notifySignals subscribes to SIGINT and SIGTERM.
func notifySignals() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	return ch, func() { signal.Stop(ch) }
}

// notifyHangups subscribes to SIGHUP. One slot is enough: hangups that
// come during a reload ask for the same one reload after it.
func notifyHangups() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}
