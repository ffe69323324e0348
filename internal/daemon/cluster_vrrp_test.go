package daemon

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/cluster"
	"github.com/gvs-lb/gvs/internal/testutil"
	"github.com/gvs-lb/gvs/vrrp"
)

// vrrpPairConf is a director of an active/standby pair ([cluster] announce =
// "vrrp"): the service VIP 198.18.100.1 held by VI_1 at prio, advertising every
// 100 ms so that its Master_Down_Interval (≈ 0.34 s at 150) is shorter than the
// cluster's 1 s discovery window — without the hold, it would preempt before its
// bulk sync could end.
func vrrpPairConf(node string, prio int) string { return vrrpPairConfWith(node, prio, 1, "") }

// vrrpPairConfWith is vrrpPairConf with the real server's weight and more
// [cluster] keys.
func vrrpPairConfWith(node string, prio, weight int, clusterKeys string) string {
	return directorConf + `
[[service]]
address = "198.18.100.1:80"
scheduler = "wlc"
[[service.real_server]]
address = "172.19.0.10:80"
weight = ` + strconv.Itoa(weight) + `

[[vrrp]]
name = "VI_1"
interface = "gvs0"
virtual_router_id = 51
version = 3
priority = ` + strconv.Itoa(prio) + `
advert_int = "100ms"
virtual_ipaddress = ["198.18.100.1"]
garp_master_delay = "0s"

[cluster]
announce = "vrrp"
node_id = "` + node + `"
drain_time = "0s"
` + clusterKeys
}

// peerAdvert is the lower-priority master's advert for VI_1.
func peerAdvert(prio uint8) vrrp.Packet {
	return vrrp.Packet{Src: netip.MustParseAddr("172.19.0.4"), Dst: vrrp.MulticastGroup(false), HopLimit: vrrp.HopLimit,
		Advert: vrrp.Advert{Version: vrrp.Version3, VRID: 51, Priority: prio, Interval: 100 * time.Millisecond,
			Addrs: []netip.Addr{netip.MustParseAddr("198.18.100.1")}}}
}

// sendAdvert hands d's VI_1 an advert of priority prio from its peer and returns
// once VI_1 has acted on it and its runner has re-armed its timer: the clock does
// not move on while the advert waits (it would race the down timer). The count of
// timers created alone does not say so: the director's other parts create timers
// on the same clock, and one of theirs let an advert wait while the down timer
// fired (dir1 master at 460 ms through "master down timer expired", with 3 of 5
// adverts handled).
func sendAdvert(t *testing.T, d *clusterDirector, adverts chan<- vrrp.Packet, prio uint8) {
	t.Helper()
	n, seen := d.clock.Created(), vi1(d).Adverts
	adverts <- peerAdvert(prio)
	testutil.Eventually(t, 10*time.Second, func() bool { return vi1(d).Adverts > seen }, "the advert handled")
	d.clock.BlockUntilCreated(n + 1)
}

// vrrpDirector runs a director of vrrpPairConf on lan whose VRRP transport takes
// the adverts the test writes to the returned channel.
func vrrpDirector(t *testing.T, lan *fakeLAN, addr, node string, prio int) (*clusterDirector, chan<- vrrp.Packet) {
	t.Helper()
	return vrrpDirectorConf(t, lan, addr, vrrpPairConf(node, prio))
}

// vrrpDirectorConf is vrrpDirector with its configuration text.
func vrrpDirectorConf(t *testing.T, lan *fakeLAN, addr, text string) (*clusterDirector, chan<- vrrp.Packet) {
	t.Helper()
	var tr *peerTransport
	cd := newClusterDirectorWith(t, lan, addr, text, &fakeBird{}, func(d *Deps) {
		d.Cluster.OpenTAP = func(string, int, int) (RouteDevice, error) {
			t.Error("announce = \"vrrp\" opened the announcement device")
			return nil, nil
		}
		d.OpenVRRP = func(vrrp.TransportConfig) (vrrp.Transport, error) {
			tr = &peerTransport{fakeTransport: newFakeTransport(), in: make(chan vrrp.Packet, 64)}
			return tr, nil
		}
	})
	return cd, tr.in
}

// armed waits until d's VI_1 has started (BACKUP) before the test moves the
// clock: its down timer, armed right after, is then relative to the start.
func armed(t *testing.T, d *clusterDirector) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() bool { return vi1(d).State == vrrp.StateBackup }, "VI_1 started")
}

