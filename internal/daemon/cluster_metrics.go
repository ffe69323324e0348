package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The connection table's and the sync-event rings' side of cluster sync, next to
// cluster.Collector's node and announcer series (docs/cluster.md §10).
var (
	descSyncUpserts = prometheus.NewDesc("gvs_conntrack_sync_upserts_total",
		"Received entries applied to the connection table, by result (created, updated, replaced, ignored_inactive, refused).", []string{"result"}, nil)
	descSyncUnbound = prometheus.NewDesc("gvs_conntrack_sync_unbound_entries",
		"Received connections whose real server this director does not have (kept until it appears).", nil, nil)
	descSyncRemote = prometheus.NewDesc("gvs_conntrack_synced_entries",
		"Entries in the connection table another director sent that no local packet adopted yet.", nil, nil)
	descSyncBound = prometheus.NewDesc("gvs_conntrack_sync_bound_total",
		"Unbound received connections bound once their real server appeared.", nil, nil)
	descSyncAdopted = prometheus.NewDesc("gvs_conntrack_adopted_total",
		"Connections another director sent that a local packet adopted: flows moved to this director.", nil, nil)
	descSyncResched = prometheus.NewDesc("gvs_conntrack_sync_rescheduled_total",
		"Unbound received connections a local packet replaced by a newly scheduled one.", nil, nil)
	descSyncEvents = prometheus.NewDesc("gvs_sync_events_total",
		"Sync events of the workers' rings, by outcome (pushed; dropped: the ring was full; stale: the connection was gone when the event was drained).", []string{"result"}, nil)
	descSyncPending = prometheus.NewDesc("gvs_sync_events_pending",
		"Sync events in the workers' rings, not drained yet.", nil, nil)
)

// syncCollector exports the table's and the rings' sync counters of a Daemon.
type syncCollector struct{ d *Daemon }

func (c syncCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSyncUpserts, descSyncUnbound, descSyncRemote, descSyncBound, descSyncAdopted, descSyncResched, descSyncEvents, descSyncPending} {
		ch <- d
	}
}

func (c syncCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.d.d.Table().SyncStats()
	r := c.d.d.SyncStats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descSyncUpserts, t.Created, "created")
	counter(descSyncUpserts, t.Updated, "updated")
	counter(descSyncUpserts, t.Replaced, "replaced")
	counter(descSyncUpserts, t.IgnoredInactive, "ignored_inactive")
	counter(descSyncUpserts, t.Refused, "refused")
	ch <- prometheus.MustNewConstMetric(descSyncUnbound, prometheus.GaugeValue, float64(t.Unbound))
	ch <- prometheus.MustNewConstMetric(descSyncRemote, prometheus.GaugeValue, float64(t.Remote))
	counter(descSyncBound, t.Bound)
	counter(descSyncAdopted, t.Adopted)
	counter(descSyncResched, t.Rescheduled)
	counter(descSyncEvents, r.Pushed, "pushed")
	counter(descSyncEvents, r.Dropped, "dropped")
	counter(descSyncEvents, r.Stale, "stale")
	ch <- prometheus.MustNewConstMetric(descSyncPending, prometheus.GaugeValue, float64(r.Pending))
}
