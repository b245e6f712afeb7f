package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/shoal-sd/shoal/api"
)

func (s *shell) monitorCommand() *cli.Command {
	return &cli.Command{
		Name:      "monitor",
		Usage:     "stream the agent's log",
		UsageText: "shoal monitor [--log-level debug|info|warn|error] [--log-json]",
		Description: "Prints the agent's log lines as it logs them, at --log-level whatever level\n" +
			"the agent itself logs at, until SIGINT or SIGTERM (exit 0) or until the\n" +
			"agent stops (exit 1). A monitor that reads too slowly loses lines and is\n" +
			"told how many.",
		Flags: []cli.Flag{
			httpAddrFlag(false),
			// No environment variables: $SHOAL_LOG_LEVEL is the agent's.
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&cli.BoolFlag{Name: "log-json", Usage: "JSON lines instead of text"},
		},
		Action: s.monitorAction,
	}
}

func (s *shell) monitorAction(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	level := c.String("log-level")
	if _, err := parseLevel("monitor", level); err != nil {
		return err
	}
	// The first signal ends the stream; a second exits at once, should
	// the stream not end.
	ctx, stop := s.onSignals(c.Context, slog.New(slog.DiscardHandler))
	defer stop()
	err := client(c).Monitor(ctx, level, c.Bool("log-json"), func(line []byte) error {
		_, err := fmt.Fprintf(s.stdout, "%s\n", line)
		return err
	})
	switch {
	case ctx.Err() != nil:
		return nil // stopped by a signal
	case errors.Is(err, api.ErrStreamEnded):
		return errors.New("agent went away")
	}
	return fmt.Errorf("monitor: %w", err)
}
