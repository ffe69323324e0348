package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/testutil"
	"github.com/gvs-lb/gvs/ipvs"
)

// webConf is one web service with three real servers whose MACs are resolved.
const webConf = `
[[service]]
address = "198.18.0.100:80"
scheduler = "rr"
  [[service.real_server]]
  address = "198.18.0.5:80"
  [[service.real_server]]
  address = "198.18.0.6:80"
  [[service.real_server]]
  address = "198.18.0.7:80"
`

// through sends a frame into the daemon's link and returns the destination MAC of
// the frame its worker sends on.
func (ta *testAdmin) through(p tcpPkt) string {
	ta.t.Helper()
	f := p.frame(ta.t)
	ta.link.Inbound <- f.Bytes()
	select {
	case out := <-ta.link.Outbound:
		return net.HardwareAddr(out[:6]).String()
	case <-time.After(testutil.StuckTimeout):
		ta.t.Fatalf("frame from %s to %s not forwarded", p.client, p.vip)
		return ""
	}
}

// weights returns the Director's real servers of the service at vip, by address.
func (ta *testAdmin) weights(vip string) map[string]int32 {
	m := map[string]int32{}
	for _, v := range ta.d.d.Services() {
		if v.Spec.Addr.String() == vip {
			for _, dv := range v.Dests {
				m[netip.AddrPortFrom(dv.Addr, dv.Port).String()] = dv.Weight
			}
		}
	}
	return m
}

func wantWeights(t *testing.T, what string, got map[string]int32, want map[string]int32) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: real servers %v, want %v", what, got, want)
	}
}

// TestReloadKeepsConnectionsAndAdmEdits: a reload applies the difference between
// the old and the new file. The adm changes it does not touch survive (a server
// drained to weight 0 stays drained, one added stays), those it touches become what
// the file says and the log names the adm command it overrode; a TCP connection
// through the link keeps its real server across it.
func TestReloadKeepsConnectionsAndAdmEdits(t *testing.T) {
	ta := newTestAdmin(t, webConf)
	flow := tcpPkt{client: ap("198.51.100.7:40000"), vip: ap("198.18.0.100:80"), syn: true}
	server := ta.through(flow)

	ta.ok("-e -t 198.18.0.100:80 -r 198.18.0.6:80 -w 0")
	ta.ok("-e -t 198.18.0.100:80 -r 198.18.0.5:80 -w 5")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.8:80 -w 2")
	ta.ok("--set 3600 0 0")

	// The same file again: every adm change survives.
	if err := ta.reload(webConf); err != nil {
		t.Fatal(err)
	}
	wantWeights(t, "after reloading the same file", ta.weights("198.18.0.100:80"),
		map[string]int32{"198.18.0.5:80": 5, "198.18.0.6:80": 0, "198.18.0.7:80": 1, "198.18.0.8:80": 2})
	if strings.Contains(ta.logs.String(), "overrides") {
		t.Errorf("reloading the same file overrode adm changes:\n%s", ta.logs)
	}

	// The file changes .5's weight and .7's, and adds a service: .5's adm edit is
	// overridden, the others stay.
	changed := strings.Replace(webConf, `address = "198.18.0.5:80"`, `address = "198.18.0.5:80"
  weight = 3`, 1)
	changed = strings.Replace(changed, `address = "198.18.0.7:80"`, `address = "198.18.0.7:80"
  weight = 4`, 1) + `
[[service]]
address = "198.18.0.100:443"
  [[service.real_server]]
  address = "198.18.0.5:443"
`
	if err := ta.reload(changed); err != nil {
		t.Fatal(err)
	}
	wantWeights(t, "after the changed file", ta.weights("198.18.0.100:80"),
		map[string]int32{"198.18.0.5:80": 3, "198.18.0.6:80": 0, "198.18.0.7:80": 4, "198.18.0.8:80": 2})
	if len(ta.weights("198.18.0.100:443")) != 1 {
		t.Errorf("the service the file added is missing:\n%s", ta.ok("-Ln"))
	}
	logs := ta.logs.String()
	if !strings.Contains(logs, `msg="reload overrides a gvs adm change" what="TCP 198.18.0.100:80 real server 198.18.0.5:80" adm=edited command="-e -t 198.18.0.100:80 -r 198.18.0.5:80 -w 5" file=changed`) {
		t.Errorf("the override of .5's adm edit is not logged with its command:\n%s", logs)
	}
	if n := strings.Count(logs, "reload overrides a gvs adm change"); n != 1 {
		t.Errorf("%d overrides logged, want 1:\n%s", n, logs)
	}
	if got := ta.ok("-L --timeout"); got != "Timeout (tcp tcpfin udp): 3600 120 300\n" {
		t.Errorf("--set did not survive reloads that leave the timeouts alone: %q", got)
	}

	// The connection kept its real server throughout.
	flow.syn, flow.ack = false, true
	if got := ta.through(flow); got != server {
		t.Errorf("established connection went to %s after the reloads, want %s", got, server)
	}
	if n := ta.d.d.Table().Len(); n != 1 {
		t.Errorf("%d connections after the reloads, want 1", n)
	}
}