// vi1 is the state of d's VI_1.
func vi1(d *clusterDirector) vrrp.Status { return d.d.vrrp.runner.Status()[0] }

// C11 on the fake LAN: a higher-priority director that starts while its peer is
// master stays BACKUP, its preemption held, until its bulk sync is done; then it
// preempts. The log says so once, in that order; gvs adm --vrrp and --cluster show
// the hold while it lasts.
func TestClusterVRRPPreemptWaitsForBulk(t *testing.T) {
	lan := &fakeLAN{}
	d2, _ := vrrpDirector(t, lan, "172.19.0.4", "dir2", 100)
	testutil.Eventually(t, 10*time.Second, func() bool { return runFor(t, 100*time.Millisecond, d2.d.cl.node.Warm, d2) }, "dir2 ready alone")
	d1, adverts := vrrpDirector(t, lan, "172.19.0.3", "dir1", 150)
	if d1.d.cl.tap != nil || d1.d.cl.ann != nil {
		t.Fatal("announce = \"vrrp\" has an announcement device or gate")
	}
	armed(t, d1)
	// dir2 is master at 100 and advertises every 100 ms; dir1 hears it from the start.
	var warmAt, masterAt time.Duration
	heldSeen := false
	for step := time.Duration(0); step < 3*time.Second && masterAt == 0; step += syncTick {
		if step%(100*time.Millisecond) == 0 {
			sendAdvert(t, d1, adverts, 100)
		}
		if warmAt == 0 && d1.d.cl.node.Warm() {
			warmAt = step
		}
		st := vi1(d1)
		if st.State == vrrp.StateMaster {
			masterAt = step
			break
		}
		if warmAt == 0 && step >= 200*time.Millisecond && st.PreemptHeld != "" && !heldSeen {
			heldSeen = true
			if st.State != vrrp.StateBackup || !strings.Contains(st.PreemptHeld, "bulk sync in progress") {
				t.Fatalf("held: %+v", st)
			}
			if out := d1.ok("--vrrp"); !strings.Contains(out, "BACKUP (preempt held: bulk sync in progress") {
				t.Errorf("gvs adm --vrrp does not show the hold:\n%s", out)
			}
			out := d1.ok("--cluster")
			for _, want := range []string{"announce: vrrp", "VI_1", "held: bulk sync in progress", "dir2"} {
				if !strings.Contains(out, want) {
					t.Errorf("gvs adm --cluster lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "BIRD") {
				t.Errorf("gvs adm --cluster speaks of BIRD in VRRP mode:\n%s", out)
			}
		}
		runFor(t, syncTick, nil, d1, d2)
	}
	switch {
	case !heldSeen:
		t.Fatalf("the hold never showed while dir1 joined (warm at %v, master at %v)", warmAt, masterAt)
	case warmAt == 0 || masterAt == 0:
		t.Fatalf("dir1 warm at %v, master at %v: want both within 3 s", warmAt, masterAt)
	case masterAt < warmAt:
		t.Fatalf("dir1 preempted at %v, before its bulk sync ended at %v", masterAt, warmAt)
	case masterAt-warmAt > time.Second:
		t.Fatalf("dir1 preempted %v after its bulk sync ended: want within a Master_Down_Interval and an advert (0.44 s) and the runner's lag", masterAt-warmAt)
	}
	// Without the hold dir1 would have taken over after one Master_Down_Interval
	// (0.3 s + 106/256 × 0.1 s); the join lasts at least the 1 s discovery window.
	if warmAt < time.Second {
		t.Fatalf("dir1 warm at %v: the join should last the discovery window", warmAt)
	}
	// The runner publishes the state just before it logs the transition.
	testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(d1.logs.String(), "VRRP Entering MASTER") }, "the transition logged")
	logs := d1.logs.String()
	held := strings.Index(logs, "VRRP preempt held: bulk sync in progress")
	complete := strings.Index(logs, "cluster: bulk sync complete")
	released := strings.Index(logs, "VRRP preempt hold released")
	master := strings.Index(logs, "VRRP Entering MASTER")
	if !(held >= 0 && held < complete && complete < released && released < master) {
		t.Errorf("log order: held %d, bulk complete %d, released %d, master %d:\n%s", held, complete, released, master, logs)
	}
	if n := strings.Count(logs, "VRRP preempt held"); n != 1 {
		t.Errorf("%d hold lines, want 1", n)
	}
	// Its heartbeats now say ANNOUNCED: it holds the VIP.
	testutil.Eventually(t, 10*time.Second, func() bool {
		runFor(t, syncTick, nil, d1, d2)
		return d1.d.cl.node.State() == cluster.StateAnnounced
	}, "dir1's node ANNOUNCED as VRRP master")
	if s := d2.d.cl.node.State(); s == cluster.StateAnnounced && vi1(d2).State != vrrp.StateMaster {
		t.Errorf("dir2 ANNOUNCED as %v", vi1(d2).State)
	}
	if _, stderr, status := d1.adm("--cluster-drain"); status == 0 || !strings.Contains(stderr, "move with VRRP") {
		t.Errorf("--cluster-drain in VRRP mode: status %d, %q", status, stderr)
	}
	t.Logf("dir1: bulk sync done %v after start, master %v later", warmAt, masterAt-warmAt)
}

