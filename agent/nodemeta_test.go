package agent

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"

	"github.com/shoal-sd/shoal/gossip"
)

func TestValidateNodeMeta(t *testing.T) {
	many := map[string]string{}
	for i := range 33 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	for _, tc := range []struct {
		name string
		meta map[string]string
		want string // the start of the error; "" for valid
	}{
		{"none", nil, ""},
		{"some", map[string]string{"env": "prod", "rack": "r-1", "Team_2": "🐟 fish", "empty": ""}, ""},
		{"too many", many, "node_meta: has 33 pairs; the limit is 32"},
		{"empty key", map[string]string{"": "x"}, "node_meta: a key is empty"},
		{"bad key", map[string]string{"env.name": "x"}, `node_meta: key "env.name": use letters, digits`},
		{"reserved key", map[string]string{"shoal-version": "x"}, `node_meta: key "shoal-version": the prefix "shoal-" is reserved`},
		{"long key", map[string]string{strings.Repeat("k", 129): "x"}, "node_meta: key"},
		{"long value", map[string]string{"k": strings.Repeat("v", 513)}, `node_meta: value of "k" is 513 bytes long; the limit is 512`},
		{"not UTF-8", map[string]string{"k": "\xff"}, "node_meta: value"},
		// Each pair is fine, but together they overflow memberlist's
		// node metadata.
		{"too big together", map[string]string{"a": strings.Repeat("v", 300), "b": strings.Repeat("v", 200)}, "node_meta: 2 pairs take"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DevConfig()
			c.NodeName = "node-a"
			c.NodeMeta = tc.meta
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("want an error starting %q, got %v", tc.want, err)
			}
		})
	}
}

// Validate's size check is exact: the most that passes fits memberlist
// with the longest epoch, one more byte does not pass.
func TestNodeMetaSizeLimitIsExact(t *testing.T) {
	c := DevConfig()
	c.NodeName, c.Datacenter = "node-a", "dc1"
	size := func(m map[string]string) int {
		// The longest epoch and refutation generation, and a protocol
		// range.
		return len(gossip.EncodeMeta(gossip.NodeMeta{Protocol: 255, MinProtocol: 1, Epoch: 1<<64 - 1,
			Datacenter: c.Datacenter, Version: Version, User: m, Gen: 1<<64 - 1}))
	}
	m := map[string]string{"a": ""}
	for size(m) < memberlist.MetaMaxSize {
		m["a"] += "v"
	}
	if size(m) != memberlist.MetaMaxSize {
		t.Fatalf("cannot reach %d bytes exactly: %d", memberlist.MetaMaxSize, size(m))
	}
	c.NodeMeta = m
	if err := c.Validate(); err != nil {
		t.Fatalf("%d bytes refused: %v", size(m), err)
	}
	m2 := maps.Clone(m)
	m2["a"] += "v"
	c.NodeMeta = m2
	if err := c.Validate(); err == nil {
		t.Fatalf("%d bytes accepted", size(m2))
	}
}

func TestConfigFileNodeMeta(t *testing.T) {
	f, err := decodeConfigFile("c.json", []byte(`{"node_name": "n1", "node_meta": {"env": "prod", "rack": "r:1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DevConfig()
	f.Apply(&cfg)
	if want := map[string]string{"env": "prod", "rack": "r:1"}; !maps.Equal(cfg.NodeMeta, want) {
		t.Fatalf("NodeMeta %v, want %v", cfg.NodeMeta, want)
	}
	for _, tc := range []struct{ file, want string }{
		{`{"node_meta": {"env": 1}}`, "c.json:1:23: node_meta.env: expected a string"},
		{`{"node_meta": ["env"]}`, "c.json:1:15: node_meta: expected"},
		{"{\n \"node_meta\": {\"bad key\": \"x\"}}", `c.json:2:16: node_meta.bad key: key "bad key": use letters, digits`},
		{`{"node_meta": {"shoal-x": "x"}}`, `node_meta.shoal-x: key "shoal-x": the prefix "shoal-" is reserved`},
		{`{"node_meta": {"k": "` + strings.Repeat("v", 513) + `"}}`, "node_meta.k: value"},
	} {
		_, err := decodeConfigFile("c.json", []byte(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40s: got %v, want %q", tc.file, err, tc.want)
		}
	}
}