// TestReloadOverridesAdmDeletion: a service deleted with gvs adm stays deleted
// while the file leaves it alone, and comes back (logged) when the file changes it.
func TestReloadOverridesAdmDeletion(t *testing.T) {
	ta := newTestAdmin(t, webConf)
	ta.ok("-D -t 198.18.0.100:80")
	if err := ta.reload(webConf); err != nil {
		t.Fatal(err)
	}
	if out := ta.ok("-Sn"); out != "" {
		t.Errorf("a service deleted with gvs adm came back on a reload that leaves it alone:\n%s", out)
	}
	if err := ta.reload(strings.Replace(webConf, `scheduler = "rr"`, `scheduler = "wrr"`, 1)); err != nil {
		t.Fatal(err)
	}
	if out := ta.ok("-Sn"); !strings.HasPrefix(out, "-A -t 198.18.0.100:80 -s wrr\n") {
		t.Errorf("the file's change did not restore the service:\n%s", out)
	}
	if !strings.Contains(ta.logs.String(), `what="TCP 198.18.0.100:80" adm=deleted command="-D -t 198.18.0.100:80" file=changed`) {
		t.Errorf("the override of the deletion is not logged:\n%s", ta.logs)
	}
}

// TestReloadBrokenLeavesEverythingUntouched: a file the Director cannot take is
// refused whole, naming the file; services, adm changes, options and connections
// stay as they were.
func TestReloadBrokenLeavesEverythingUntouched(t *testing.T) {
	ta := newTestAdmin(t, webConf)
	ta.ok("-e -t 198.18.0.100:80 -r 198.18.0.6:80 -w 0")
	before, gens, opts := ta.ok("-Sn"), ta.generations(), ta.d.d.Options()
	// conn_max changes too, and an IPv6 tunnel needs address6, which is not set.
	broken := strings.Replace(directorConf, "conn_max = 4096", "conn_max = 8192", 1) + webConf + `
[[service]]
address = "[2001:db8::100]:80"
  [[service.real_server]]
  address = "[2001:db8::5]:80"
  method = "tun"
`
	err := ta.reloadText(broken)
	if err == nil || !strings.Contains(err.Error(), "test.toml") {
		t.Fatalf("reload of a file the Director refuses: %v, want an error naming the file", err)
	}
	diffText(t, "-Sn after the refused reload", before, ta.ok("-Sn"))
	if ta.generations() != gens {
		t.Error("a refused reload published a configuration")
	}
	if got := ta.d.d.Options(); got.ConnMax != opts.ConnMax || ta.d.d.Table().Max() != 4096 {
		t.Errorf("a refused reload changed conn_max to %d (table %d)", got.ConnMax, ta.d.d.Table().Max())
	}
	// The next good reload starts from the running state, adm change included.
	if err := ta.reload(webConf); err != nil {
		t.Fatal(err)
	}
	diffText(t, "-Sn after a good reload", before, ta.ok("-Sn"))
}

