package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/cluster"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/testutil"
	"github.com/gvs-lb/gvs/ipvs"
)

// Cluster mode over fakes: an in-memory LAN carrying the sync and control datagrams
// between test directors, and a route table standing in for the TAP device.

// fakeLAN connects the SyncNets of test directors: a datagram one sends reaches
// every other one's queue, and its Run hands it to its Node.
type fakeLAN struct {
	mu      sync.Mutex
	members []*fakeSyncNet
}

type lanDatagram struct {
	from    netip.AddrPort
	control bool
	b       []byte
}

// fakeSyncNet is one director's place on a fakeLAN.
type fakeSyncNet struct {
	lan    *fakeLAN
	addr   netip.Addr
	inbox  chan lanDatagram
	drops  atomic.Int64 // datagrams a full inbox refused
	closed atomic.Bool
	pushes atomic.Uint32 // push sockets opened
}

func (l *fakeLAN) join(addr netip.Addr) *fakeSyncNet {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &fakeSyncNet{lan: l, addr: addr, inbox: make(chan lanDatagram, 4096)}
	l.members = append(l.members, s)
	return s
}

func (s *fakeSyncNet) send(control bool, b []byte) error {
	port := uint16(40000)
	if control {
		port = 8849
	}
	return s.sendFrom(port, control, b)
}

func (s *fakeSyncNet) sendFrom(port uint16, control bool, b []byte) error {
	if s.closed.Load() {
		return errors.New("closed")
	}
	s.lan.mu.Lock()
	defer s.lan.mu.Unlock()
	for _, m := range s.lan.members {
		if m == s || m.closed.Load() {
			continue
		}
		select {
		case m.inbox <- lanDatagram{from: netip.AddrPortFrom(s.addr, port), control: control, b: slices.Clone(b)}:
		default:
			m.drops.Add(1)
		}
	}
	return nil
}

func (s *fakeSyncNet) SendSync(_ int, b []byte) error { return s.send(false, b) }
func (s *fakeSyncNet) SendControl(b []byte) error     { return s.send(true, b) }
func (s *fakeSyncNet) MaxLen() int                    { return 1472 }
func (s *fakeSyncNet) Close() error                   { s.closed.Store(true); return nil }

// OpenPush gives a bulk push a source port of its own: 40001, 40002, …
func (s *fakeSyncNet) OpenPush() (cluster.PushSender, error) {
	return &fakePush{s: s, port: uint16(40000 + s.pushes.Add(1))}, nil
}

type fakePush struct {
	s    *fakeSyncNet
	port uint16
}

func (p *fakePush) SendSync(_ int, b []byte) error { return p.s.sendFrom(p.port, false, b) }
func (p *fakePush) Port() uint16                   { return p.port }
func (p *fakePush) Close() error                   { return nil }

func (s *fakeSyncNet) Run(ctx context.Context, n *cluster.Node, clock cluster.Clock) error {
	tick, stop := clock.NewTicker(syncTick)
	defer stop()
	defer s.Close()
	for {
		select {
		case <-ctx.Done():
			return nil
		case d := <-s.inbox:
			if d.control {
				n.HandleControl(d.from, d.b, clock.Now())
			} else {
				n.HandleSync(d.from, d.b, clock.Now())
			}
		case now := <-tick:
			n.Tick(now)
		}
	}
}

// fakeRoutes is the announcement device: the routes in place, every change, and
// whether it was closed (which withdraws everything).
type fakeRoutes struct {
	mu     sync.Mutex
	routes map[netip.Addr]bool
	log    []string
	closed bool
	fail   error // Add fails with it while set
}

func (r *fakeRoutes) Add(vip netip.Addr) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.routes[vip] = true
	r.log = append(r.log, "add "+vip.String())
	return nil
}

func (r *fakeRoutes) Delete(vip netip.Addr) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.routes, vip)
	r.log = append(r.log, "delete "+vip.String())
	return nil
}

func (r *fakeRoutes) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	clear(r.routes)
	return nil
}

func (r *fakeRoutes) has(vip string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.routes[netip.MustParseAddr(vip)]
}

func (r *fakeRoutes) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// fakeBird answers BirdStatus with err (nil: a BIRD with one BGP session up) and
// counts the questions.
type fakeBird struct {
	mu    sync.Mutex
	err   error
	asked int
	// hang, when not nil, makes every question wait until it is closed, whatever
	// the caller's deadline; inFlight counts the questions waiting.
	hang     chan struct{}
	inFlight atomic.Int32
}

