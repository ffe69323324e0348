package cluster

import (
	"time"

	"github.com/gvs-lb/gvs/ipvssync"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports a Node's and an Announcer's state under the metric names of
// docs/cluster.md §10; a is optional (nil: no VIP series). Register it with the
// daemon's registry. Its reads are snapshots under the components' own locks.
func Collector(n *Node, a *Announcer, now func() time.Time) prometheus.Collector {
	return &collector{n: n, a: a, now: now}
}

type collector struct {
	n   *Node
	a   *Announcer
	now func() time.Time
}

var (
	descState      = prometheus.NewDesc("gvs_cluster_state", "The director's cluster state (1 for the current one).", []string{"state"}, nil)
	descAnnounced  = prometheus.NewDesc("gvs_cluster_vip_announced", "Whether the VIP's route is in the announcement table.", []string{"vip"}, nil)
	descGate       = prometheus.NewDesc("gvs_cluster_gate", "Whether each gate condition held at the VIP's last check.", []string{"vip", "condition"}, nil)
	descPeersLive  = prometheus.NewDesc("gvs_cluster_peers_live", "Peers heard within the peer timeout.", nil, nil)
	descMismatch   = prometheus.NewDesc("gvs_cluster_config_mismatch", "Live peers whose config digest differs from ours.", nil, nil)
	descJoinInc    = prometheus.NewDesc("gvs_cluster_join_incomplete_total", "Joins that ended by join_wait rather than completed bulk sync.", nil, nil)
	descBulkDur    = prometheus.NewDesc("gvs_sync_bulk_duration_seconds", "How long the last join's bulk sync took.", nil, nil)
	descSentMsgs   = prometheus.NewDesc("gvs_sync_sent_messages_total", "Sync messages sent.", nil, nil)
	descSentRecs   = prometheus.NewDesc("gvs_sync_sent_records_total", "Sync records sent.", nil, nil)
	descSentBytes  = prometheus.NewDesc("gvs_sync_sent_bytes_total", "Sync message bytes sent (UDP payload).", nil, nil)
	descRecvMsgs   = prometheus.NewDesc("gvs_sync_received_messages_total", "Sync messages received and accepted, by sending peer.", []string{"peer"}, nil)
	descRecvRecs   = prometheus.NewDesc("gvs_sync_received_records_total", "Sync records received, by sending peer.", []string{"peer"}, nil)
	descRecvBytes  = prometheus.NewDesc("gvs_sync_received_bytes_total", "Sync message bytes received, by sending peer.", []string{"peer"}, nil)
	descLost       = prometheus.NewDesc("gvs_sync_lost_records", "Records a peer reported sent that did not arrive (current estimate).", []string{"peer"}, nil)
	descDropped    = prometheus.NewDesc("gvs_sync_dropped_total", "Datagrams, records or entries the cluster runtime dropped, by reason.", []string{"reason"}, nil)
	descDecodeDrop = prometheus.NewDesc("gvs_sync_decode_dropped_total", "Sync datagrams, rests of datagrams or single records the codec dropped, by reason.", []string{"reason"}, nil)
	descSwept      = prometheus.NewDesc("gvs_sync_refreshed_records_total", "Records re-sent by the refresh sweeper.", nil, nil)
	descBulkSent   = prometheus.NewDesc("gvs_sync_bulk_sent_records_total", "Records sent by bulk pushes.", nil, nil)
	descBulkShort  = prometheus.NewDesc("gvs_sync_bulk_short_total", "Bulk pushes to this director whose records arrived short of the count their bulk-done announced.", nil, nil)
	descPortsEvict = prometheus.NewDesc("gvs_sync_source_ports_evicted_total", "Source ports of sync senders that lost their place in the per-port record counts to a new one.", nil, nil)
	descResyncDef  = prometheus.NewDesc("gvs_cluster_resync_deferred_total", "Heartbeats at which a peer's lost records would have asked it for a bulk push, held back by the back-off after the last one.", nil, nil)
	descFlushLat   = prometheus.NewDesc("gvs_sync_flush_latency_seconds", "How long each sync message's first record waited before the message was completed for the socket (full, or sync_flush expired).", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descAnnounced, descGate, descPeersLive, descMismatch, descJoinInc,
		descBulkDur, descSentMsgs, descSentRecs, descSentBytes, descRecvMsgs, descRecvRecs, descRecvBytes, descLost,
		descDropped, descDecodeDrop, descSwept, descBulkSent, descBulkShort, descPortsEvict, descResyncDef, descFlushLat} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	state := c.n.State()
	for s := range numNodeStates {
		gauge(descState, b2f(s == state), s.String())
	}
	live, mismatch := 0, 0
	for _, p := range c.n.Peers(now) {
		if p.Live {
			live++
			if !p.DigestMatch {
				mismatch++
			}
		}
	}
	gauge(descPeersLive, float64(live))
	gauge(descMismatch, float64(mismatch))

	c.n.mu.Lock()
	type src struct {
		name                    string
		msgs, recs, bytes, lost uint64
	}
	var srcs []src
	for addr, s := range c.n.sources {
		name := addr.String()
		var lost uint64
		for _, p := range c.n.peers {
			if p.addr == addr {
				name, lost = p.id, p.lost
			}
		}
		srcs = append(srcs, src{name, s.messages, s.records, s.bytes, lost})
	}
	took := c.n.joinTook
	c.n.mu.Unlock()
	for _, s := range srcs {
		counter(descRecvMsgs, s.msgs, s.name)
		counter(descRecvRecs, s.recs, s.name)
		counter(descRecvBytes, s.bytes, s.name)
		gauge(descLost, float64(s.lost), s.name)
	}
	gauge(descBulkDur, took.Seconds())

	k := &c.n.c
	counter(descJoinInc, k.joinIncomplete.Load())
	counter(descSentMsgs, k.sentMessages.Load())
	counter(descSentRecs, k.sentRecords.Load())
	counter(descSentBytes, k.sentBytes.Load())
	counter(descSwept, k.swept.Load())
	counter(descBulkSent, k.bulkSent.Load())
	counter(descResyncDef, k.resyncDeferred.Load())
	counter(descBulkShort, k.bulkShort.Load())
	counter(descPortsEvict, k.portsEvicted.Load())
	n, sum, buckets := k.flushLatency.histogram()
	ch <- prometheus.MustNewConstHistogram(descFlushLat, n, sum, buckets)
	for r := dropReason(1); r < numDropReasons; r++ {
		counter(descDropped, k.drops[r].Load(), r.String())
	}
	for r := ipvssync.Reason(1); int(r) < ipvssync.NumReasons; r++ {
		counter(descDecodeDrop, k.decodeDrops[r].Load(), r.String())
	}

	if c.a == nil {
		return
	}
	c.a.mu.Lock()
	defer c.a.mu.Unlock()
	for vip, s := range c.a.vips {
		v := vip.String()
		gauge(descAnnounced, b2f(s.announced), v)
		cd := s.cond
		for _, g := range []struct {
			name string
			ok   bool
		}{{"data_path", cd.DataPath}, {"quorum", cd.Quorum}, {"sync_warm", cd.SyncWarm},
			{"not_draining", !cd.Draining}, {"config_match", cd.ConfigMatch}} {
			gauge(descGate, b2f(g.ok), v, g.name)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