// TestRunReloadRefusesBrokenFile drives Run's SIGHUP path with a file on disk: a
// file that does not parse is refused with its file:line and the director keeps
// running as it was; a good one then applies.
func TestRunReloadRefusesBrokenFile(t *testing.T) {
	testutil.CheckLeaks(t)
	path := filepath.Join(t.TempDir(), "gvs.toml")
	// Hermetic: not the host's default control socket.
	directorConf := directorConf + "control_socket = \"\"\n"
	if err := os.WriteFile(path, []byte(directorConf+webConf), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	ta := &testAdmin{t: t, res: &fakeResolver{}, link: &filterLink{Channel: newChannel()}, logs: logs}
	deps := testDeps(ta)
	opened := make(chan struct{})
	deps.OpenLinks = func(Interface, *afpacket.Filter, PacketOptions) ([]dataplane.Link, error) {
		close(opened)
		return []dataplane.Link{ta.link}, nil
	}
	reload := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{ConfigPath: path, Logger: deps.Logger, Deps: &deps, Reload: reload}) }()
	<-opened
	if err := os.WriteFile(path, []byte(directorConf+webConf+"\n[[service]]\naddress = \"198.18.0.100:443\"\nscheduler = \"fastest\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "reload failed") }, "the refused reload's log")
	if !strings.Contains(logs.String(), "gvs.toml:21: service[1].scheduler") {
		t.Errorf("the refusal does not name file:line:\n%s", logs)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(directorConf, "conn_max = 4096", "conn_max = 8192", 1)+webConf), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "msg=reloaded") }, "the good reload's log")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if strings.Count(logs.String(), "msg=reloaded") != 1 {
		t.Errorf("want exactly one reload applied:\n%s", logs)
	}
}

// TestReloadDirectorKeys: conn_max, timeouts and sloppy_tcp take effect on reload;
// conn_shards is named as needing a restart and keeps its running value; --set
// timeouts the file then changes are overridden, and the log says so.
func TestReloadDirectorKeys(t *testing.T) {
	ta := newTestAdmin(t, webConf)
	ta.through(tcpPkt{client: ap("198.51.100.7:40000"), vip: ap("198.18.0.100:80"), syn: true})
	ta.ok("--set 0 0 30")
	dir := strings.NewReplacer("conn_max = 4096", "conn_max = 8192", "conn_shards = 16", "conn_shards = 32").Replace(directorConf) + `
sloppy_tcp = true
tcp_timeout = "1h"
udp_timeout = "1m"
`
	if err := ta.reloadText(dir + webConf); err != nil {
		t.Fatal(err)
	}
	o := ta.d.d.Options()
	if o.ConnMax != 8192 || ta.d.d.Table().Max() != 8192 {
		t.Errorf("conn_max after reload: options %d, table %d, want 8192", o.ConnMax, ta.d.d.Table().Max())
	}
	if !o.SloppyTCP {
		t.Error("sloppy_tcp not applied on reload")
	}
	if o.ConnShards != 16 {
		t.Errorf("conn_shards changed to %d on reload; it needs a restart", o.ConnShards)
	}
	to := ta.d.d.Table().Timeouts()
	if to.TCP[conntrack.StateEstablished] != time.Hour || to.UDP != time.Minute {
		t.Errorf("timeouts after reload: tcp %v udp %v, want 1h 1m", to.TCP[conntrack.StateEstablished], to.UDP)
	}
	logs := ta.logs.String()
	if !strings.Contains(logs, `keys=[conn_shards]`) {
		t.Errorf("conn_shards is not named as needing a restart:\n%s", logs)
	}
	if !strings.Contains(logs, `what=timeouts adm=--set 0 0 30" file=changed`) && !strings.Contains(logs, `what=timeouts adm="--set 0 0 30" file=changed`) {
		t.Errorf("the override of --set is not logged:\n%s", logs)
	}
	if n := ta.d.d.Table().Len(); n != 1 {
		t.Errorf("%d connections after the reload, want 1", n)
	}
}