func (b *fakeBird) status(ctx context.Context, socket string) (cluster.BirdState, error) {
	if b.hang != nil {
		b.inFlight.Add(1)
		<-b.hang
		b.inFlight.Add(-1)
		return cluster.BirdState{}, errors.New("no answer")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.asked++
	if b.err != nil {
		return cluster.BirdState{}, b.err
	}
	return cluster.BirdState{Speakers: []cluster.BirdProtocol{{Name: "uplink", Proto: "BGP", State: "up"}}, Established: 1}, nil
}

// clusterDirector is a test director in cluster mode.
type clusterDirector struct {
	*testAdmin
	net    *fakeSyncNet
	routes *fakeRoutes
	bird   *fakeBird
}

// clusterConf is a director with one DR service on VIP 198.18.100.1 and
// [cluster] with the extra keys.
func clusterConf(node string, extra string) string {
	return directorConf + `
[[service]]
address = "198.18.100.1:80"
scheduler = "mh"
[[service.real_server]]
address = "172.19.0.10:80"
[service.real_server.check]
type = "tcp"

[[service]]
address = "198.18.100.2:80"
scheduler = "mh"
[[service.real_server]]
address = "172.19.0.11:80"

[cluster]
node_id = "` + node + `"
` + extra + drainTime(extra)
}

// drainTime is drain_time = "0s" unless extra sets it: a test director stops at
// once when its test ends (its clock does not move then).
func drainTime(extra string) string {
	if strings.Contains(extra, "drain_time") {
		return ""
	}
	return "drain_time = \"0s\"\n"
}

// newClusterDirector runs a cluster-mode director at addr on lan with text.
func newClusterDirector(t *testing.T, lan *fakeLAN, addr string, text string) *clusterDirector {
	t.Helper()
	return newClusterDirectorBird(t, lan, addr, text, &fakeBird{})
}

// newClusterDirectorBird is newClusterDirector with the BIRD it asks.
func newClusterDirectorBird(t *testing.T, lan *fakeLAN, addr string, text string, bird *fakeBird) *clusterDirector {
	t.Helper()
	return newClusterDirectorWith(t, lan, addr, text, bird, nil)
}

// newClusterDirectorWith is newClusterDirectorBird with more of its Deps changed
// by tweak (nil: none).
func newClusterDirectorWith(t *testing.T, lan *fakeLAN, addr string, text string, bird *fakeBird, tweak func(*Deps)) *clusterDirector {
	t.Helper()
	cd := &clusterDirector{routes: &fakeRoutes{routes: map[netip.Addr]bool{}}, bird: bird}
	a := netip.MustParseAddr(addr)
	var seq uint64
	cd.testAdmin = newTestDirector(t, text, func(d *Deps) {
		d.Cluster = ClusterDeps{
			Prefixes: func(name string) ([]netip.Prefix, error) {
				if name != "gvs0" {
					return nil, fmt.Errorf("no interface %q", name)
				}
				return []netip.Prefix{netip.PrefixFrom(a, 24)}, nil
			},
			Listen: func(cluster.UDPConfig) (SyncNet, error) {
				cd.net = lan.join(a)
				return cd.net, nil
			},
			OpenTAP: func(string, int, int) (RouteDevice, error) { return cd.routes, nil },
			Bird:    cd.bird.status,
			Rand:    func() uint64 { seq++; return uint64(a.As4()[3])<<32 | seq },
		}
		if tweak != nil {
			tweak(d)
		}
	})
	return cd
}

// runFor advances the directors' clocks together, 10 ms at a time, for d, and stops
// early once cond (if not nil) holds; it reports whether cond held.
func runFor(t *testing.T, d time.Duration, cond func() bool, dirs ...*clusterDirector) bool {
	t.Helper()
	for step := time.Duration(0); step < d; step += syncTick {
		if cond != nil && cond() {
			return true
		}
		// Every datagram sent so far is handled before time moves on: a fake second
		// must not pass while the LAN's goroutines are behind (a peer would seem
		// silent). A Run loop handles a datagram before it takes its next tick, so an
		// empty inbox at the next Advance means handled.
		testutil.Eventually(t, 10*time.Second, func() bool {
			for _, cd := range dirs {
				if cd.net != nil && len(cd.net.inbox) > 0 {
					return false
				}
			}
			return true
		}, "the LAN's datagrams handled")
		for _, cd := range dirs {
			cd.clock.Advance(syncTick)
		}
	}
	return cond != nil && cond()
}

// runUntil is runFor for a condition that must hold within d of fake time: once
// the window has passed, what its ticks set off may still run on goroutines the
// clock does not wait for (TestClusterAdmGolden once found its VIP not yet
// announced, the whole window having passed in 6 ms of real time on a busy
// machine), so they get real time, the clock standing still, before it says no.
func runUntil(t *testing.T, d time.Duration, cond func() bool, dirs ...*clusterDirector) bool {
	t.Helper()
	if runFor(t, d, cond, dirs...) {
		return true
	}
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

func TestClusterAnnounceAndDrain(t *testing.T) {
	lan := &fakeLAN{}
	d := newClusterDirector(t, lan, "172.19.0.3", clusterConf("dir1", ""))
	if d.d.cl == nil {
		t.Fatal("cluster mode not on")
	}
	if o := d.d.Director().Options(); !o.MHCanonical || !o.SloppyTCP || o.Sync == nil || o.Sync.Threshold != 3 || o.Sync.Period != 50 {
		t.Fatalf("cluster mode's data-path options: mh canonical %v, sloppy_tcp %v, sync rules %+v", o.MHCanonical, o.SloppyTCP, o.Sync)
	}
	// Before the discovery window ends the node is SYNCING: nothing is announced.
	runFor(t, 900*time.Millisecond, nil, d)
	if d.routes.has("198.18.100.1") || d.d.cl.node.State() != cluster.StateSyncing {
		t.Fatalf("announced while %v", d.d.cl.node.State())
	}
	if !runUntil(t, time.Second, func() bool { return d.routes.has("198.18.100.1") && d.routes.has("198.18.100.2") }, d) {
		t.Fatalf("VIPs not announced after the discovery window: %+v", d.d.cl.ann.Status())
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return d.d.cl.node.State() == cluster.StateAnnounced }, "node ANNOUNCED")

	// The real server of 198.18.100.1 fails its check: weight 0 (inhibit_on_failure,
	// cluster mode's default), no quorum, withdrawn after announce_fall (1) check.
	id := d.health.id(t, "172.19.0.10:80")
	d.health.notify(health.Transition{ID: id, Up: false, Weight: health.WeightUnchanged})
	// The controller applies it on its own goroutine: the fake clock waits for it.
	testutil.Eventually(t, 10*time.Second, func() bool { return !d.d.serviceUp(ap("198.18.100.1:80")) }, "the failure applied")
	if !runUntil(t, time.Second, func() bool { return !d.routes.has("198.18.100.1") }, d) {
		t.Fatalf("VIP with no live server still announced: %+v", d.d.cl.ann.Status())
	}
	if !d.routes.has("198.18.100.2") {
		t.Fatal("the other VIP was withdrawn too")
	}
	if svc := d.d.Configured(); len(svc) == 0 {
		t.Fatal("no services")
	}
	out := d.ok("--cluster")
	if !strings.Contains(out, "198.18.100.1  closed  withdrawn  quorum") {
		t.Errorf("--cluster does not say why 198.18.100.1 is withdrawn:\n%s", out)
	}
	d.health.notify(health.Transition{ID: id, Up: true, Weight: health.WeightUnchanged})
	testutil.Eventually(t, 10*time.Second, func() bool { return d.d.serviceUp(ap("198.18.100.1:80")) }, "the recovery applied")
	if !runUntil(t, time.Second, func() bool { return d.routes.has("198.18.100.1") }, d) {
		t.Fatal("VIP not announced again once its server is back")
	}

	// gvs adm --cluster-drain withdraws at once, without a gate check.
	if out := d.ok("--cluster-drain"); !strings.Contains(out, "draining") {
		t.Fatalf("--cluster-drain: %q", out)
	}
	if d.routes.has("198.18.100.1") || d.routes.has("198.18.100.2") || d.d.cl.node.State() != cluster.StateDraining {
		t.Fatalf("drain left routes or state %v", d.d.cl.node.State())
	}
	runFor(t, 500*time.Millisecond, nil, d)
	if d.routes.has("198.18.100.1") {
		t.Fatal("a gate opened while draining")
	}
	d.ok("--cluster-undrain")
	if !runUntil(t, time.Second, func() bool { return d.routes.has("198.18.100.1") && d.routes.has("198.18.100.2") }, d) {
		t.Fatal("not announced after --cluster-undrain")
	}
}

// TestClusterFwmarkVIP: an fwmark service's VIP is the address its match rules name;
// it is announced while the service has a real server with weight, and withdrawn
// when its only server fails its check.
func TestClusterFwmarkVIP(t *testing.T) {
	d := newClusterDirector(t, &fakeLAN{}, "172.19.0.3", clusterConf("dir1", "")+`
[[service]]
fwmark = 7
scheduler = "mh"
  [[service.match]]
  address = "198.18.100.7"
  protocol = "tcp"
  port = "8000-8100"
  [[service.real_server]]
  address = "172.19.0.12"
  [service.real_server.check]
  type = "tcp"
  connect_port = 8000
`)
	if !runUntil(t, 3*time.Second, func() bool { return d.routes.has("198.18.100.7") }, d) {
		t.Fatalf("the fwmark service's VIP not announced: %+v", d.d.cl.ann.Status())
	}
	var id string
	d.health.mu.Lock()
	for _, s := range d.health.specs {
		if s.Target.Addr() == netip.MustParseAddr("172.19.0.12") {
			id = s.ID
		}
	}
	d.health.mu.Unlock()
	if id == "" {
		t.Fatal("no health check for 172.19.0.12")
	}
	d.health.notify(health.Transition{ID: id, Up: false, Weight: health.WeightUnchanged})
	testutil.Eventually(t, 10*time.Second, func() bool { return !d.d.markServing()[ipvs.MarkKey(7, false)] }, "the failure applied")
	if !runUntil(t, 2*time.Second, func() bool { return !d.routes.has("198.18.100.7") }, d) {
		t.Fatalf("the fwmark VIP stays announced with its only server down: %+v", d.d.cl.ann.Status())
	}
	if !d.routes.has("198.18.100.1") {
		t.Error("another VIP was withdrawn")
	}
}

// TestClusterAdmGolden: gvs adm --cluster and -L --daemon of a lone director, byte
// for byte.
func TestClusterAdmGolden(t *testing.T) {
	lan := &fakeLAN{}
	bird := &fakeBird{err: fmt.Errorf("%w: no BIRD answers on /run/bird/bird.ctl", cluster.ErrBirdNotRunning)}
	d := newClusterDirectorBird(t, lan, "172.19.0.3", clusterConf("dir1", "sync_id = 7\n"), bird)
	if !runUntil(t, 3*time.Second, func() bool { return d.routes.has("198.18.100.1") }, d) {
		t.Fatal("not announced")
	}
	runFor(t, 5*time.Second, nil, d) // BIRD is asked again
	testutil.Eventually(t, 10*time.Second, func() bool {
		bird.mu.Lock()
		defer bird.mu.Unlock()
		return bird.asked >= 2
	}, "BIRD asked again after %v", birdEvery)
	got := d.ok("--cluster")
	digest := config.ClusterDigest(mustParse(t, clusterConf("dir1", "sync_id = 7\n")))
	want := `node dir1  state ANNOUNCED  incarnation 0x300000001
sync: group 224.0.0.81, sync port 8848 on gvs0, control port 8849, syncid 7
config digest ` + fmt.Sprintf("%x", digest) + `: matches every live peer
sent: 0 messages, 0 records, 0 bytes (refreshed 0, bulk 0)
received: 0 messages, 0 records, 0 bytes
dropped: none; decode: none
bulk sync: done (joins ended by join_wait: 0)
BIRD (/run/bird/bird.ctl): BIRD is not running: no BIRD answers on /run/bird/bird.ctl — gvs serves, but no router learns its VIPs

PEER  ADDRESS  LIVE  STATE  INCARNATION  LAST HEARD  DIGEST  SENT  RECEIVED  LOST  RESYNCS
(none heard)

VIP           GATE  ROUTE      WHY
198.18.100.1  open  announced  all conditions hold
198.18.100.2  open  announced  all conditions hold
`
	if got != want {
		t.Errorf("gvs adm --cluster:\n%s\nwant:\n%s", got, want)
	}
	if n := strings.Count(d.logs.String(), "msg=\"cluster: BIRD is not running"); n != 1 {
		t.Errorf("BIRD not running logged %d times, want once:\n%s", n, d.logs)
	}
	d.bird.mu.Lock()
	asked := d.bird.asked
	d.bird.mu.Unlock()
	if asked < 2 {
		t.Errorf("BIRD asked %d times in 8 s, want every %v", asked, birdEvery)
	}
	wantL := "master sync daemon (mcast=gvs0, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n" +
		"backup sync daemon (mcast=gvs0, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
	if got := d.ok("-L --daemon"); got != wantL {
		t.Errorf("-L --daemon:\n%q\nwant\n%q", got, wantL)
	}
	_, errOut, st := d.adm("--start-daemon master --mcast-interface gvs0")
	if st == 0 || !strings.Contains(errOut, "cluster mode") {
		t.Errorf("--start-daemon: status %d, %q", st, errOut)
	}
}

// TestClusterBirdHangs: a BIRD that never answers delays no gate check — the VIPs
// are announced while the first question still waits.
func TestClusterBirdHangs(t *testing.T) {
	bird := &fakeBird{hang: make(chan struct{})}
	d := newClusterDirectorBird(t, &fakeLAN{}, "172.19.0.3", clusterConf("dir1", ""), bird)
	t.Cleanup(func() { close(bird.hang) }) // before the director stops (cleanups run last first)
	testutil.Eventually(t, 10*time.Second, func() bool { return bird.inFlight.Load() == 1 }, "the first question to BIRD asked")
	if !runUntil(t, 3*time.Second, func() bool { return d.routes.has("198.18.100.1") }, d) {
		t.Fatalf("not announced while BIRD hangs: %+v", d.d.cl.ann.Status())
	}
	if bird.inFlight.Load() != 1 {
		t.Fatal("the question to BIRD did not wait")
	}
}

// downHost is fakeHost whose interface can lose its carrier.
type downHost struct {
	fakeHost
	down atomic.Bool
}

func (h *downHost) Interface(name string) (Interface, error) {
	ifi, err := h.fakeHost.Interface(name)
	ifi.Up = !h.down.Load()
	return ifi, err
}

// TestClusterLinkDown: the director's interface losing its carrier closes every
// gate (data_path), and its return opens them again.
func TestClusterLinkDown(t *testing.T) {
	host := &downHost{}
	cd := &clusterDirector{routes: &fakeRoutes{routes: map[netip.Addr]bool{}}, bird: &fakeBird{}}
	lan := &fakeLAN{}
	cd.testAdmin = newTestDirector(t, clusterConf("dir1", ""), func(d *Deps) {
		d.Host = host
		d.Cluster = ClusterDeps{
			Prefixes: func(string) ([]netip.Prefix, error) {
				return []netip.Prefix{netip.MustParsePrefix("172.19.0.3/24")}, nil
			},
			Listen: func(cluster.UDPConfig) (SyncNet, error) {
				cd.net = lan.join(netip.MustParseAddr("172.19.0.3"))
				return cd.net, nil
			},
			OpenTAP: func(string, int, int) (RouteDevice, error) { return cd.routes, nil },
		}
	})
	if !runUntil(t, 3*time.Second, func() bool { return cd.routes.has("198.18.100.1") }, cd) {
		t.Fatal("not announced")
	}
	host.down.Store(true)
	if !runUntil(t, time.Second, func() bool { return !cd.routes.has("198.18.100.1") && !cd.routes.has("198.18.100.2") }, cd) {
		t.Fatalf("still announced with the interface down: %+v", cd.d.cl.ann.Status())
	}
	if st := cd.d.cl.ann.Status(); st[0].Reason != "data_path" {
		t.Errorf("reason %q, want data_path", st[0].Reason)
	}
	host.down.Store(false)
	if !runUntil(t, time.Second, func() bool { return cd.routes.has("198.18.100.1") }, cd) {
		t.Fatal("not announced again once the interface is back")
	}
}

func mustParse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestClusterOffAdm: without [cluster], --cluster says so, the drain commands are
// refused and -L --daemon lists nothing, as ipvsadm without sync daemons.
func TestClusterOffAdm(t *testing.T) {
	ta := newTestAdmin(t)
	if out := ta.ok("--cluster"); !strings.Contains(out, "cluster mode is off") {
		t.Errorf("--cluster: %q", out)
	}
	if _, errOut, st := ta.adm("--cluster-drain"); st == 0 || !strings.Contains(errOut, "cluster mode is off") {
		t.Errorf("--cluster-drain: status %d, %q", st, errOut)
	}
	if out := ta.ok("-L --daemon"); out != "" {
		t.Errorf("-L --daemon: %q, want nothing", out)
	}
	if _, errOut, st := ta.adm("--cluster extra"); st == 0 || !strings.Contains(errOut, "takes no arguments") {
		t.Errorf("--cluster extra: status %d, %q", st, errOut)
	}
}

// TestClusterTwoDirectors: two directors find each other, become ready and
// announce; a config that differs is counted and, with require_same_config, holds
// the gate of the director that sees it.
func TestClusterTwoDirectors(t *testing.T) {
	lan := &fakeLAN{}
	a := newClusterDirector(t, lan, "172.19.0.3", clusterConf("dir1", "require_same_config = true\n"))
	b := newClusterDirector(t, lan, "172.19.0.4", clusterConf("dir2", "require_same_config = true\n")+`
[[service]]
address = "198.18.100.3:80"
[[service.real_server]]
address = "172.19.0.12:80"
`)
	if !runUntil(t, 3*time.Second, func() bool {
		return a.d.cl.node.Stats().ConfigMismatch > 0 && b.d.cl.node.Stats().ConfigMismatch > 0
	}, a, b) {
		t.Fatal("config mismatch not counted")
	}
	runFor(t, 2*time.Second, nil, a, b)
	if a.routes.has("198.18.100.1") || b.routes.has("198.18.100.1") {
		t.Fatal("announced with a config that differs from a live peer's (require_same_config)")
	}
	out := a.ok("--cluster")
	for _, w := range []string{"DIFFERS from dir2 (require_same_config: gates closed)", "withdrawn  config_mismatch", "dir2  172.19.0.4  yes"} {
		if !strings.Contains(out, w) {
			t.Errorf("--cluster lacks %q:\n%s", w, out)
		}
	}
	// The status page shows the same.
	st := a.a.statusSnapshot().Cluster
	if st == nil || st.Node != "dir1" || st.Matches || len(st.Peers) != 1 || st.Peers[0].Node != "dir2" || !st.Peers[0].Live ||
		st.Peers[0].DigestMatch || len(st.VIPs) != 2 || st.VIPs[0].Announced || st.VIPs[0].Reason != "config_mismatch" {
		t.Errorf("status page's cluster: %+v", st)
	}
	if off := newTestAdmin(t); off.a.statusSnapshot().Cluster != nil {
		t.Error("a director without cluster mode shows a cluster on its status page")
	}
	// dir2 reloads the same services as dir1: the digests match, both announce.
	if err := b.reloadText(clusterConf("dir2", "require_same_config = true\n")); err != nil {
		t.Fatal(err)
	}
	if !runUntil(t, 3*time.Second, func() bool { return a.routes.has("198.18.100.1") && b.routes.has("198.18.100.1") }, a, b) {
		t.Fatalf("not announced once the configs match: %s", a.ok("--cluster"))
	}
}

// TestClusterReloadRefused: a reload that changes [cluster] is refused naming the
// keys; one that changes services only is taken.
func TestClusterReloadRefused(t *testing.T) {
	lan := &fakeLAN{}
	d := newClusterDirector(t, lan, "172.19.0.3", clusterConf("dir1", ""))
	for _, tc := range []struct{ text, want string }{
		{clusterConf("dir1", "sync_port = 9000\n"), "[cluster] sync_port (8848 → 9000)"},
		{clusterConf("dir9", "drain_time = \"5s\"\n"), "node_id (dir1 → dir9), drain_time (0s → 5s)"},
		{directorConf, "[cluster] enabled (true → false)"},
	} {
		err := d.reloadText(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "restart") {
			t.Errorf("reload: %v, want %q", err, tc.want)
		}
	}
	if err := d.reloadText(clusterConf("dir1", "") + "\n[[service]]\naddress = \"198.18.100.9:80\"\n"); err != nil {
		t.Fatalf("a reload changing services only: %v", err)
	}
	off := newTestAdmin(t)
	if err := off.reloadText(clusterConf("dir1", "")); err == nil || !strings.Contains(err.Error(), "[cluster] enabled (false → true)") {
		t.Errorf("turning cluster mode on by reload: %v", err)
	}
}

// TestClusterKeysComplete: every [cluster] field is compared on reload.
func TestClusterKeysComplete(t *testing.T) {
	typ := reflect.TypeFor[config.Cluster]()
	var fields []string
	for _, k := range clusterKeys {
		fields = append(fields, k.field)
	}
	for i := range typ.NumField() {
		if !slices.Contains(fields, typ.Field(i).Name) {
			t.Errorf("config.Cluster.%s is not in clusterKeys: a reload changing it would be ignored", typ.Field(i).Name)
		}
	}
}

// TestClusterStartErrors: what cluster mode cannot open is a start-up error naming
// the key.
func TestClusterStartErrors(t *testing.T) {
	text := clusterConf("dir1", "")
	for _, tc := range []struct {
		name  string
		tweak func(*ClusterDeps)
		want  string
	}{
		{"no tun", func(c *ClusterDeps) {
			c.OpenTAP = func(string, int, int) (RouteDevice, error) {
				return nil, &os.PathError{Op: "open", Path: "/dev/net/tun", Err: os.ErrNotExist}
			}
		}, `announce_device "gvs-vip" (needs CAP_NET_ADMIN and /dev/net/tun): open /dev/net/tun`},
		{"port taken", func(c *ClusterDeps) {
			c.Listen = func(cluster.UDPConfig) (SyncNet, error) { return nil, errors.New("address already in use") }
		}, "sync sockets on gvs0 (sync_interface, sync_port 8848, control_port 8849): address already in use"},
		{"no interface", func(c *ClusterDeps) {
			c.Prefixes = func(string) ([]netip.Prefix, error) { return nil, errors.New("no such interface") }
		}, `sync_interface "gvs0": no such interface`},
		{"no transport", func(c *ClusterDeps) { *c = ClusterDeps{} }, "no cluster transport"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, text)
			hermetic(cfg, text)
			ta := &testAdmin{t: t, clock: testutil.NewClock(t), res: &fakeResolver{}, link: &filterLink{Channel: newChannel()}, logs: &logBuffer{}}
			deps := testDeps(ta)
			routes := &fakeRoutes{routes: map[netip.Addr]bool{}}
			deps.Cluster = ClusterDeps{
				Prefixes: func(string) ([]netip.Prefix, error) {
					return []netip.Prefix{netip.MustParsePrefix("172.19.0.3/24")}, nil
				},
				Listen: func(cluster.UDPConfig) (SyncNet, error) {
					return (&fakeLAN{}).join(netip.MustParseAddr("172.19.0.3")), nil
				},
				OpenTAP: func(string, int, int) (RouteDevice, error) { return routes, nil },
			}
			tc.tweak(&deps.Cluster)
			d, err := New(cfg, deps)
			if err == nil {
				d.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestClusterAuthKeyFile: the key is read from sync_auth_key_file; an empty or
// missing file is a start-up error naming the key.
func TestClusterAuthKeyFile(t *testing.T) {
	dir := t.TempDir()
	good, empty := filepath.Join(dir, "key"), filepath.Join(dir, "empty")
	os.WriteFile(good, []byte("a shared secret\n"), 0o600)
	os.WriteFile(empty, []byte("\n"), 0o600)
	prefixes := []netip.Prefix{netip.MustParsePrefix("172.19.0.3/24")}
	for _, tc := range []struct{ file, want string }{
		{good, ""},
		{empty, "is empty"},
		{filepath.Join(dir, "missing"), "sync_auth_key_file: open"},
	} {
		cfg := mustParse(t, clusterConf("dir1", fmt.Sprintf("sync_auth_key_file = %q\n", tc.file)))
		c, err := clusterConfig(cfg, "dir1", prefixes)
		switch {
		case tc.want == "" && (err != nil || string(c.AuthKey) != "a shared secret"):
			t.Errorf("%s: key %q, %v", tc.file, c.AuthKey, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.file, err, tc.want)
		}
	}
}

// TestClusterConfigMapping: [cluster] keys land in the runtime's Config; without
// sync_sources the sync interface's subnets are accepted.
func TestClusterConfigMapping(t *testing.T) {
	cfg := mustParse(t, clusterConf("dir1", `sync_id = 9
sync_version = 0
sync_threshold = [2, 20]
sync_refresh_period = "10s"
sync_retries = 2
sync_persist_mode = 1
sync_flush = "50ms"
bulk_rate = 1000
join_wait = "5s"
`))
	c, err := clusterConfig(cfg, "dir1", []netip.Prefix{netip.MustParsePrefix("172.19.0.3/24"), netip.MustParsePrefix("2001:db8::3/64")})
	if err != nil {
		t.Fatal(err)
	}
	if c.SyncID != 9 || c.SyncVersion != 0 || c.Rules.Threshold != 2 || c.Rules.Period != 20 || c.Rules.RefreshPeriod != 10*time.Second ||
		c.Rules.Retries != 2 || !c.Rules.PersistMode || c.SyncFlush != 50*time.Millisecond || c.BulkRate != 1000 || c.JoinWait != 5*time.Second {
		t.Errorf("config %+v", c)
	}
	wantSrc := []netip.Prefix{netip.MustParsePrefix("172.19.0.0/24"), netip.MustParsePrefix("2001:db8::/64")}
	wantSelf := []netip.Addr{netip.MustParseAddr("172.19.0.3"), netip.MustParseAddr("2001:db8::3")}
	if !slices.Equal(c.Sources, wantSrc) || !slices.Equal(c.Self, wantSelf) {
		t.Errorf("sources %v self %v, want %v %v", c.Sources, c.Self, wantSrc, wantSelf)
	}
	// Unicast peers beyond the subnets are accepted; sync_sources, when set, is all.
	prefixes := []netip.Prefix{netip.MustParsePrefix("172.19.0.3/24")}
	c, err = clusterConfig(mustParse(t, clusterConf("dir1", `sync_peers = ["198.18.9.4", "172.19.0.5"]`+"\n")), "dir1", prefixes)
	if want := []netip.Prefix{netip.MustParsePrefix("172.19.0.0/24"), netip.MustParsePrefix("198.18.9.4/32"), netip.MustParsePrefix("172.19.0.5/32")}; err != nil || !slices.Equal(c.Sources, want) {
		t.Errorf("with sync_peers: sources %v (%v), want %v", c.Sources, err, want)
	}
	c, err = clusterConfig(mustParse(t, clusterConf("dir1", `sync_peers = ["198.18.9.4"]`+"\n"+`sync_sources = ["198.18.9.0/24"]`+"\n")), "dir1", prefixes)
	if want := []netip.Prefix{netip.MustParsePrefix("198.18.9.0/24")}; err != nil || !slices.Equal(c.Sources, want) {
		t.Errorf("with sync_sources: sources %v (%v), want %v", c.Sources, err, want)
	}
	if c.ConfigDigest != config.ClusterDigest(cfg) {
		t.Error("digest is not config.ClusterDigest's")
	}
}

// TestClusterShutdownDrains: ending Run's context withdraws every route at once,
// keeps the director running for drain_time, then stops it and closes the device.
func TestClusterShutdownDrains(t *testing.T) {
	lan := &fakeLAN{}
	text := clusterConf("dir1", "drain_time = \"2s\"\n")
	cd := &clusterDirector{routes: &fakeRoutes{routes: map[netip.Addr]bool{}}, bird: &fakeBird{}}
	cfg := mustParse(t, text)
	hermetic(cfg, text)
	testutil.CheckLeaks(t)
	ta := &testAdmin{t: t, clock: testutil.NewClock(t), res: &fakeResolver{}, link: &filterLink{Channel: newChannel()}, logs: &logBuffer{}}
	deps := testDeps(ta)
	deps.Cluster = ClusterDeps{
		Prefixes: func(string) ([]netip.Prefix, error) {
			return []netip.Prefix{netip.MustParsePrefix("172.19.0.3/24")}, nil
		},
		Listen: func(cluster.UDPConfig) (SyncNet, error) {
			cd.net = lan.join(netip.MustParseAddr("172.19.0.3"))
			return cd.net, nil
		},
		OpenTAP: func(string, int, int) (RouteDevice, error) { return cd.routes, nil },
	}
	d, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ta.d, ta.a = d, d.admin
	cd.testAdmin = ta
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			ta.clock.Advance(3 * time.Second) // past drain_time
			<-done
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", ta.logs)
		}
	}()
	ta.settle()
	if !runUntil(t, 3*time.Second, func() bool { return cd.routes.has("198.18.100.1") }, cd) {
		t.Fatal("not announced")
	}
	cancel()
	testutil.Eventually(t, 5*time.Second, func() bool { return !cd.routes.has("198.18.100.1") && !cd.routes.has("198.18.100.2") },
		"routes withdrawn at once on shutdown")
	// Still forwarding: Run has not returned, the links are open.
	runFor(t, 1900*time.Millisecond, nil, cd)
	select {
	case err := <-done:
		t.Fatalf("Run returned before drain_time: %v", err)
	default:
	}
	if st := d.cl.node.State(); st != cluster.StateDraining {
		t.Fatalf("state %v while draining", st)
	}
	if r := d.Handle(context.Background(), controlReq("-Ln")); r.Status != 0 {
		t.Fatalf("gvs adm during the drain: %+v", r)
	}
	runFor(t, 200*time.Millisecond, func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
			return false
		}
	}, cd)
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after drain_time")
	}
	if !cd.routes.isClosed() {
		t.Fatal("announcement device not closed")
	}
}

