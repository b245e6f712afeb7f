package agent

import (
	"fmt"
	"maps"
	"math"
	"strings"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/gossip"
)

// validateNodeMeta checks NodeMeta pair by pair, as Consul does, then as
// a whole: it travels in memberlist's node metadata beside the agent's
// own facts, and all of it must fit there.
func (c *Config) validateNodeMeta() error {
	if err := catalog.ValidateNodeMeta("node_meta", c.NodeMeta); err != nil {
		return err
	}
	b := gossip.EncodeMeta(gossip.NodeMeta{
		Protocol: math.MaxUint8, MinProtocol: 1, Epoch: math.MaxUint64, // the longest epoch
		Datacenter: c.Datacenter, Version: Version, User: c.NodeMeta, Gen: math.MaxUint64,
	})
	if len(b) > memberlist.MetaMaxSize {
		return fmt.Errorf("node_meta: %d pairs take %d bytes with the agent's own node metadata; memberlist carries %d: shorten or drop some",
			len(c.NodeMeta), len(b), memberlist.MetaMaxSize)
	}
	return nil
}

// nodeMeta is this node's Meta as every agent shows it: the operator's
// node metadata and the Shoal version.
func (a *Agent) nodeMeta() map[string]string {
	m := make(map[string]string, len(a.cfg.NodeMeta)+1)
	maps.Copy(m, a.cfg.NodeMeta)
	m[gossip.VersionMetaKey] = Version
	return m
}

// nodeMeta reads node_meta: an object of strings, each pair valid (the
// size of the whole is checked with the rest of the configuration).
func (d *configDecoder) nodeMeta(path string, v *jsonNode) (map[string]string, error) {
	m := map[string]string{}
	err := d.object(path, v, func(mem *jsonMember) error {
		p := path + "." + mem.key
		s, err := d.str(p, mem.val)
		if err != nil {
			return err
		}
		if len(m) == catalog.MaxNodeMetaPairs {
			return d.errAt(mem.keyOff, p, "more than %d pairs", catalog.MaxNodeMetaPairs)
		}
		if err := catalog.ValidateNodeMetaPair(path, mem.key, *s); err != nil {
			return d.errAt(mem.keyOff, p, "%s", strings.TrimPrefix(err.Error(), path+": "))
		}
		m[mem.key] = *s
		return nil
	})
	return m, err
}