// TestHealthReachesDataPath: a real server whose check fails stops receiving new
// connections, and gets them again once it passes.
func TestHealthReachesDataPath(t *testing.T) {
	ta := newTestAdmin(t, webConf+`
  [service.check]
  type = "tcp"
`)
	down := ta.health.id(t, "198.18.0.6:80")
	ta.health.notify(health.Transition{ID: down, Up: false, Weight: health.WeightUnchanged})
	testutil.Eventually(t, 10*time.Second, func() bool { return len(ta.weights("198.18.0.100:80")) == 2 }, "the failed server to leave the list")
	downMAC := macOf(netip.MustParseAddr("198.18.0.6")).String()
	for _, mac := range ta.send(syns("198.18.0.100:80", 12)...) {
		if mac == downMAC {
			t.Fatal("a new connection went to the server whose check failed")
		}
	}
	ta.health.notify(health.Transition{ID: down, Up: true, Weight: health.WeightUnchanged})
	testutil.Eventually(t, 10*time.Second, func() bool { return len(ta.weights("198.18.0.100:80")) == 3 }, "the server to come back")
	seen := false
	for _, p := range syns("198.18.0.100:80", 12) {
		p.client = netip.AddrPortFrom(netip.MustParseAddr("198.51.100.8"), p.client.Port())
		for _, mac := range ta.send(p) {
			seen = seen || mac == downMAC
		}
	}
	if !seen {
		t.Error("the recovered server gets no new connections")
	}
	// adm listings show the effective table, as ipvsadm shows keepalived's.
	if !strings.Contains(ta.ok("-Ln"), "198.18.0.6:80") {
		t.Error("the recovered server is not listed")
	}
}

const vrrpConf = `
[[vrrp]]
name = "VI_1"
interface = "gvs0"
state = "BACKUP"
virtual_router_id = 51
priority = 100
advert_int = "1s"
virtual_ipaddress = ["198.18.0.100"]
garp_master_delay = "0s"
`

// TestVRRPOwnershipReachesDataPath: a backup drops frames to the VIP as not_owned;
// once it becomes master (no advert from a peer within the master-down interval),
// it forwards them and announces the VIP.
func TestVRRPOwnershipReachesDataPath(t *testing.T) {
	ta := newTestAdmin(t, webConf, vrrpConf)
	vip := netip.MustParseAddr("198.18.0.100")
	if got := ta.send(syns("198.18.0.100:80", 2)...); len(got) != 0 {
		t.Fatalf("a backup forwarded %v", got)
	}
	if n := ta.w.C.Reasons[dataplane.ReasonNotOwned]; n != 2 {
		t.Fatalf("not_owned drops %d, want 2", n)
	}
	// The controller's ticker and the VRRP runner's master-down timer.
	ta.clock.BlockUntil(2)
	ta.clock.Advance(4 * time.Second)
	testutil.Eventually(t, 10*time.Second, func() bool {
		p := tcpPkt{client: ap("198.51.100.9:1234"), vip: ap("198.18.0.100:80"), syn: true}
		return len(ta.send(p)) == 1
	}, "the new master to forward")
	testutil.Eventually(t, 10*time.Second, func() bool { return ta.ann.count(vip) > 0 }, "the new master to announce its VIP")
	if ta.vrrp.sent.Load() == 0 {
		t.Error("the master sent no advert")
	}
}

// TestAdmNotBlockedByUnresolvableServer: a real server that never answers ARP is
// added at once, its frames counted as no_mac, and other adm commands go on.
func TestAdmNotBlockedByUnresolvableServer(t *testing.T) {
	ta := newTestAdmin(t)
	dead := netip.MustParseAddr("198.18.0.50")
	ta.res.setNever(dead)
	ta.ok("-A -t 198.18.0.100:80 -s rr")
	r := ta.d.Handle(context.Background(), controlReq("-a -t 198.18.0.100:80 -r 198.18.0.50"))
	if r.Status != 0 {
		t.Fatalf("-a of an unresolvable server: %+v", r)
	}
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5")
	if got := ta.ok("-Ln"); !strings.Contains(got, "198.18.0.50:80") || !strings.Contains(got, "198.18.0.5:80") {
		t.Fatalf("listing:\n%s", got)
	}
	ta.send(syns("198.18.0.100:80", 4)...)
	if n := ta.w.C.Reasons[dataplane.ReasonNoMAC]; n != 2 {
		t.Errorf("no_mac drops %d, want 2 (rr: half of 4 SYNs)", n)
	}
	if p := ta.d.pub.Load(); len(p.resolving) != 1 {
		t.Errorf("%d resolutions in flight, want the unresolvable one", len(p.resolving))
	}
}

