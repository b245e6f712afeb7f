package agent

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoal-sd/shoal/catalog"
	"github.com/shoal-sd/shoal/gossip"
)

// metrics is the agent's Prometheus registry. Catalog and membership
// figures are read at scrape time (one read lock per scrape); counters
// come from the gossip layer's atomics; API latency is observed per
// route.
type metrics struct {
	reg     *prometheus.Registry
	latency *prometheus.HistogramVec
	checks  *prometheus.CounterVec
}

func newMetrics(a *Agent) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shoal_api_request_duration_seconds",
			Help:    "Time to answer a local HTTP API request (blocking queries excluded), by route.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"method", "route"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_check_transitions_total",
			Help: "Changes of state of this agent's checks, by the state reached.",
		}, []string{"status"}),
	}
	for _, h := range []catalog.Health{catalog.HealthPassing, catalog.HealthWarning, catalog.HealthCritical} {
		m.checks.WithLabelValues(h.String())
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.latency,
		m.checks,
		&catalogCollector{a: a},
	)
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "shoal_data_dir_write_errors_total",
		Help: "Writes to the data dir that failed (a full disk, an I/O error); each refused the API write it was part of.",
	}, func() float64 { return float64(a.diskErrors.Load()) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shoal_self_preservation",
		Help: "1 while the agent is in self-preservation: serving the instances of members that failed at once from their last known state.",
	}, func() float64 {
		if a.preserving.Load() {
			return 1
		}
		return 0
	}))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shoal_self_preservation_members",
		Help: "Failed members whose instances self-preservation keeps serving.",
	}, func() float64 {
		var n int
		a.Read(func(c *catalog.Catalog) { n = c.Preservation().Nodes })
		return float64(n)
	}))
	gossipCounter := func(name, help string, v func() uint64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 {
				if a.g == nil {
					return 0
				}
				return float64(v())
			}))
	}
	st := func() *gossip.Stats { return a.g.Stats() }
	gossipCounter("shoal_gossip_pushed_total", "Catalog writes this agent pushed along the broadcast trees: its own and relayed ones, one per neighbour.", func() uint64 { return st().Pushed.Load() })
	gossipCounter("shoal_gossip_received_total", "Writes received along the broadcast trees that were news.", func() uint64 { return st().Received.Load() })
	gossipCounter("shoal_gossip_duplicates_total", "Writes received along the broadcast trees that this agent had already (each prunes a link).", func() uint64 { return st().Duplicates.Load() })
	gossipCounter("shoal_gossip_ihaves_sent_total", "Lazy announcements of writes sent to tree neighbours.", func() uint64 { return st().IHaves.Load() })
	gossipCounter("shoal_gossip_prunes_sent_total", "Tree links pruned (a neighbour asked to stop pushing an origin's writes).", func() uint64 { return st().Prunes.Load() })
	gossipCounter("shoal_gossip_grafts_sent_total", "Writes heard announced, not received in time and asked for (tree repairs).", func() uint64 { return st().Grafts.Load() })
	gossipCounter("shoal_antientropy_exchanges_total", "Anti-entropy exchanges this agent started because a peer served another catalog.", func() uint64 { return st().Exchanges.Load() })
	gossipCounter("shoal_antientropy_entries_sent_total", "Catalog entries sent in deltas to peers that lacked them.", func() uint64 { return st().DeltaEntriesSent.Load() })
	gossipCounter("shoal_antientropy_entries_received_total", "Catalog entries received in deltas.", func() uint64 { return st().DeltaEntriesReceived.Load() })
	gossipCounter("shoal_antientropy_sends_dropped_total", "Delta transfers dropped because the send queue was full (the next exchange asks again).", func() uint64 { return st().SendDropped.Load() })
	gossipCounter("shoal_gossip_messages_malformed_total", "Received gossip messages or push/pull states refused as malformed.", func() uint64 { return st().Malformed.Load() })
	gossipCounter("shoal_gossip_messages_unknown_sender_total", "Messages dropped because their sender is not a member.", func() uint64 { return st().UnknownSender.Load() })
	gossipCounter("shoal_gossip_records_skipped_total", "Message records of types this version does not know (from agents of a later version), skipped.", func() uint64 { return st().SkippedRecords.Load() })
	gossipCounter("shoal_gossip_leaves_refuted_total", "Leaves announced in this agent's name that it did not make, refuted.", func() uint64 { return st().LeavesRefuted.Load() })
	gossipCounter("shoal_gossip_bytes_sent_total", "Bytes of Shoal messages and push/pull state handed to memberlist.", func() uint64 { return st().BytesOut.Load() })
	gossipCounter("shoal_gossip_bytes_received_total", "Bytes of Shoal messages and push/pull state received.", func() uint64 { return st().BytesIn.Load() })
	refused := func(name, help string, v func(catalog.Stats) uint64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			var st catalog.Stats
			a.Read(func(c *catalog.Catalog) { st = c.Stats() })
			return float64(v(st))
		}))
	}
	refused("shoal_catalog_refused_future_epoch_total", "Epochs refused for being further ahead of this agent's clock than epoch_max_skew.", func(s catalog.Stats) uint64 { return s.FutureEpoch })
	refused("shoal_catalog_refused_unknown_origin_total", "Entries refused because their node is not a member.", func(s catalog.Stats) uint64 { return s.UnknownOrigin })
	refused("shoal_catalog_refused_unannounced_epoch_total", "Entries refused because their node announces another epoch.", func(s catalog.Stats) uint64 { return s.AheadOfMember })
	refused("shoal_catalog_refused_below_watermark_total", "Old copies of deleted and reaped entries refused.", func(s catalog.Stats) uint64 { return s.BelowWatermark })
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *metrics) checkResult(h catalog.Health) {
	m.checks.WithLabelValues(h.String()).Inc()
}

