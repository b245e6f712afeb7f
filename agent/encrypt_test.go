package agent_test

import (
	"context"
	"testing"

	"github.com/shoal-sd/shoal/agent"
	"github.com/shoal-sd/shoal/internal/testutil"
)

// Encryption is turned on in a running cluster in three rolling steps, as
// in Consul: every agent gets the key with encrypt_verify_incoming and
// _outgoing false; then each sends encrypted (outgoing true); then each
// refuses plain gossip (incoming true). At every step, agents of the step
// before and of the step after form one cluster and serve one catalog;
// a plain agent and a strict one do not.
func TestEncryptionInRollingSteps(t *testing.T) {
	const key = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
	type mode struct {
		key                 bool
		acceptPlain, sendPl bool
	}
	plain := mode{}
	step1 := mode{key: true, acceptPlain: true, sendPl: true}
	step2 := mode{key: true, acceptPlain: true}
	strict := mode{key: true}
	for _, tc := range []struct {
		name    string
		a, b    mode
		cluster bool
	}{
		{"plain with step 1", plain, step1, true},
		{"step 1 with step 2", step1, step2, true},
		{"step 2 with strict", step2, strict, true},
		{"plain with strict", plain, strict, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testutil.NewEmptyCluster(t)
			modes := map[string]mode{"node-0": tc.a, "node-1": tc.b}
			c.Configure = func(cfg *agent.Config) {
				m := modes[cfg.NodeName]
				if m.key {
					cfg.EncryptKey = key
				}
				cfg.EncryptAcceptPlain, cfg.EncryptSendPlain = m.acceptPlain, m.sendPl
			}
			n0, n1 := c.Start("node-0", 0), c.Start("node-1", 0)
			if err := n0.Agent.RegisterService(web("web-1", 8080), nil); err != nil {
				t.Fatal(err)
			}
			_, err := n1.Agent.Join(context.Background(), []string{n0.Gossip})
			if !tc.cluster {
				if err == nil {
					t.Fatal("a plain agent and a strict one joined")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			seenBy(t, c, "node-0/web-1")
		})
	}
}