// TestAdmRacesReload runs gvs adm changes concurrently with reloads (run with
// -race): every adm change the reloads do not touch survives them all.
func TestAdmRacesReload(t *testing.T) {
	ta := newTestAdmin(t, webConf)
	ta.ok("-A -t 198.18.0.200:80 -s rr")
	other := webConf + `
[[service]]
address = "198.18.0.100:443"
  [[service.real_server]]
  address = "198.18.0.5:443"
`
	var wg sync.WaitGroup
	const servers = 40
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range servers {
			if r := ta.d.Handle(context.Background(), controlReq(fmt.Sprintf("-a -t 198.18.0.200:80 -r 198.18.1.%d", i+1))); r.Status != 0 {
				t.Errorf("-a: %+v", r)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 20 {
			conf := webConf
			if i%2 == 0 {
				conf = other
			}
			if err := ta.reload(conf); err != nil {
				t.Errorf("reload: %v", err)
			}
		}
	}()
	wg.Wait()
	ta.settle()
	if n := len(ta.weights("198.18.0.200:80")); n != servers {
		t.Errorf("%d adm-added servers after the reloads, want %d:\n%s", n, servers, ta.ok("-Ln"))
	}
	if n := len(ta.weights("198.18.0.100:80")); n != 3 {
		t.Errorf("the file's service has %d servers, want 3", n)
	}
}

// TestSideEffectsFollowChanges: the links' filter, the ingress guard and the VIP
// announcements follow adm changes and reloads (ingress_drop switched off on
// reload removes the guard).
func TestSideEffectsFollowChanges(t *testing.T) {
	guarded := strings.Replace(directorConf, "[director]", "[director]\ningress_drop = true", 1)
	ta := newTestDirector(t, guarded+webConf, nil)
	vip2 := netip.MustParseAddr("198.18.0.101")
	testutil.Eventually(t, 10*time.Second, func() bool { return ta.ann.count(netip.MustParseAddr("198.18.0.100")) == 1 }, "the VIP announced at start")
	ta.ok("-A -t 198.18.0.101:80 -s rr")
	testutil.Eventually(t, 10*time.Second, func() bool {
		f := ta.link.lastFilter()
		return f != nil && len(f.VIPs) == 2 && f.VIPs[1] == vip2
	}, "the link filter to take the new VIP")
	testutil.Eventually(t, 10*time.Second, func() bool {
		g := ta.guard.log()
		return len(g) > 0 && g[len(g)-1] == "install 198.18.0.100,198.18.0.101"
	}, "the guard to take the new VIP")
	testutil.Eventually(t, 10*time.Second, func() bool { return ta.ann.count(vip2) == 1 }, "the new VIP announced")
	if err := ta.reload(webConf); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		g := ta.guard.log()
		return len(g) > 0 && g[len(g)-1] == "remove"
	}, "the guard removed when ingress_drop is switched off")
}

// BenchmarkAdmWhileResolving measures one gvs adm change while 100 real servers
// never answer ARP: their resolutions run in the background and must not delay
// it (target: well under 50 ms per command).
func BenchmarkAdmWhileResolving(b *testing.B) {
	ta := newBenchDirector(b)
	ta.ok("-A -t 198.18.0.200:80 -s rr")
	for i := range 100 {
		a := netip.AddrFrom4([4]byte{198, 18, 2, byte(i + 1)})
		ta.res.setNever(a)
		ta.ok(fmt.Sprintf("-a -t 198.18.0.200:80 -r %s", a))
	}
	if p := ta.d.pub.Load(); len(p.resolving) != 100 {
		b.Fatalf("%d resolutions in flight, want 100: %v", len(p.resolving), p.resolving)
	}
	ta.ok("-A -t 198.18.0.100:80 -s rr")
	// Not ok: its resolution waits for a free slot, which the benchmark need not.
	if r := ta.d.Handle(context.Background(), controlReq("-a -t 198.18.0.100:80 -r 198.18.0.5")); r.Status != 0 {
		b.Fatalf("-a: %+v", r)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		line := fmt.Sprintf("-e -t 198.18.0.100:80 -r 198.18.0.5 -w %d", i%10)
		if r := ta.d.Handle(context.Background(), controlReq(line)); r.Status != 0 {
			b.Fatalf("%s: %+v", line, r)
		}
	}
}

