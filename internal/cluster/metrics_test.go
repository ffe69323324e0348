package cluster

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

func TestCollector(t *testing.T) {
	w := newFakeNet(t)
	a, b := w.add("d1", nil), w.add("d2", func(c *Config) { c.ConfigDigest[0] = 9 })
	w.start("d1", "d2")
	w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() })
	for i := range 5 {
		e := conn(i, 5)
		b.n.Enqueue(&e, w.now)
	}
	w.run(200 * time.Millisecond)
	a.n.HandleSync(netipAddrPort("203.0.113.9:1"), []byte{0}, w.now) // outside sync_sources
	ann, err := NewAnnouncer(GateConfig{Rise: 1, Fall: 1}, &fakeRoutes{in: map[netip.Addr]bool{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("198.18.100.1")
	ann.Step([]netip.Addr{vip}, func(netip.Addr) Conditions {
		return Conditions{DataPath: true, Quorum: true, SyncWarm: true}
	})
	c := Collector(a.n, ann, func() time.Time { return w.now })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if probs, err := promlint.NewWithMetricFamilies(mfs).Lint(); err != nil || len(probs) != 0 {
		t.Fatalf("promlint: %v %v", err, probs)
	}
	for _, m := range []struct {
		name, label, lv string
		want            float64
	}{
		{"gvs_cluster_config_mismatch", "", "", 1},
		{"gvs_cluster_peers_live", "", "", 1},
		{"gvs_cluster_state", "state", "READY", 1},
		{"gvs_cluster_state", "state", "SYNCING", 0},
		{"gvs_cluster_vip_announced", "vip", "198.18.100.1", 1},
		{"gvs_cluster_gate", "condition", "quorum", 1},
		{"gvs_cluster_gate", "condition", "config_match", 0},
		{"gvs_sync_received_records_total", "peer", "d2", 5},
		{"gvs_sync_lost_records", "peer", "d2", 0},
		{"gvs_sync_dropped_total", "reason", "source", 1},
		{"gvs_sync_dropped_total", "reason", "queue_full", 0},
		{"gvs_sync_decode_dropped_total", "reason", "size_mismatch", 0},
	} {
		if v := value(t, reg, m.name, m.label, m.lv); v != m.want {
			t.Errorf("%s{%s=%q} = %v, want %v", m.name, m.label, m.lv, v, m.want)
		}
	}
}

// value returns the series name{label=lv} (label "" for an unlabelled metric),
// failing if absent.
func value(t *testing.T, g prometheus.Gatherer, name, label, lv string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == "" && len(m.GetLabel()) == 0
			for _, l := range m.GetLabel() {
				match = match || (l.GetName() == label && l.GetValue() == lv)
			}
			if !match {
				continue
			}
			if m.Counter != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, lv)
	return 0
}

// TestFlushLatency checks gvs_sync_flush_latency_seconds: a message the next record
// would overflow leaves at once, a partly filled one after sync_flush, and every sent
// message is observed once.
func TestFlushLatency(t *testing.T) {
	w := newFakeNet(t)
	a, b := w.add("d1", nil), w.add("d2", nil)
	w.start("d1", "d2")
	w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collector(b.n, nil, func() time.Time { return w.now }))
	hist := func() *dto.Histogram {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "gvs_sync_flush_latency_seconds" {
				return mf.GetMetric()[0].GetHistogram()
			}
		}
		t.Fatal("gvs_sync_flush_latency_seconds not exported")
		return nil
	}
	bucket := func(h *dto.Histogram, le float64) uint64 {
		for _, bk := range h.GetBucket() {
			if bk.GetUpperBound() == le {
				return bk.GetCumulativeCount()
			}
		}
		t.Fatalf("no bucket le=%v", le)
		return 0
	}
	before := hist().GetSampleCount()
	// More records than one message holds (1472 bytes: 40 IPv4 records): the first
	// message is completed at once, the rest waits for sync_flush.
	for i := range 50 {
		e := conn(i, 5)
		b.n.Enqueue(&e, w.now)
	}
	w.run(3 * b.n.cfg.SyncFlush)
	h := hist()
	got := h.GetSampleCount() - before
	if got != 2 {
		t.Fatalf("%d messages observed, want 2 (one full, one flushed)", got)
	}
	if n := bucket(h, 0.001); n < before+1 {
		t.Errorf("the full message was not observed as sent at once: %d in le=0.001", n-before)
	}
	flush := b.n.cfg.SyncFlush.Seconds()
	if s := h.GetSampleSum(); s < flush || s > 2*flush {
		t.Errorf("latency sum %v s, want the flushed message's wait, %v s to twice that", s, flush)
	}
	if st := b.n.Stats(); h.GetSampleCount() != st.SentMessages+uint64(st.Drops["send_error"]) {
		t.Errorf("%d observations, %d messages sent", h.GetSampleCount(), st.SentMessages)
	}
}
