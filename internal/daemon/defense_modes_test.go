package daemon

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestDefenseModesTick: with drop_entry and secure_tcp at 1, the controller's
// once-a-second tick engages both when fewer than amemthresh entries are free,
// logs each change once, drop_entry removes unconfirmed connections, both are
// released when the table drains, and the metrics show modes, changes and drops.
func TestDefenseModesTick(t *testing.T) {
	conf := strings.Replace(directorConf, "conn_max = 4096", "conn_max = 64", 1) +
		"drop_entry = 1\nsecure_tcp = 1\namemthresh = 16\nconn_unconfirmed_max = 64\nconn_unconfirmed_max_per_service = 64\n"
	ta := newTestDirector(t, conf, nil)
	ta.ok("-A -t 198.18.0.100:80 -s rr")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5 -g")
	tab := ta.d.Director().Table()
	var pkts []tcpPkt
	for i := range 50 {
		pkts = append(pkts, tcpPkt{client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 1, byte(i)}), 1000), vip: ap("198.18.0.100:80"), syn: true})
	}
	if n := len(ta.send(pkts...)); n != 50 {
		t.Fatalf("%d of 50 SYNs forwarded", n)
	}
	// drop_entry drops at random from the shard of the tick: a tick may drop
	// nothing, so the clock moves on (bounded) until one has dropped. Advance
	// returns once the controller took the tick, so the previous tick is done by then.
	dropped := func() bool { return tab.Unconfirmed().DropEntryDropped > 0 }
	for i := 0; i < 20 && !dropped(); i++ {
		ta.clock.Advance(time.Second)
	}
	testutil.Eventually(t, 10*time.Second, dropped, "drop_entry to engage and drop")
	// The modes were engaged (the log below says so once each) and may already be
	// released again by the tick that dropped: either is right here.
	if m := tab.Modes(); m != (conntrack.Modes{DropEntry: conntrack.ModeOn, SecureTCP: conntrack.ModeOn}) &&
		m != (conntrack.Modes{DropEntry: conntrack.ModeAuto, SecureTCP: conntrack.ModeAuto}) {
		t.Fatalf("modes %+v", m)
	}
	// drop_entry drains 1/32 of the shards a second (here one of 16): the table
	// drains and both modes are released.
	for range 40 {
		if tab.Modes().DropEntry == conntrack.ModeAuto {
			break
		}
		ta.clock.Advance(time.Second)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		return tab.Modes() == conntrack.Modes{DropEntry: conntrack.ModeAuto, SecureTCP: conntrack.ModeAuto}
	}, "both modes to be released")
	// A change is logged just after it is made: wait for the lines themselves.
	testutil.Eventually(t, 10*time.Second, func() bool {
		l := ta.logs.String()
		return strings.Contains(l, "defense mode released\" mode=drop_entry") && strings.Contains(l, "defense mode released\" mode=secure_tcp")
	}, "both releases logged")
	logs := ta.logs.String()
	for _, mode := range []string{"drop_entry", "secure_tcp"} {
		if n := strings.Count(logs, "defense mode engaged: the connection table is filling\" mode="+mode); n != 1 {
			t.Errorf("%s engaged logged %d times:\n%s", mode, n, logs)
		}
		if n := strings.Count(logs, "defense mode released\" mode="+mode); n != 1 {
			t.Errorf("%s released logged %d times", mode, n)
		}
	}
	got := collected(t, tab)
	for k, want := range map[string]float64{
		`gvs_defense_mode{mode="drop_entry"}`:               1,
		`gvs_defense_mode{mode="secure_tcp"}`:               1,
		`gvs_defense_mode_changes_total{mode="drop_entry"}`: 2,
		`gvs_defense_mode_changes_total{mode="secure_tcp"}`: 2,
		`gvs_conntrack_unconfirmed_max`:                     64,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v (%v)", k, got[k], want, got)
		}
	}
	if d := got["gvs_defense_drop_entry_dropped_total"]; d == 0 || d > 50 {
		t.Errorf("dropped %v", d)
	}
}

// collected runs collectDefense and returns its samples by series.
func collected(t *testing.T, tab *conntrack.Table) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	collectDefense(ch, tab)
	close(ch)
	out := map[string]float64{}
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		name := m.Desc().String()
		name = name[strings.Index(name, `fqName: "`)+9:]
		name = name[:strings.IndexByte(name, '"')]
		for _, l := range pb.GetLabel() {
			name += fmt.Sprintf(`{%s="%s"}`, l.GetName(), l.GetValue())
		}
		v := pb.GetGauge().GetValue() + pb.GetCounter().GetValue()
		out[name] = v
	}
	return out
}