// TestReloadMetricsListen: metrics_listen takes effect on reload — the endpoint
// starts, moves and stops with the file.
func TestReloadMetricsListen(t *testing.T) {
	ta := newTestAdmin(t, webConf)
	addr := func() string {
		t.Helper()
		logs := ta.logs.String()
		i := strings.LastIndex(logs, "msg=metrics listen=")
		if i < 0 {
			t.Fatalf("no metrics endpoint in the log:\n%s", logs)
		}
		line, _, _ := strings.Cut(logs[i+len("msg=metrics listen="):], "\n")
		return line
	}
	withMetrics := strings.Replace(directorConf, "[director]", "[director]\nmetrics_listen = \"127.0.0.1:0\"", 1) + webConf
	if err := ta.reloadText(withMetrics); err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr() + "/metrics"
	if got := scrape(t, url)["gvs_conntrack_max"]; got != 4096 {
		t.Errorf("gvs_conntrack_max = %v after metrics_listen was set on reload", got)
	}
	http.DefaultClient.CloseIdleConnections()
	if err := ta.reload(webConf); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(url); err == nil {
		t.Error("metrics still served after metrics_listen was removed on reload")
	}
}

// TestMACRefresh: the controller's ticks refresh real servers' MACs like a
// neighbour cache — a server that did not answer is found (its frames were no_mac
// drops until then, logged once), and a changed MAC takes effect — without a
// reload.
func TestMACRefresh(t *testing.T) {
	dead, moved := netip.MustParseAddr("198.18.0.6"), netip.MustParseAddr("198.18.0.5")
	ta := newTestDirector(t, directorConf+`
[[service]]
address = "198.18.0.100:80"
scheduler = "rr"
  [[service.real_server]]
  address = "198.18.0.5:80"
  [[service.real_server]]
  address = "198.18.0.6:80"
`, func(d *Deps) {})
	// The harness resolved everything at start; make .6 unanswered from the next
	// refresh on, then take it back by deleting and re-adding it.
	ta.res.setFail(dead, true)
	ta.ok("-d -t 198.18.0.100:80 -r 198.18.0.6:80")
	refresh := func() {
		t.Helper()
		for range refreshTicks {
			ta.clock.Advance(tickPeriod)
		}
		ta.settle()
	}
	refresh() // forgets .6's MAC: no real server has it any more
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.6:80")
	ta.send(syns("198.18.0.100:80", 4)...)
	if n := ta.w.C.Reasons[dataplane.ReasonNoMAC]; n != 2 {
		t.Fatalf("no_mac drops %d, want 2 while .6 does not answer", n)
	}
	ta.res.setFail(dead, false)
	newMAC := net.HardwareAddr{2, 0, 0, 0, 0, 0x55}
	ta.res.setMAC(moved, newMAC)
	refresh()
	testutil.Eventually(t, 10*time.Second, func() bool {
		p := ta.d.pub.Load()
		return p.macs[dead] != (ipvs.MAC{}) && p.macs[moved] == ipvs.MACFrom(newMAC)
	}, "the refresh to find .6 and .5's new MAC")
	got := map[string]bool{}
	for _, p := range syns("198.18.0.100:80", 4) {
		p.client = netip.AddrPortFrom(netip.MustParseAddr("198.51.100.8"), p.client.Port())
		for _, mac := range ta.send(p) {
			got[mac] = true
		}
	}
	if !got[newMAC.String()] || !got[macOf(dead).String()] || len(got) != 2 {
		t.Errorf("after the refresh new connections went to %v, want %s and %s", got, newMAC, macOf(dead))
	}
	if n := strings.Count(ta.logs.String(), "no MAC address for real server"); n != 1 {
		t.Errorf("the unanswered server was logged %d times, want once", n)
	}
}

// scripts records the commands a director runs (quorum and notify scripts).
type scripts struct {
	mu  sync.Mutex
	ran []string
}

func (s *scripts) run(_ context.Context, c string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ran = append(s.ran, c)
	return nil, nil
}

func (s *scripts) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ran...)
}

