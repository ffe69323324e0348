package daemon

import (
	"math/rand/v2"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/prometheus/client_golang/prometheus"
)

// defend runs the connection table's defense work (docs/defense.md §8) — the
// kernel's once-a-second update_defense_level and drop_entry — and logs each change
// of a defense mode once, when it happens.
func (d *Daemon) defend() {
	r := d.d.Table().Defend(rand.Uint32())
	logModeChange(d, "drop_entry", r.Before.DropEntry, r.After.DropEntry, &r)
	logModeChange(d, "secure_tcp", r.Before.SecureTCP, r.After.SecureTCP, &r)
}

func logModeChange(d *Daemon, name string, before, after int, r *conntrack.DefenseReport) {
	switch {
	case before == after:
	case after == conntrack.ModeOn:
		d.log.Warn("defense mode engaged: the connection table is filling", "mode", name, "value", after,
			"free_entries", r.Free, "amemthresh", r.AMemThresh)
	default:
		d.log.Info("defense mode released", "mode", name, "value", after,
			"free_entries", r.Free, "amemthresh", r.AMemThresh)
	}
}

var (
	descUnconf        = prometheus.NewDesc("gvs_conntrack_unconfirmed", "Unconfirmed connections in the table (docs/defense.md §7).", nil, nil)
	descUnconfMax     = prometheus.NewDesc("gvs_conntrack_unconfirmed_max", "Cap on unconfirmed connections (conn_unconfirmed_max); 0 = off.", nil, nil)
	descEvicted       = prometheus.NewDesc("gvs_conntrack_evicted_total", "Unconfirmed connections evicted to make room for new ones, and templates that went with them.", []string{"kind"}, nil)
	descUnconfRefused = prometheus.NewDesc("gvs_conntrack_unconfirmed_refused_total", "New connections refused: the unconfirmed budget full and nothing to evict.", nil, nil)
	descDefenseMode   = prometheus.NewDesc("gvs_defense_mode", "IPVS defense mode value: 0 never, 1 automatic, 2 engaged, 3 always (docs/defense.md §8).", []string{"mode"}, nil)
	descDefenseChange = prometheus.NewDesc("gvs_defense_mode_changes_total", "Changes of an automatic defense mode between 1 and 2.", []string{"mode"}, nil)
	descDropEntry     = prometheus.NewDesc("gvs_defense_drop_entry_dropped_total", "Unconfirmed connections drop_entry removed.", nil, nil)
)

func describeDefense(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUnconf, descUnconfMax, descEvicted, descUnconfRefused, descDefenseMode, descDefenseChange, descDropEntry} {
		ch <- d
	}
}

func collectDefense(ch chan<- prometheus.Metric, tab *conntrack.Table) {
	s := tab.Unconfirmed()
	g := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	c := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	g(descUnconf, float64(s.Unconfirmed))
	g(descUnconfMax, float64(s.Max))
	c(descEvicted, s.Evicted, "connection")
	c(descEvicted, s.EvictedTpl, "template")
	c(descUnconfRefused, s.Refused)
	g(descDefenseMode, float64(s.DropEntry), "drop_entry")
	g(descDefenseMode, float64(s.SecureTCP), "secure_tcp")
	c(descDefenseChange, s.DropEntryChanges, "drop_entry")
	c(descDefenseChange, s.SecureTCPChanges, "secure_tcp")
	c(descDropEntry, s.DropEntryDropped)
}