// TestClusterDataPathAlive: a worker waiting for frames is alive; one stuck in a
// batch for stallAfter is not; one whose link failed is not.
func TestClusterDataPathAlive(t *testing.T) {
	c := &clusterRun{stallAfter: time.Second}
	b := c.beat(nil)
	c.stall = make([]beatSample, 1)
	now := time.Unix(1_700_000_000, 0)
	if c.dataPathAlive(now) {
		t.Fatal("a worker that never started is alive")
	}
	b.n.Store(1) // waiting in ReadBatch
	if !c.dataPathAlive(now) {
		t.Fatal("a waiting worker is dead")
	}
	b.n.Store(2) // in a batch
	if !c.dataPathAlive(now.Add(100 * time.Millisecond)) {
		t.Fatal("a worker in a fresh batch is dead")
	}
	if !c.dataPathAlive(now.Add(900 * time.Millisecond)) {
		t.Fatal("a worker 0.8 s into a batch is dead")
	}
	if c.dataPathAlive(now.Add(1100 * time.Millisecond)) {
		t.Fatal("a worker stuck for a second is alive")
	}
	b.n.Store(4) // it moved on
	if !c.dataPathAlive(now.Add(1200 * time.Millisecond)) {
		t.Fatal("a worker that moved on is dead")
	}
	b.stopped.Store(true)
	if c.dataPathAlive(now.Add(1300 * time.Millisecond)) {
		t.Fatal("a stopped worker is alive")
	}
}

