package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/shoal-sd/shoal/api"
)

func (s *shell) keyringCommand() *cli.Command {
	return &cli.Command{
		Name:  "keyring",
		Usage: "list, install, use or remove gossip encryption keys on every member",
		UsageText: "shoal keyring -list [-local-only] [--json]\n" +
			"shoal keyring -install KEY | -use KEY | -remove KEY",
		Description: "Rotating the gossip key of a running cluster takes three steps, each acting on\n" +
			"every member: -install the new key (shoal keygen makes one), -use it as the\n" +
			"primary, then -remove the old one. Each agent keeps its keyring in its data dir.",
		Flags: []cli.Flag{
			httpAddrFlag(false), jsonFlag(),
			&cli.BoolFlag{Name: "list", Usage: "list the keys installed and on how many nodes"},
			&cli.BoolFlag{Name: "local-only", Usage: "with -list: this agent's keys only"},
			&cli.StringFlag{Name: "install", Usage: "install a new key on every member"},
			&cli.StringFlag{Name: "use", Usage: "make an installed key the primary on every member"},
			&cli.StringFlag{Name: "remove", Usage: "remove a key (not the primary) from every member"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			var ops []string
			for _, f := range []string{"list", "install", "use", "remove"} {
				if c.IsSet(f) {
					ops = append(ops, f)
				}
			}
			if len(ops) != 1 {
				return errors.New("keyring: give exactly one of -list, -install, -use, -remove")
			}
			if ops[0] != "list" && (c.IsSet("local-only") || c.IsSet("json")) {
				return errors.New("keyring: -local-only and --json go with -list")
			}
			cl := client(c)
			switch ops[0] {
			case "list":
				rs, err := cl.KeyringList(c.Context, c.Bool("local-only"))
				if err != nil {
					return fmt.Errorf("keyring: %w", err)
				}
				if c.Bool("json") {
					return writeJSON(s.stdout, orEmpty(rs))
				}
				return keyringTable(s.stdout, rs)
			case "install":
				fmt.Fprintln(s.stdout, "==> Installing the new gossip encryption key on every member...")
				if err := cl.KeyringInstall(c.Context, c.String("install")); err != nil {
					return fmt.Errorf("keyring: %w", err)
				}
			case "use":
				fmt.Fprintln(s.stdout, "==> Changing the primary gossip encryption key on every member...")
				if err := cl.KeyringUse(c.Context, c.String("use")); err != nil {
					return fmt.Errorf("keyring: %w", err)
				}
			case "remove":
				fmt.Fprintln(s.stdout, "==> Removing the gossip encryption key from every member...")
				if err := cl.KeyringRemove(c.Context, c.String("remove")); err != nil {
					return fmt.Errorf("keyring: %w", err)
				}
			}
			fmt.Fprintln(s.stdout, "Done: every member took it.")
			return nil
		},
	}
}

// keyringTable prints each pool's keys, the primary first: Key Nodes
// Primary, then the nodes that did not answer. It returns an error when
// any did not, so that the command exits 1.
func keyringTable(w io.Writer, rs []*api.KeyringResponse) error {
	failed := 0
	for _, r := range rs {
		fmt.Fprintf(w, "%s (LAN), %d nodes:\n", r.Datacenter, r.NumNodes)
		keys := make([]string, 0, len(r.Keys))
		for k := range r.Keys {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if pi, pj := r.PrimaryKeys[keys[i]], r.PrimaryKeys[keys[j]]; pi != pj {
				return pi > pj
			}
			return keys[i] < keys[j]
		})
		rows := make([][]string, 0, len(keys))
		for _, k := range keys {
			primary := ""
			if n := r.PrimaryKeys[k]; n > 0 {
				primary = "primary on " + strconv.Itoa(n)
			}
			rows = append(rows, []string{"  " + k, fmt.Sprintf("[%d/%d]", r.Keys[k], r.NumNodes), primary})
		}
		if err := writeTable(w, []string{"  Key", "Nodes", "Primary"}, rows); err != nil {
			return err
		}
		nodes := make([]string, 0, len(r.Messages))
		for n := range r.Messages {
			nodes = append(nodes, n)
		}
		sort.Strings(nodes)
		for _, n := range nodes {
			fmt.Fprintf(w, "  %s: %s\n", n, r.Messages[n])
		}
		failed += len(nodes)
	}
	if failed > 0 {
		return fmt.Errorf("keyring: %d nodes did not list their keys", failed)
	}
	return nil
}