func (m *metrics) observe(method, route string, d time.Duration) {
	m.latency.WithLabelValues(method, route).Observe(d.Seconds())
}

// catalogCollector reports membership and catalog size at scrape time.
type catalogCollector struct{ a *Agent }

var (
	membersDesc = prometheus.NewDesc("shoal_members", "Cluster members this agent knows, by state.", []string{"state"}, nil)
	entriesDesc = prometheus.NewDesc("shoal_catalog_entries", "Catalog entries held, live or tombstones, of every origin.", []string{"kind"}, nil)
	servedDesc  = prometheus.NewDesc("shoal_catalog_instances_served", "Instances served (their node alive).", nil, nil)
	namesDesc   = prometheus.NewDesc("shoal_catalog_services", "Distinct service names served.", nil, nil)
	localDesc   = prometheus.NewDesc("shoal_local_services", "Services registered with this agent.", nil, nil)
	checksDesc  = prometheus.NewDesc("shoal_local_checks", "This agent's checks, by state.", []string{"status"}, nil)
	dampedDesc  = prometheus.NewDesc("shoal_local_checks_damped", "This agent's checks held by flap damping.", nil, nil)
)

func (c *catalogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{membersDesc, entriesDesc, servedDesc, namesDesc, localDesc, checksDesc, dampedDesc} {
		ch <- d
	}
}

func (c *catalogCollector) Collect(ch chan<- prometheus.Metric) {
	states := map[string]int{"alive": 0, "failed": 0, "left": 0}
	var live, tombstones, served, names, local, damped int
	checks := map[catalog.Health]int{catalog.HealthPassing: 0, catalog.HealthWarning: 0, catalog.HealthCritical: 0}
	c.a.Read(func(cat *catalog.Catalog) {
		for _, v := range cat.LocalChecks() {
			checks[v.Check.Status]++
			if v.Check.Damped {
				damped++
			}
		}
		for st, n := range cat.CountNodes() {
			switch st {
			case catalog.StatusAlive, catalog.StatusSuspect:
				states["alive"] += n
			case catalog.StatusDead:
				states["failed"] += n
			case catalog.StatusLeft:
				states["left"] += n
			}
		}
		for _, e := range cat.Entries() {
			if e.Deleted {
				tombstones++
			} else {
				live++
			}
		}
		svcs := cat.Services()
		names = len(svcs)
		for name := range svcs {
			served += len(cat.Instances(name))
		}
		local = len(cat.LocalServices())
	})
	for state, n := range states {
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(live), "live")
	ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(tombstones), "tombstone")
	ch <- prometheus.MustNewConstMetric(servedDesc, prometheus.GaugeValue, float64(served))
	ch <- prometheus.MustNewConstMetric(namesDesc, prometheus.GaugeValue, float64(names))
	ch <- prometheus.MustNewConstMetric(localDesc, prometheus.GaugeValue, float64(local))
	for h, n := range checks {
		ch <- prometheus.MustNewConstMetric(checksDesc, prometheus.GaugeValue, float64(n), h.String())
	}
	ch <- prometheus.MustNewConstMetric(dampedDesc, prometheus.GaugeValue, float64(damped))
}