var _ dataplane.Link = (*workerBeat)(nil)

// TestClusterSyncEndToEnd: connections a director forwards reach the other
// director's table through the workers' rings, the drainer, the Node and the table
// adapter; the receiver keeps entries for a real server it does not have unbound,
// binds them when a reload brings the server, and forwards their next packet to it.
func TestClusterSyncEndToEnd(t *testing.T) {
	lan := &fakeLAN{}
	a := newClusterDirector(t, lan, "172.19.0.3", clusterConf("dir1", ""))
	noServer := strings.Replace(clusterConf("dir2", ""), "address = \"172.19.0.10:80\"\n[service.real_server.check]\ntype = \"tcp\"\n",
		"address = \"172.19.0.13:80\"\n", 1)
	b := newClusterDirector(t, lan, "172.19.0.4", noServer)
	if !runUntil(t, 3*time.Second, func() bool { return a.d.cl.node.Warm() && b.d.cl.node.Warm() }, a, b) {
		t.Fatal("directors not ready")
	}
	const n = 20
	client := netip.MustParseAddr("198.51.100.7")
	var first []tcpPkt
	var acks []tcpPkt
	for i := range n {
		c := netip.AddrPortFrom(client, uint16(40000+i))
		first = append(first, tcpPkt{client: c, vip: ap("198.18.100.1:80"), syn: true})
		acks = append(acks, tcpPkt{client: c, vip: ap("198.18.100.1:80"), ack: true})
	}
	if got := a.send(first...); len(got) != n {
		t.Fatalf("dir1 forwarded %d SYNs, want %d", len(got), n)
	}
	a.send(acks...)
	a.send(acks...) // the third packet: sync_threshold [3, 50]
	count := func(d *clusterDirector, bound bool) int {
		k := 0
		d.d.Director().Table().Each(func(c *conntrack.Conn) bool {
			if c.Key.Proto == 6 && c.Sync.Origin != 0 && c.HasDest == bound {
				k++
			}
			return true
		})
		return k
	}
	if !runUntil(t, 2*time.Second, func() bool { return count(b, false) == n }, a, b) {
		t.Fatalf("dir2 holds %d unbound and %d bound synced connections, want %d unbound; dir1 stats %+v, dir2 %+v",
			count(b, false), count(b, true), n, a.d.cl.node.Stats(), b.d.cl.node.Stats())
	}
	if st := a.d.cl.node.Stats(); st.SentRecords < n {
		t.Fatalf("dir1 sent %d records, want >= %d", st.SentRecords, n)
	}
	// dir2 gets the real server: the entries bind to it.
	if err := b.reloadText(clusterConf("dir2", "")); err != nil {
		t.Fatal(err)
	}
	if !runUntil(t, time.Second, func() bool { return count(b, true) == n }, a, b) {
		t.Fatalf("dir2 bound %d of %d synced connections after the reload", count(b, true), n)
	}
	// The flow moves to dir2 (the router rehashed): its next packet goes to the
	// server dir1 chose, as the synced entry says.
	if macs := b.send(acks[0]); len(macs) != 1 || macs[0] != "02:00:00:00:00:0a" {
		t.Fatalf("dir2 forwarded a moved flow's packet to %v, want 172.19.0.10's MAC", macs)
	}
	// The metrics say so: records in and out, the bindings, the adoption.
	srvA, srvB := httptest.NewServer(a.d.metrics.Handler()), httptest.NewServer(b.d.metrics.Handler())
	defer srvA.Close()
	defer srvB.Close()
	ma, mb := scrape(t, srvA.URL), scrape(t, srvB.URL)
	for _, c := range []struct {
		m    map[string]float64
		name string
		min  float64
	}{
		{ma, `gvs_sync_events_total{result="pushed"}`, n},
		{ma, `gvs_sync_events_total{result="stale"}`, 0},
		{ma, "gvs_sync_sent_records_total", n},
		{ma, "gvs_cluster_peers_live", 1},
		{mb, `gvs_conntrack_sync_upserts_total{result="created"}`, n},
		{mb, "gvs_conntrack_sync_bound_total", n},
		{mb, "gvs_conntrack_adopted_total", 1},
		{mb, `gvs_sync_received_records_total{peer="dir1"}`, n},
	} {
		if v, ok := c.m[c.name]; !ok || v < c.min {
			t.Errorf("%s = %v (present %v), want >= %v", c.name, v, ok, c.min)
		}
	}
	if v := mb["gvs_conntrack_sync_unbound_entries"]; v != 0 {
		t.Errorf("dir2 still reports %v unbound entries", v)
	}
	// dir2 holds the n connections dir1 sent; the moved flow's packet adopted one.
	if v, ok := mb["gvs_conntrack_synced_entries"]; v != n-1 {
		t.Errorf("dir2 gvs_conntrack_synced_entries = %v (present %v), want %d", v, ok, n-1)
	}
	if v, ok := ma["gvs_sync_flush_latency_seconds_count"]; !ok || v < 1 {
		t.Errorf("dir1 gvs_sync_flush_latency_seconds_count = %v (present %v), want >= 1", v, ok)
	}
	// The adopted flow was a synced connection, not a new one: no sloppy creation.
	if v, ok := mb["gvs_sloppy_created_total"]; !ok || v != 0 {
		t.Errorf("dir2 gvs_sloppy_created_total = %v (present %v), want 0", v, ok)
	}
}
