package agent

import (
	"strconv"

	"github.com/shoal-sd/shoal/catalog"
)

// Stats returns the figures /v1/agent/self shows under Stats, by section,
// as Consul's agent names them where Shoal has the same thing: "agent"
// (this agent's services and checks), "serf_lan" (memberlist's members by
// state, its health score, whether gossip is encrypted), and Shoal's own
// "catalog" and "gossip" sections. Every value is read now; none is made
// up to fill a slot Consul has.
func (a *Agent) Stats() map[string]map[string]string {
	itoa := func(n int) string { return strconv.Itoa(n) }
	utoa := func(n uint64) string { return strconv.FormatUint(n, 10) }

	var (
		index            uint64
		counts           map[catalog.NodeStatus]int
		names, instances int
		services         int
	)
	a.Read(func(c *catalog.Catalog) {
		index = c.Index()
		counts = c.CountNodes()
		svcs := c.Services()
		names = len(svcs)
		for name := range svcs {
			c.EachInstance(name, func(catalog.Node, *catalog.Service, catalog.Health) { instances++ })
		}
		services = len(c.LocalServices())
	})
	checks, ttls := 0, 0
	for _, ck := range a.AgentChecks() {
		checks++
		if ck.Type == "ttl" {
			ttls++
		}
	}
	out := map[string]map[string]string{
		"agent": {
			"services":   itoa(services),
			"checks":     itoa(checks),
			"check_ttls": itoa(ttls),
		},
		"serf_lan": {
			"members":   itoa(counts[catalog.StatusAlive] + counts[catalog.StatusSuspect] + counts[catalog.StatusDead] + counts[catalog.StatusLeft]),
			"alive":     itoa(counts[catalog.StatusAlive]),
			"suspect":   itoa(counts[catalog.StatusSuspect]),
			"failed":    itoa(counts[catalog.StatusDead]),
			"left":      itoa(counts[catalog.StatusLeft]),
			"encrypted": strconv.FormatBool(a.encrypted),
		},
		"catalog": {
			"self_preservation": strconv.FormatBool(a.preserving.Load()),
			"index":             utoa(index),
			"services":          itoa(names),
			"instances":         itoa(instances),
		},
	}
	if a.g == nil {
		return out
	}
	if ml := a.g.Memberlist(); ml != nil {
		out["serf_lan"]["health_score"] = itoa(ml.GetHealthScore())
	}
	st := a.g.Stats()
	out["gossip"] = map[string]string{
		"pushed":             utoa(st.Pushed.Load()),
		"received":           utoa(st.Received.Load()),
		"duplicates":         utoa(st.Duplicates.Load()),
		"exchanges":          utoa(st.Exchanges.Load()),
		"entries_sent":       utoa(st.DeltaEntriesSent.Load()),
		"bytes_sent":         utoa(st.BytesOut.Load()),
		"bytes_received":     utoa(st.BytesIn.Load()),
		"messages_malformed": utoa(st.Malformed.Load()),
	}
	return out
}