// Availability first: with no master heard the hold does not apply — the
// instance becomes master on its down timer (the vrrp package's
// TestPreemptHoldNoMaster checks it does so while held) — and nothing is logged
// as held; the hold's reason is there while the node joins.
func TestClusterVRRPNoMasterNoWait(t *testing.T) {
	d1, _ := vrrpDirector(t, &fakeLAN{}, "172.19.0.3", "dir1", 150)
	armed(t, d1)
	if why := d1.d.cl.preemptHold(d1.clock.Now()); d1.d.cl.node.State() == cluster.StateSyncing && why != "bulk sync in progress (no peer heard yet)" {
		t.Errorf("while joining alone: hold %q", why)
	}
	// The runner runs on its own goroutine: the clock moves in real time until it
	// has caught up (the order of its timers against the join's is the vrrp
	// package's to check, on a clock it alone uses).
	testutil.Eventually(t, 10*time.Second, func() bool {
		runFor(t, 100*time.Millisecond, nil, d1)
		return vi1(d1).State == vrrp.StateMaster
	}, "VI_1 master with no master heard")
	if why := d1.d.cl.preemptHold(d1.clock.Now()); d1.d.cl.node.Warm() && why != "" {
		t.Errorf("warm, but the hold says %q", why)
	}
	if strings.Contains(d1.logs.String(), "VRRP preempt held") || vi1(d1).PreemptHeld != "" {
		t.Error("a hold with no master to hold for")
	}
}

// With require_same_config, a director whose config digest differs from its live
// peer's keeps holding its preemption after its bulk sync, as the BIRD gate stays
// closed on it.
func TestClusterVRRPConfigMismatchHolds(t *testing.T) {
	lan := &fakeLAN{}
	d2, _ := vrrpDirectorConf(t, lan, "172.19.0.4", vrrpPairConfWith("dir2", 100, 2, "require_same_config = true\n"))
	testutil.Eventually(t, 10*time.Second, func() bool { return runFor(t, 100*time.Millisecond, d2.d.cl.node.Warm, d2) }, "dir2 ready alone")
	d1, adverts := vrrpDirectorConf(t, lan, "172.19.0.3", vrrpPairConfWith("dir1", 150, 1, "require_same_config = true\n"))
	armed(t, d1)
	for step := time.Duration(0); step < 3*time.Second; step += syncTick {
		if step%(100*time.Millisecond) == 0 {
			sendAdvert(t, d1, adverts, 100)
		}
		if st := vi1(d1); st.State != vrrp.StateBackup {
			t.Fatalf("at %v: dir1 %v with a config that differs from its peer's (require_same_config)", step, st.State)
		}
		runFor(t, syncTick, nil, d1, d2)
	}
	if !d1.d.cl.node.Warm() {
		t.Fatalf("dir1 still joining after 3 s: %v", d1.d.cl.node.State())
	}
	if st := vi1(d1); st.PreemptHeld != "config digest differs from a live peer (require_same_config)" {
		t.Fatalf("hold %q", st.PreemptHeld)
	}
	// One log line per cause: the join, then the config.
	logs := d1.logs.String()
	for _, cause := range []string{"VRRP preempt held: bulk sync in progress", "VRRP preempt held: config digest differs from a live peer"} {
		if n := strings.Count(logs, cause); n != 1 {
			t.Errorf("%d lines %q, want 1:\n%s", n, cause, logs)
		}
	}
}
