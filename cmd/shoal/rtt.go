package main

import (
	"errors"
	"fmt"

	"github.com/hashicorp/serf/coordinate"
	"github.com/urfave/cli/v2"

	"github.com/shoal-sd/shoal/api"
)

// rttCommand is Consul's `consul rtt`: the round trip between two nodes
// as their network coordinates estimate it, computed here from the
// agent's /v1/coordinate/nodes.
func (s *shell) rttCommand() *cli.Command {
	return &cli.Command{
		Name:  "rtt",
		Usage: "estimate the network round trip time between two nodes",
		UsageText: "shoal rtt NODE [NODE]\n\n" +
			"With one NODE, the other is the agent's own node. The estimate comes from the\n" +
			"network coordinates the agent holds (see /v1/coordinate/nodes).",
		Flags: []cli.Flag{httpAddrFlag(false)},
		Action: func(c *cli.Context) error {
			nodes := c.Args().Slice()
			switch len(nodes) {
			case 0:
				return errors.New("rtt: missing node name (shoal rtt NODE [NODE])")
			case 1, 2:
			default:
				return fmt.Errorf("rtt: unexpected argument %q (two node names at most)", nodes[2])
			}
			cl := client(c)
			if len(nodes) == 1 {
				self, err := cl.Self(c.Context)
				if err != nil {
					return fmt.Errorf("rtt: %w", err)
				}
				nodes = append(nodes, self.Config.NodeName)
			}
			entries, _, err := cl.CoordinateNodes(c.Context, nil)
			if err != nil {
				return fmt.Errorf("rtt: %w", err)
			}
			d, err := estimateRTT(entries, nodes[0], nodes[1])
			if err != nil {
				return fmt.Errorf("rtt: %w", err)
			}
			fmt.Fprintf(s.stdout, "Estimated %s <-> %s rtt: %.3f ms (using LAN coordinates)\n", nodes[0], nodes[1], d*1000)
			return nil
		},
	}
}

// estimateRTT is the round trip, in seconds, between two nodes' entries;
// a node is 0 away from itself, as ?near has it.
func estimateRTT(entries []*api.CoordinateEntry, a, b string) (float64, error) {
	ca, err := findCoordinate(entries, a)
	if err != nil {
		return 0, err
	}
	cb, err := findCoordinate(entries, b)
	if err != nil {
		return 0, err
	}
	if a == b {
		return 0, nil
	}
	if !ca.IsCompatibleWith(cb) {
		return 0, fmt.Errorf("the coordinates of %q and %q have different dimensions", a, b)
	}
	return ca.DistanceTo(cb).Seconds(), nil
}

func findCoordinate(entries []*api.CoordinateEntry, node string) (*coordinate.Coordinate, error) {
	for _, e := range entries {
		if e != nil && e.Node == node && e.Coord != nil {
			c := &coordinate.Coordinate{Vec: e.Coord.Vec, Error: e.Coord.Error, Adjustment: e.Coord.Adjustment, Height: e.Coord.Height}
			if len(c.Vec) == 0 || !c.IsValid() {
				return nil, fmt.Errorf("the agent's coordinate for node %q is not valid", node)
			}
			return c, nil
		}
	}
	return nil, fmt.Errorf("no coordinate for node %q (unknown to the agent, or not pinged yet)", node)
}