// TestQuorumAndNotifyScripts: losing quorum runs quorum_down and hands the
// service to its sorry server; a VRRP instance becoming master runs notify_master.
func TestQuorumAndNotifyScripts(t *testing.T) {
	sc := &scripts{}
	ta := newTestDirector(t, directorConf+`
[[service]]
address = "198.18.0.100:80"
scheduler = "rr"
quorum = 2
quorum_down = "echo down"
sorry_server = "198.18.0.9:80"
  [service.check]
  type = "tcp"
  [[service.real_server]]
  address = "198.18.0.5:80"
  [[service.real_server]]
  address = "198.18.0.6:80"
`+strings.Replace(vrrpConf, `garp_master_delay = "0s"`, `garp_master_delay = "0s"
notify_master = "echo master"`, 1), func(d *Deps) { d.RunScript = sc.run })
	ta.health.notify(health.Transition{ID: ta.health.id(t, "198.18.0.5:80"), Up: false, Weight: health.WeightUnchanged})
	testutil.Eventually(t, 10*time.Second, func() bool { return slices.Contains(sc.list(), "echo down") }, "quorum_down to run")
	wantWeights(t, "without quorum", ta.weights("198.18.0.100:80"), map[string]int32{"198.18.0.9:80": 1})

	ta.clock.BlockUntil(2)
	ta.clock.Advance(4 * time.Second)
	testutil.Eventually(t, 10*time.Second, func() bool { return slices.Contains(sc.list(), "echo master") }, "notify_master to run")
	// The sorry server's MAC was resolved like a real server's.
	p := tcpPkt{client: ap("198.51.100.9:1234"), vip: ap("198.18.0.100:80"), syn: true}
	testutil.Eventually(t, 10*time.Second, func() bool {
		got := ta.send(p)
		return len(got) == 1 && got[0] == macOf(netip.MustParseAddr("198.18.0.9")).String()
	}, "the master to forward to the sorry server")
}

// TestAnnouncedFollowFilter: a VIP is announced when it enters the links'
// filter, by a delta or a whole commit, and only then: a second service on an
// announced VIP, or a whole commit that keeps it, does not announce it again; a
// VIP that left the filter and comes back is announced again.
func TestAnnouncedFollowFilter(t *testing.T) {
	ta := newTestDirector(t, webConf, nil)
	vip1, vip2, vip3 := netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("198.18.0.101"), netip.MustParseAddr("198.18.0.102")
	testutil.Eventually(t, 10*time.Second, func() bool { return ta.ann.count(vip1) == 1 }, "the VIP announced at start")
	ta.ok("-A -t 198.18.0.101:80 -s rr")
	testutil.Eventually(t, 10*time.Second, func() bool { return ta.ann.count(vip2) == 1 }, "the new VIP announced")
	ta.ok("-A -t 198.18.0.101:81 -s rr") // announced already
	ta.ok("-D -t 198.18.0.101:80")
	ta.ok("-D -t 198.18.0.101:81") // leaves the filter
	ta.ok("-A -t 198.18.0.101:80 -s rr")
	testutil.Eventually(t, 10*time.Second, func() bool { return ta.ann.count(vip2) == 2 }, "the VIP announced again once back")
	// More services than a delta takes: a whole commit, which announces the
	// new VIP alone.
	var b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&b, "-A -t 198.18.0.102:%d -s rr\n", 1000+i)
	}
	gen := ta.generations()
	if _, errOut, st := ta.admIn(b.String(), "-R --atomic"); st != 0 {
		t.Fatalf("restore: status %d, %s", st, errOut)
	}
	if ta.generations() != gen+1 {
		t.Fatalf("%d commits for the restore, want 1", ta.generations()-gen)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return ta.ann.count(vip3) == 1 }, "the restore's VIP announced")
	// The effects run in order: the earlier announcements are all counted.
	if n1, n2, n3 := ta.ann.count(vip1), ta.ann.count(vip2), ta.ann.count(vip3); n1 != 1 || n2 != 2 || n3 != 1 {
		t.Fatalf("announcements %s %d, %s %d, %s %d; want 1, 2, 1", vip1, n1, vip2, n2, vip3, n3)
	}
}
