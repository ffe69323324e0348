package cluster

import (
	"net/netip"
	"testing"
	"time"
)

// gateStepper steps an Announcer for one VIP with a node's sync and config state, as
// the daemon will every gate_interval (data path and quorum assumed healthy).
func gateStepper(t *testing.T, w *fakeNet, tn *testNode, cfg GateConfig) (*Announcer, *fakeRoutes, func()) {
	t.Helper()
	r := &fakeRoutes{in: map[netip.Addr]bool{}}
	a, err := NewAnnouncer(cfg, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	vip := []netip.Addr{netip.MustParseAddr("198.18.100.1")}
	return a, r, func() {
		a.Step(vip, func(netip.Addr) Conditions {
			return Conditions{DataPath: true, Quorum: true, SyncWarm: tn.n.Warm(), ConfigMatch: tn.n.ConfigMatch(w.now)}
		})
		tn.n.SetAnnounced(a.Announced())
	}
}

// TestAnnounceWaitsForBulk is promise P3: a joining director announces only once the
// bulk sync from every live peer completed, and then holds every connection.
func TestAnnounceWaitsForBulk(t *testing.T) {
	w := newFakeNet(t)
	a := w.add("d1", func(c *Config) { c.BulkRate = 5000 })
	w.start("d1")
	w.runUntil(2*time.Second, a.n.Warm)
	for i := range 10000 { // 2 s at 5,000 entries/s
		a.table.own(conn(i, 5), w.now, w.now)
	}
	c := w.add("d3", nil)
	_, routes, step := gateStepper(t, w, c, GateConfig{Rise: 2, Fall: 1})
	w.start("d3")
	for range 400 { // 4 s, the gate checked every 100 ms
		w.run(100 * time.Millisecond)
		step()
		if len(routes.in) > 0 && c.table.len() != 10000 {
			t.Fatalf("announced with %d of 10000 connections", c.table.len())
		}
	}
	if len(routes.in) != 1 || c.n.State() != StateAnnounced {
		t.Fatalf("never announced: routes %v, state %v", routes.in, c.n.State())
	}
}

// TestConfigMismatchGate is acceptance test C10 in-process: a director started with
// a different configuration is seen within a heartbeat, and with require_same_config it
// never announces.
func TestConfigMismatchGate(t *testing.T) {
	w := newFakeNet(t)
	a, b := w.add("d1", nil), w.add("d2", nil)
	c := w.add("d3", func(cfg *Config) { cfg.ConfigDigest[0] = 0xee }) // a different weight somewhere
	_, routes, step := gateStepper(t, w, c, GateConfig{Rise: 2, Fall: 1, RequireSameConfig: true})
	w.start("d1", "d2", "d3")
	seen, ok := w.runUntil(2*time.Second, func() bool { return a.n.Stats().ConfigMismatch > 0 && !c.n.ConfigMatch(w.now) })
	if !ok || seen > 300*time.Millisecond {
		t.Fatalf("mismatch seen after %v (ok %v), want within a heartbeat", seen, ok)
	}
	for range 50 {
		w.run(100 * time.Millisecond)
		step()
	}
	if len(routes.in) != 0 {
		t.Fatal("a director with a different configuration announced under require_same_config")
	}
	if !b.n.Warm() || !c.n.Warm() {
		t.Fatal("directors not ready: the gate, not the sync, must be what holds d3 back")
	}
}
