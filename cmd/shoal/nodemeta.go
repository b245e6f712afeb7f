package main

import (
	"fmt"
	"maps"
	"strings"

	"github.com/shoal-sd/shoal/agent"
)

// addNodeMeta adds the KEY:VALUE pairs of --node-meta to cfg.NodeMeta (the
// config file's, if any), replacing pairs of the same key. The value may
// hold ':'. The pairs are validated with the rest of the configuration.
func addNodeMeta(cfg *agent.Config, pairs []string) error {
	m := maps.Clone(cfg.NodeMeta)
	if m == nil {
		m = make(map[string]string, len(pairs))
	}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, ":")
		if !ok || k == "" {
			return fmt.Errorf("agent: --node-meta %q: want KEY:VALUE", p)
		}
		m[k] = v
	}
	cfg.NodeMeta = m
	return nil
}

// parseNodeMetaFlag turns the KEY:VALUE pairs of a client's --node-meta
// into QueryOptions.NodeMeta; nil for none. A key given twice would
// need both values at once, which no node has: it is refused.
func parseNodeMetaFlag(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, ":")
		if !ok || k == "" {
			return nil, fmt.Errorf("--node-meta %q: want KEY:VALUE", p)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("--node-meta %q: key %q given twice", p, k)
		}
		m[k] = v
	}
	return m, nil
}
