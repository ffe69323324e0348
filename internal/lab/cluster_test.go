package lab

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvssync"
)

// needCluster skips the test where a cluster lab cannot run (not root, no bird
// unless vrrp), or fails it under GVS_LAB_REQUIRED=1.
func needCluster(t *testing.T, vrrp bool) {
	t.Helper()
	if err := ClusterPreflight(vrrp); err != nil {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatalf("GVS_LAB_REQUIRED=1 but the cluster lab cannot run: %v", err)
		}
		t.Skipf("skipping cluster lab test: %v (set GVS_LAB_REQUIRED=1 to make this a failure)", err)
	}
}

// needTool skips the test without tool, or fails it under GVS_LAB_REQUIRED=1.
func needTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatalf("GVS_LAB_REQUIRED=1 but %s is missing: %v", tool, err)
		}
		t.Skipf("no %s: %v", tool, err)
	}
}

// clusterLab builds a cluster lab for one test with the real gvs binary, its
// state in the test's directory and a prefix "h3" + random, and tears it down at
// the end, checking nothing is left.
func clusterLab(t *testing.T, spec Spec) *Lab {
	t.Helper()
	needCluster(t, false)
	b := make([]byte, 3)
	rand.Read(b)
	spec.Prefix = "h3" + hex.EncodeToString(b)
	// GVS_LAB_GVS names a prebuilt gvs to run instead of building cmd/gvs (a
	// binary under test from elsewhere).
	if spec.Exe = os.Getenv("GVS_LAB_GVS"); spec.Exe == "" {
		spec.Exe = gvsBinary(t)
	}
	if spec.Cluster == 0 {
		spec.Cluster = 3
	}
	return upLab(t, spec)
}

// birdProtocols returns `birdc show protocols` of host's BIRD.
func birdProtocols(t *testing.T, l *Lab, host string) string {
	t.Helper()
	out, err := exec.Command("birdc", "-s", l.BirdSocket(host), "show", "protocols").CombinedOutput()
	if err != nil {
		t.Logf("birdc %s: %v: %s", host, err, out)
	}
	return string(out)
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterLabUp: the topology of a cluster lab — the router's sysctls set in its
// namespace, the client and the real servers routed through it, a BGP session
// with BFD from the router to every director's BIRD (established whatever gvs
// announces), all files inside the lab's directory — and Down leaves nothing.
func TestClusterLabUp(t *testing.T) {
	l := clusterLab(t, Spec{})
	rt, _ := l.Host("router")
	for key, want := range map[string]string{
		"net.ipv4.fib_multipath_hash_policy": "1",
		"net.ipv4.ip_forward":                "1",
	} {
		out, err := exec.Command("ip", "netns", "exec", rt.NS, "sysctl", "-n", key).Output()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("router %s = %q (%v), want %s", key, out, err, want)
		}
	}
	if got := len(l.hostsWith(Director)); got != 3 {
		t.Fatalf("%d directors, want 3", got)
	}
	if got := len(l.hostsWith(RealServer)); got != 4 {
		t.Fatalf("%d real servers, want 4", got)
	}
	if l.Spec().Subnet.Contains(l.VIP()) || l.Spec().Outside.Contains(l.VIP()) {
		t.Fatalf("VIP %v is on a LAN; a cluster VIP is routed", l.VIP())
	}
	// The sessions converge on their own clocks: the router can see a session
	// Established before the director has read the router's KEEPALIVE, and the BFD
	// sessions (1 s apart while down) come up after BGP or before it. So all three
	// views are awaited together, and the last of each is shown if they never agree.
	var last string
	converged := func() bool {
		var b strings.Builder
		ok := true
		out := birdProtocols(t, l, "router")
		if strings.Count(out, "Established") != 3 {
			ok = false
			fmt.Fprintf(&b, "router: want 3 BGP sessions established:\n%s\n", out)
		}
		for _, d := range []string{"dir1", "dir2", "dir3"} {
			out := birdProtocols(t, l, d)
			if !strings.Contains(out, "gvs_router4") || !strings.Contains(out, "Established") {
				ok = false
				fmt.Fprintf(&b, "%s's BIRD (from gvs cluster bird-config): no established gvs_router4:\n%s\n", d, out)
			}
		}
		bfd, _ := exec.Command("birdc", "-s", l.BirdSocket("router"), "show", "bfd", "sessions").CombinedOutput()
		if strings.Count(string(bfd), " Up ") != 3 {
			ok = false
			fmt.Fprintf(&b, "router: want 3 BFD sessions up:\n%s\n", bfd)
		}
		last = b.String()
		return ok
	}
	deadline := time.Now().Add(30 * time.Second)
	for !converged() {
		if time.Now().After(deadline) {
			t.Fatalf("BGP and BFD to dir1..dir3 not up within 30 s:\n%s", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range l.Procs() {
		for _, a := range p.Argv {
			if strings.HasPrefix(a, "/") && strings.Contains(a, ".ctl") && !strings.HasPrefix(a, l.RunDir()) {
				t.Errorf("%s %s: %s is outside the lab's directory %s", p.Host, p.Name, a, l.RunDir())
			}
		}
	}
	// The real servers reach the client through the router (DR replies).
	client, _ := l.Host("client")
	if out, err := exec.Command("ip", "netns", "exec", l.Prefix()+"-rs1", "ping", "-c", "1", "-W", "2", client.Addr().String()).CombinedOutput(); err != nil {
		t.Errorf("rs1 → client through the router: %v\n%s", err, out)
	}
}

// announced waits for the router to route the VIP over exactly the named
// directors and returns how long that took.
func announced(t *testing.T, l *Lab, w *RouteWatch, since time.Time, timeout time.Duration, dirs ...string) time.Duration {
	t.Helper()
	at, err := w.Until(context.Background(), since, timeout, l.Exactly(dirs...))
	if err != nil {
		t.Fatal(err)
	}
	return at.Sub(since)
}

// TestClusterWithdraw is acceptance test C4 (fate-sharing) in the lab: the router
// routes the VIP over all three directors once their gates open; a SIGKILLed gvs,
// a silent director (its link dropping everything, found by BFD) and a draining
// one leave the router's route fast, and each comes back (restart, heal, join).
// The bounds asserted are behaviour, not speed: well below BGP's hold time of 9
// s, which is what the router would wait without the device (kill, drain) or
// BFD (silent); the measured times are logged against the targets.
func TestClusterWithdraw(t *testing.T) {
	l := clusterLab(t, Spec{})
	w, err := l.WatchRoutes()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	up := announced(t, l, w, time.Now(), ClusterUpTimeout, "dir1", "dir2", "dir3")
	t.Logf("all three directors announced %.1f s after the lab was up", up.Seconds())

	withdrawn := func(event, dir string, bound, target time.Duration) time.Duration {
		t.Helper()
		t0 := time.Now()
		if err := l.Event(ctx, event, dir); err != nil {
			t.Fatal(err)
		}
		at, err := w.Until(ctx, t0, bound, l.Without(dir))
		if err != nil {
			t.Fatalf("after %s %s: %v", event, dir, err)
		}
		d := at.Sub(t0)
		t.Logf("%s %s: withdrawn from the router's FIB after %.0f ms (target %.0f ms); next hops %s", event, dir, d.Seconds()*1000, target.Seconds()*1000, fmtHops(w.Hops()))
		return d
	}
	back := func(event, dir string, rest ...string) {
		t.Helper()
		t0 := time.Now()
		if err := l.Event(ctx, event, dir); err != nil {
			t.Fatal(err)
		}
		d := announced(t, l, w, t0, ClusterUpTimeout, rest...)
		t.Logf("%s %s: announced again after %.1f s", event, dir, d.Seconds())
	}
	all := []string{"dir1", "dir2", "dir3"}

	withdrawn(EventKill, "dir2", 2*time.Second, 200*time.Millisecond)
	back(EventRestart, "dir2", all...)
	withdrawn(EventSilent, "dir3", 3*time.Second, 600*time.Millisecond)
	back(EventHeal, "dir3", all...)
	withdrawn(EventDrain, "dir1", 2*time.Second, 200*time.Millisecond)
	back(EventJoin, "dir1", all...)

	// The router's BIRD restarted: the route goes and comes back with every director.
	t0 := time.Now()
	if err := l.Event(ctx, EventRouterReset, ""); err != nil {
		t.Fatal(err)
	}
	gone, err := w.Until(ctx, t0, 10*time.Second, func(h []netip.Addr) bool { return len(h) == 0 })
	if err != nil {
		t.Fatalf("router-reset: the route never went: %v", err)
	}
	d := announced(t, l, w, gone, ClusterUpTimeout, all...)
	t.Logf("router-reset: route gone %.0f ms after the reset, every director routed again %.1f s later", gone.Sub(t0).Seconds()*1000, d.Seconds())
}

// A c5Row is one event of the C5 sequence and what the flows saw in its window.
type c5Row struct {
	event, target string
	counts        FlowCounts
	converged     time.Duration // withdraw or re-announce seen in the router's FIB (0: none expected)
	syncBytes     int64         // sync payload the directors sent in the event's window
}

var sentRE = regexp.MustCompile(`(?m)^sent: \d+ messages, \d+ records, (\d+) bytes`)

// syncSent returns each running director's sync bytes sent so far (gvs adm
// --cluster); a director that does not answer is left out.
func syncSent(l *Lab) map[string]int64 {
	m := map[string]int64{}
	for _, d := range l.hostsWith(Director) {
		out, err := l.admCmd(d.Name, "--cluster").Output()
		if sm := sentRE.FindSubmatch(out); err == nil && sm != nil {
			m[d.Name], _ = strconv.ParseInt(string(sm[1]), 10, 64)
		}
	}
	return m
}

// sentSince sums what each director sent between two syncSent snapshots; a
// director whose count went down restarted, and everything it counts is new.
func sentSince(before, after map[string]int64) int64 {
	var n int64
	for d, a := range after {
		if b := before[d]; a >= b {
			n += a - b
		} else {
			n += a
		}
	}
	return n
}

// c5Events is acceptance test C5's sequence (issue 14): rs-add, kill d2, restart d2 (bulk),
// silent d3, heal d3, drain + rejoin d1, rs-del, router-reset.
var c5Events = []struct{ kind, target string }{
	{EventRSAdd, ""}, {EventKill, "dir2"}, {EventRestart, "dir2"}, {EventSilent, "dir3"}, {EventHeal, "dir3"},
	{EventDrain, "dir1"}, {EventJoin, "dir1"}, {EventRSDel, ""}, {EventRouterReset, ""},
}

// runC5 runs the C5 sequence under flows in l, gap apart, and returns a row per
// event.
func runC5(t *testing.T, l *Lab, o FlowsOptions, gap time.Duration) ([]c5Row, FlowsReport) {
	t.Helper()
	ctx := context.Background()
	w, err := l.WatchRoutes()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	all := []string{"dir1", "dir2", "dir3"}
	announced(t, l, w, time.Now(), ClusterUpTimeout, all...)
	// Seconds with a failure or a stall (under half the requests answered) are
	// logged as they end, with the time, to line up with the directors' logs.
	want := int64(o.Conns) * int64(time.Second) / int64(max(o.Interval, time.Second))
	o.Report = func(s FlowsSecond) {
		if s.Broken > 0 || s.ShortFailed > 0 || s.Requests < want/2 {
			t.Logf("%s second %d: %v", time.Now().Format("15:04:05.000"), s.Second, s.FlowCounts)
		}
	}
	f, err := l.StartFlows(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			f.Stop()
		}
	}()
	sent0 := syncSent(l)
	time.Sleep(gap) // a quiet window first: the load alone must break nothing
	quiet := f.Counts()
	sent := syncSent(l)
	rows := []c5Row{{event: "(load alone)", counts: quiet, syncBytes: sentSince(sent0, sent)}}
	for _, ev := range c5Events {
		before := f.Counts()
		t0 := time.Now()
		if err := l.Event(ctx, ev.kind, ev.target); err != nil {
			t.Fatal(err)
		}
		var conv time.Duration
		var at time.Time
		switch ev.kind {
		case EventKill, EventSilent, EventDrain:
			at, err = w.Until(ctx, t0, gap, l.Without(ev.target))
		case EventRestart, EventHeal, EventJoin:
			at, err = w.Until(ctx, t0, gap, l.Exactly(all...))
		case EventRouterReset:
			var gone time.Time
			// The sessions re-establish after BIRD's connect delay and the
			// directors' BFD notices the new router: bounded by the lab's
			// announcement timeout, not the gap.
			if gone, err = w.Until(ctx, t0, gap, func(h []netip.Addr) bool { return len(h) == 0 }); err == nil {
				at, err = w.Until(ctx, gone, ClusterUpTimeout, l.Exactly(all...))
			}
		}
		if err != nil {
			t.Fatalf("%s %s: %v", ev.kind, ev.target, err)
		}
		if !at.IsZero() {
			conv = at.Sub(t0)
		}
		t.Logf("%s event %s %s", t0.Format("15:04:05.000"), ev.kind, ev.target)
		time.Sleep(time.Until(t0.Add(gap)))
		now := syncSent(l)
		rows = append(rows, c5Row{event: ev.kind, target: ev.target, counts: f.Counts().Sub(before), converged: conv, syncBytes: sentSince(sent, now)})
		sent = now
	}
	stopped = true
	return rows, f.Stop()
}

func logC5(t *testing.T, title string, rows []c5Row, r FlowsReport) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d long-lived connections, %d new/s\n", title, r.Conns, r.Rate)
	fmt.Fprintf(&b, "  %-14s %-5s %7s %6s %8s %7s %6s %9s %9s %7s %10s %10s\n", "event", "dir", "broken", "reset", "timeout", "closed", "moved", "short ok", "short bad", "slow", "converged", "sync B")
	for _, row := range rows {
		c := row.counts
		conv := "-"
		if row.converged > 0 {
			conv = fmt.Sprintf("%.0f ms", row.converged.Seconds()*1000)
		}
		fmt.Fprintf(&b, "  %-14s %-5s %7d %6d %8d %7d %6d %9d %9d %7d %10s %10d\n", row.event, row.target, c.Broken, c.Reset, c.Timeout, c.Closed, c.Moved, c.ShortOK, c.ShortFailed, c.ShortSlow, conv, row.syncBytes)
	}
	fmt.Fprintf(&b, "  total: %v\n  answers by real server: %v", r.Total, r.Servers)
	t.Log(b.String())
}

// C5 figures: issue 14 asks for 1,200 long-lived connections and 200 new a
// second, events 15 s apart.
const (
	c5Conns = 1200
	c5Rate  = 200
	c5Gap   = 15 * time.Second
)

// TestClusterC5 is acceptance test C5: three directors, four real servers, the
// hash-threshold router, long-lived and new connections through the VIP, and the
// events rs-add, kill, restart, silent, heal, drain + rejoin, rs-del and
// router-reset: no long-lived connection may break in any event's window, and
// no short connection may fail except around the router reset (its route is
// gone for a moment).
func TestClusterC5(t *testing.T) {
	if testing.Short() {
		t.Skip("C5 runs for over two minutes")
	}
	l := clusterLab(t, Spec{})
	rows, r := runC5(t, l, FlowsOptions{Conns: c5Conns, Rate: c5Rate, Timeout: 10 * time.Second}, c5Gap)
	logC5(t, "C5 (sync on)", rows, r)
	for _, row := range rows {
		if row.counts.Broken > 0 {
			t.Errorf("%s %s: %d long-lived connections broke (%d reset, %d timed out, %d closed)", row.event, row.target, row.counts.Broken, row.counts.Reset, row.counts.Timeout, row.counts.Closed)
		}
		if row.counts.ShortFailed > 0 && row.event != EventRouterReset {
			t.Errorf("%s %s: %d short connections failed", row.event, row.target, row.counts.ShortFailed)
		}
	}
	if r.Total.Requests == 0 || r.Total.ShortOK == 0 {
		t.Fatalf("no traffic went through: %v", r.Total)
	}
	checkSpread(t, l, r)
}

// checkSpread fails unless every real server answered: the listed ones from the
// start, the spare after rs-add (mh-port spreads the one client's connections).
func checkSpread(t *testing.T, l *Lab, r FlowsReport) {
	t.Helper()
	for _, h := range l.hostsWith(RealServer) {
		if r.Servers[h.Name] == 0 {
			t.Errorf("%s never answered (answers: %v): the load did not spread, or rs-add did not take", h.Name, r.Servers)
		}
	}
}

// TestClusterC5NoSync is C5b's first baseline: the same sequence with every
// director hearing no peer (mh alone). Reported, not gated — except that the
// double fault must show: connections on a director that dies after rs-add
// changed the mh table land on other servers without sync.
func TestClusterC5NoSync(t *testing.T) {
	if testing.Short() {
		t.Skip("C5 runs for over two minutes")
	}
	l := clusterLab(t, Spec{ClusterNoSync: true})
	rows, r := runC5(t, l, FlowsOptions{Conns: c5Conns, Rate: c5Rate, Timeout: 10 * time.Second}, c5Gap)
	logC5(t, "C5b (sync off: mh alone)", rows, r)
	if r.Total.Requests == 0 {
		t.Fatalf("no traffic went through: %v", r.Total)
	}
	checkSpread(t, l, r)
}

// TestClusterC5NoSyncRR is C5b's second baseline: rr and no sync, where every
// director schedules on its own. Reported, not gated.
func TestClusterC5NoSyncRR(t *testing.T) {
	if testing.Short() {
		t.Skip("C5 runs for over two minutes")
	}
	l := clusterLab(t, Spec{ClusterNoSync: true, ClusterScheduler: "rr"})
	rows, r := runC5(t, l, FlowsOptions{Conns: c5Conns, Rate: c5Rate, Timeout: 10 * time.Second}, c5Gap)
	logC5(t, "C5b (sync off, rr)", rows, r)
	if r.Total.Requests == 0 {
		t.Fatalf("no traffic went through: %v", r.Total)
	}
	checkSpread(t, l, r)
}

// capture runs tcpdump on the switch's bridge for filter until stop is called,
// which returns the pcap's path once tcpdump has written and exited.
func capture(t *testing.T, l *Lab, filter string) (stop func() string) {
	t.Helper()
	needTool(t, "tcpdump")
	sw := l.hosts[0]
	path := filepath.Join(t.TempDir(), "sync.pcap")
	cmd := exec.Command("ip", "netns", "exec", sw.NS, "tcpdump", "-i", bridgeInside, "-U", "-n", "-w", path, filter)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "listening on") {
				once = true
				close(listening)
			}
		}
		done <- cmd.Wait()
	}()
	var stopped bool
	stop = func() string {
		if !stopped {
			stopped = true
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		return path
	}
	t.Cleanup(func() { stop() })
	select {
	case <-listening:
	case err := <-done:
		t.Fatalf("tcpdump on %s: %v", sw.NS, err)
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump: not listening after 10 s")
	}
	return stop
}

// tsharkFields returns tshark's -T fields output for the pcap, one slice per line.
func tsharkFields(t *testing.T, pcap, filter string, fields ...string) [][]string {
	t.Helper()
	args := []string{"-r", pcap, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

// TestClusterSyncTraffic is acceptance tests C2 and C7 in the lab: the sync
// traffic of three directors under new connections, captured on the switch's
// bridge, is IPVS sync that tshark decodes without a malformed frame, each
// record names a connection its sender holds (same client, real server), and
// it costs at most 150 bytes (IP and UDP headers included) per new connection.
func TestClusterSyncTraffic(t *testing.T) {
	needTool(t, "tshark")
	m := measureSync(t, Spec{}, c7Duration)
	t.Logf("C7: %d sync frames, %d records, %d bytes for %d new connections at %d/s: %.0f bytes per connection (bar 150), %.1f records per connection",
		m.frames, m.records, m.bytes, m.conns, c7Rate, m.perConn(), float64(m.records)/float64(m.conns))
	if m.perConn() > 150 {
		t.Errorf("%.0f sync bytes per new connection, want at most 150", m.perConn())
	}
}

// TestClusterSyncFlushKernelDefault is C7's comparison with IPVS's default: the same
// load with sync_flush = 2s, the kernel's sync period, against gvs's 100 ms. A longer
// flush fills messages fuller, so each record carries less of a message's headers,
// but a director that dies loses up to 2 s of its connections' updates instead of
// 100 ms (docs/cluster.md §4.3). The figures are reported; what is asserted is the
// trade's direction: fewer sync bytes per record with the longer flush.
func TestClusterSyncFlushKernelDefault(t *testing.T) {
	needTool(t, "tshark")
	if testing.Short() {
		t.Skip("two cluster labs under load for 20 s each")
	}
	const window = 20 * time.Second
	ours := measureSync(t, Spec{}, window)
	kernel := measureSync(t, Spec{ClusterSyncFlush: 2 * time.Second}, window)
	for _, r := range []struct {
		name string
		m    syncFigures
	}{{"sync_flush 100ms (gvs)", ours}, {"sync_flush 2s (kernel)", kernel}} {
		t.Logf("C7 %s: %d frames, %.1f records a frame, %.1f bytes a record, %.0f bytes per new connection (%d connections at %d/s)",
			r.name, r.m.frames, float64(r.m.records)/float64(r.m.frames), r.m.perRecord(), r.m.perConn(), r.m.conns, c7Rate)
	}
	if kernel.perRecord() >= ours.perRecord() {
		t.Errorf("sync_flush 2s: %.1f bytes a record, 100ms: %.1f; a longer flush should fill messages fuller",
			kernel.perRecord(), ours.perRecord())
	}
}

// linesWith returns the lines of each director's listing that name the client
// address and port want, prefixed with the director's address.
func linesWith(tables map[string]string, want string) string {
	var b strings.Builder
	for dir, table := range tables {
		for _, line := range strings.Split(table, "\n") {
			if f := strings.Fields(line); len(f) >= 4 && f[3] == want {
				fmt.Fprintf(&b, "  %s: %s\n", dir, line)
			}
		}
	}
	if b.Len() == 0 {
		return "  (none)"
	}
	return b.String()
}

// syncFigures is what measureSync counted: sync frames, the records in them, their
// bytes (IP and UDP headers included, as the design counts them), and the new
// connections made meanwhile.
type syncFigures struct {
	frames, records, bytes, conns int
}

func (m syncFigures) perConn() float64   { return float64(m.bytes) / float64(m.conns) }
func (m syncFigures) perRecord() float64 { return float64(m.bytes) / float64(m.records) }

// measureSync is acceptance test C2 under C7's load: a cluster lab of spec, new
// connections at c7Rate for d, the sync traffic captured on the switch's bridge.
// Every frame must be IPVS sync that tshark decodes without a malformed frame, sent
// to the group with TTL 1, and each record sent recently enough before its sender's
// table is read (recentRecord) must name a connection its sender holds (same client,
// real server). An older record's connection may have expired meanwhile: a
// connection reset in CLOSE lives 10 s, and under load some connects time out and are
// reset.
func measureSync(t *testing.T, spec Spec, d time.Duration) syncFigures {
	t.Helper()
	l := clusterLab(t, spec)
	if err := l.WaitAnnounced(context.Background(), ClusterUpTimeout); err != nil {
		t.Fatal(err)
	}
	stop := capture(t, l, "udp port 8848")
	f, err := l.StartFlows(context.Background(), FlowsOptions{Rate: c7Rate})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(d) // the measurement window
	r := f.Stop()
	// Let the last partly filled messages leave (sync_flush), then snapshot every
	// director's connections before any expires.
	flush := spec.ClusterSyncFlush
	if flush == 0 {
		flush = 100 * time.Millisecond
	}
	time.Sleep(flush + 400*time.Millisecond)
	// Each table is read when its gvs adm has returned: the three are read one after
	// the other, seconds apart on a loaded machine, so a record is judged against
	// its sender's own reading (with one time for all, TestClusterSyncTraffic failed
	// at load 15-20: dir3, read last, had expired three connections that dir1 and
	// dir2, read before it, still listed with 2 s to live).
	tables, readAt := map[string]string{}, map[string]time.Time{}
	for _, d := range l.hostsWith(Director) {
		out, err := l.admCmd(d.Name, "-Lnc").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: gvs adm -Lnc: %v\n%s", d.Name, err, out)
		}
		tables[d.Addr().String()], readAt[d.Addr().String()] = string(out), time.Now()
	}
	window := recentRecord(flush)
	pcap := stop()

	if bad := tsharkFields(t, pcap, "ipvs && _ws.malformed", "frame.number"); len(bad) > 0 {
		t.Errorf("%d malformed sync frames (first: %v)", len(bad), bad[0])
	}
	frames := tsharkFields(t, pcap, "ipvs", "frame.len", "ip.src", "ip.ttl", "ip.dst", "ipvs.caddr", "ipvs.cport", "ipvs.daddr", "frame.time_epoch")
	if len(frames) == 0 {
		t.Fatalf("no sync traffic captured while %d connections were made", r.Total.ShortOK)
	}
	m := syncFigures{frames: len(frames), conns: int(r.Total.ShortOK + r.Total.ShortFailed)}
	unmatched, checked := 0, 0
	for _, fr := range frames {
		n, _ := strconv.Atoi(fr[0])
		m.bytes += n - 14 // the Ethernet header: IP and UDP count, as the design counts them
		src := fr[1]
		if fr[2] != "1" || fr[3] != "224.0.0.81" {
			t.Errorf("sync frame from %s to %s with TTL %s: want 224.0.0.81, TTL 1", src, fr[3], fr[2])
		}
		caddrs, cports, daddrs := strings.Split(fr[4], ","), strings.Split(fr[5], ","), strings.Split(fr[6], ",")
		sec, err := strconv.ParseFloat(fr[7], 64)
		if err != nil {
			t.Fatalf("frame time %q: %v", fr[7], err)
		}
		table, ok := tables[src]
		if !ok {
			t.Fatalf("sync frame from %s, which is no director", src)
		}
		recent := readAt[src].Sub(time.Unix(0, int64(sec*1e9))) <= window
		for i := range caddrs {
			m.records++
			if !recent {
				continue
			}
			checked++
			want := caddrs[i] + ":" + cports[i]
			found := false
			for _, line := range strings.Split(table, "\n") {
				if f := strings.Fields(line); len(f) >= 6 && f[3] == want && strings.HasPrefix(f[5], daddrs[i]+":") {
					found = true
					break
				}
			}
			if !found {
				unmatched++
				if unmatched <= 3 {
					t.Errorf("record %s → %s from %s: no such connection in its gvs adm -Lnc; the directors list for %s:\n%s",
						want, daddrs[i], src, want, linesWith(tables, want))
				}
			}
		}
	}
	if unmatched > 0 {
		t.Errorf("%d of %d recent records matched no connection of their sender", unmatched, checked)
	}
	// 200 connections a second send about 400 records a second, 3,000 in the
	// window; a loaded machine makes fewer connections (one run under a full test
	// suite made 1,485 records there). The check needs only enough of them not to
	// be vacuous: two seconds' worth of connections.
	if least := 2 * c7Rate; checked < least {
		t.Errorf("%d records sent in the last %v before the tables were read, want at least %d", checked, window, least)
	}
	return m
}

// recentRecord is how old a record measureSync checks against its sender's table
// may be, with sync_flush flush: its connection, in CLOSE at the worst, lives 10 s
// from its last packet on its sender, and the record left up to flush after that
// packet, later on a loaded machine (3 s allowed): 6.9 s at gvs's 100 ms, 5 s at
// the kernel's 2 s. With 8 s for both, TestClusterSyncFlushKernelDefault failed once
// at load 15-20: a sender had expired two connections its peers, having received
// their records, still listed with 3 and 4 s to live.
func recentRecord(flush time.Duration) time.Duration {
	const closeTimeout, lag = 10 * time.Second, 3 * time.Second
	return closeTimeout - flush - lag
}

// C7's load: issue 14 measures at 200 new connections a second; C2 captures 60 s
// of sync traffic.
const (
	c7Rate     = 200
	c7Duration = 60 * time.Second
)

// TestClusterConfigMismatch is acceptance test C10: dir3 restarted with another
// weight on a real server and require_same_config is seen as a different
// config digest by its peers within a second or two (gvs adm --cluster), and
// never announces while it differs.
func TestClusterConfigMismatch(t *testing.T) {
	l := clusterLab(t, Spec{})
	ctx := context.Background()
	w, err := l.WatchRoutes()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	announced(t, l, w, time.Now(), ClusterUpTimeout, "dir1", "dir2", "dir3")
	h, _ := l.Host("dir3")
	conf := l.clusterConfig(h)
	changed := strings.Replace(conf, "enabled = true\n", "enabled = true\nrequire_same_config = true\n", 1)
	changed = strings.Replace(changed, "  mac = ", "  weight = 2\n  mac = ", 1)
	if changed == conf || strings.Count(changed, "weight = 2") != 1 {
		t.Fatalf("could not change dir3's config:\n%s", conf)
	}
	if err := os.WriteFile(l.ConfigPath("dir3"), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := l.Event(ctx, EventRestart, "dir3"); err != nil {
		t.Fatal(err)
	}
	gone, err := w.Until(ctx, t0, 5*time.Second, l.Without("dir3"))
	if err != nil {
		t.Fatalf("dir3's routes stayed after its restart: %v", err)
	}
	adm := func(d string) string {
		out, _ := l.admCmd(d, "--cluster").CombinedOutput()
		return string(out)
	}
	var seen time.Duration
	waitFor(t, 10*time.Second, "dir1 sees dir3's config digest differ", func() bool {
		seen = time.Since(t0)
		return strings.Contains(adm("dir1"), "DIFFERS from dir3")
	})
	t.Logf("C10: dir1 reports dir3's digest differing %.1f s after dir3's restart began", seen.Seconds())
	// A normal restart announces in about 1.3 s here; dir3 must not in 10.
	if at, err := w.Until(ctx, gone, 10*time.Second, l.With("dir3")); err == nil {
		t.Fatalf("dir3 announced %.1f s after its restart with a config that differs and require_same_config:\n%s", at.Sub(t0).Seconds(), adm("dir3"))
	}
	if out := adm("dir3"); !strings.Contains(out, "DIFFERS") {
		t.Errorf("dir3's gvs adm --cluster does not show the mismatch:\n%s", out)
	}
}

// TestFlowsCountsBreaks: the flows load notices what it is for. In a plain DR lab
// (rr over rs1 and rs2) it holds connections on both servers; once rs2's server
// is killed, the connections it held are counted broken (reset or closed: the
// kernel ends their sockets) and reopened on rs1, and the short connections rr
// gives rs2 fail — while nothing broke before.
func TestFlowsCountsBreaks(t *testing.T) {
	spec := e2eSpec(t, DR)
	spec.Prefix = "h3" + spec.Prefix[2:]
	l := upLab(t, spec)
	startDirector(t, l)
	const conns = 20
	f, err := l.StartFlows(context.Background(), FlowsOptions{Conns: conns, Rate: 20, Interval: 200 * time.Millisecond, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	waitFor(t, 10*time.Second, "requests answered on every long-lived connection", func() bool { return f.Counts().Requests >= 2*conns })
	if c := f.Counts(); c.Broken != 0 || c.ShortFailed != 0 || c.Moved != 0 {
		t.Fatalf("before any fault: %v", c)
	}
	if s := f.Servers(); s["rs1"] == 0 || s["rs2"] == 0 {
		t.Fatalf("rr should answer from both servers: %v", s)
	}
	p, c, ok := l.proc("rs2", "serve")
	if !ok {
		t.Fatal("rs2 runs no server")
	}
	if err := l.signalWait(p, c, syscall.SIGKILL, killTimeout); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "broken connections and failed short ones counted", func() bool {
		c := f.Counts()
		return c.Broken > 0 && c.ShortFailed > 0
	})
	r := f.Stop()
	if r.Total.Broken > conns || r.Total.Broken != r.Total.Reset+r.Total.Timeout+r.Total.Closed {
		t.Errorf("broken %d of %d connections: %v", r.Total.Broken, conns, r.Total)
	}
	t.Logf("after rs2's server died: %v; answers %v", r.Total, r.Servers)
}

// TestClusterQuietFlows is acceptance test C8: with tcp_timeout 30 s, long-lived
// connections that send a request only every 25 s for three minutes survive
// the SIGKILL of the director they went through. The spare joins right after
// they opened (rs-add), so the mh table their director chose them with is no
// longer the one a peer would fall back to: a peer must still hold their synced
// entries, which, quiet as they are, only the refresh sweeper keeps from expiring.
func TestClusterQuietFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("C8 runs for over three minutes")
	}
	l := clusterLab(t, Spec{})
	ctx := context.Background()
	if err := l.WaitAnnounced(ctx, ClusterUpTimeout); err != nil {
		t.Fatal(err)
	}
	for _, d := range l.hostsWith(Director) {
		if out, err := l.admCmd(d.Name, "--set", "30", "120", "300").CombinedOutput(); err != nil {
			t.Fatalf("%s: gvs adm --set: %v\n%s", d.Name, err, out)
		}
	}
	f, err := l.StartFlows(ctx, FlowsOptions{Conns: c8Conns, Interval: 25 * time.Second, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	if err := l.Event(ctx, EventRSAdd, ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(c8Quiet) // the quiet period under test
	before := f.Counts()
	if before.Broken != 0 {
		t.Errorf("%d quiet connections broke before any director event: %v", before.Broken, before)
	}
	if err := l.Event(ctx, EventKill, "dir2"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Second) // the window after the kill: every connection is due to ask once in it
	// An answer can come late on a loaded machine (a retransmission after the
	// kill): wait for them, bounded, rather than count them at one look.
	var d FlowCounts
	deadline := time.Now().Add(30 * time.Second)
	for d = f.Counts().Sub(before); d.Requests < c8Conns; d = f.Counts().Sub(before) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests answered within 60 s of the kill, want one per connection at least: %v", d.Requests, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("C8: %d connections quiet for 25 s at a time over %v, then dir2 killed: %v", c8Conns, c8Quiet, d)
	if d.Broken != 0 {
		t.Errorf("%d quiet connections broke when dir2 was killed", d.Broken)
	}
}

const (
	c8Conns = 150
	c8Quiet = 3 * time.Minute
)

// TestClusterBulk is acceptance test C6: 100,000 connections enter every
// director by sync (a sender in rs1's namespace, speaking IPVS sync v1 to the
// group without heartbeats, as a kernel master would), then dir3 restarts with
// an empty table. It must learn them all by bulk sync before it announces the
// VIP again; the bulk's duration is logged.
func TestClusterBulk(t *testing.T) {
	if testing.Short() {
		t.Skip("C6 moves 100,000 entries")
	}
	l := clusterLab(t, Spec{})
	ctx := context.Background()
	w, err := l.WatchRoutes()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	announced(t, l, w, time.Now(), ClusterUpTimeout, "dir1", "dir2", "dir3")
	injectUntilHeld(t, l, "rs1", c6Entries, 30*time.Second)
	t0 := time.Now()
	if err := l.Event(ctx, EventRestart, "dir3"); err != nil {
		t.Fatal(err)
	}
	gone, err := w.Until(ctx, t0, 5*time.Second, l.Without("dir3"))
	if err != nil {
		t.Fatal(err)
	}
	back, err := w.Until(ctx, gone, ClusterUpTimeout, l.With("dir3"))
	if err != nil {
		t.Fatal(err)
	}
	if n := countLines(l, "dir3", "198.19."); n < c6Entries {
		t.Errorf("dir3 holds %d of the %d entries after its bulk sync", n, c6Entries)
	}
	// The log: bulk sync complete (with its duration), then the gate opens.
	logb, _ := os.ReadFile(filepath.Join(l.RunDir(), "dir3-director.log"))
	lines := strings.Split(string(logb), "\n")
	var complete, open int = -1, -1
	var took string
	for i, line := range lines {
		if strings.Contains(line, "bulk sync complete") {
			complete, took = i, line
		}
		if complete >= 0 && open < 0 && i > complete && strings.Contains(line, "gate open") {
			open = i
		}
	}
	if complete < 0 || open < 0 {
		t.Fatalf("dir3's log shows no bulk sync complete followed by the gate opening:\n%s", logTail(filepath.Join(l.RunDir(), "dir3-director.log")))
	}
	t.Logf("C6: dir3 restarted with %d entries on its peers: routed again %.1f s after it was withdrawn; %s", c6Entries, back.Sub(gone).Seconds(), took[strings.Index(took, "msg="):])
}

const c6Entries = 100_000

// injectSync sends n established DR connections (clients 198.19.0.0/16, the VIP's
// TCP port, rs1–rs3) as IPVS sync v1 from host's namespace to the sync group,
// paced so the receivers' socket buffers keep up.
func injectSync(t *testing.T, l *Lab, host string, n int) {
	t.Helper()
	h, _ := l.Host(host)
	var c *net.UDPConn
	if err := l.Do(host, func() (err error) {
		c, err = net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(h.Addr(), 0)), &net.UDPAddr{IP: net.IPv4(224, 0, 0, 81), Port: 8848})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rs := l.ClusterServers()
	var b ipvssync.Builder
	b.Reset(ipvssync.V1, 0, 1472)
	sent := 0
	flush := func() {
		if _, err := c.Write(b.Bytes()); err != nil {
			t.Fatalf("inject: %v", err)
		}
		sent++
		if sent%5 == 0 {
			// Pacing, not synchronisation: 1,000 datagrams a second. A receiver's socket
			// holds about 90 (the system's default buffer), and at 5,000 a second a
			// director kept from its socket for 20 ms on a busy machine dropped some.
			time.Sleep(5 * time.Millisecond)
		}
		b.Reset(ipvssync.V1, 0, 1472)
	}
	for i := range n {
		r := ipvssync.Record{
			Protocol: 6, Flags: ipvssync.FwdRoute | 0x0080, State: 1, CPort: uint16(1024 + i%60000), VPort: l.spec.HTTPPort,
			DPort: l.spec.HTTPPort, Timeout: 900, CAddr: netip.AddrFrom4([4]byte{198, 19, byte(i / 60000), byte(i / 256 % 256)}),
			VAddr: l.spec.VIP, DAddr: rs[i%len(rs)].Addr(),
		}
		if !b.Fits(false) {
			flush()
		}
		if err := b.Add(&r); err != nil {
			t.Fatalf("inject: %v", err)
		}
	}
	if b.Count() > 0 {
		flush()
	}
	t.Logf("injected %d entries in %d datagrams from %s", n, sent, host)
}

// injectUntilHeld injects n entries from host (injectSync) and waits, up to wait,
// until every director holds them. The injector speaks sync as a kernel master
// does, over UDP without retransmission, and only the lowest live director re-sends
// entries of a source that is no peer: on a busy machine a director whose socket
// overflowed would never get what it missed (TestClusterBulk and TestClusterVRRPRestart
// failed so at load 15-20, the directors short of the entries after 30 and 60 s). So
// what is missing is injected again, the same records, at most twice more, each
// round logged with the receive-buffer drops in the directors' namespaces.
func injectUntilHeld(t *testing.T, l *Lab, host string, n int, wait time.Duration) {
	t.Helper()
	dirs := l.hostsWith(Director)
	counts := make([]int, len(dirs))
	for round := 1; ; round++ {
		injectSync(t, l, host, n)
		for deadline := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
			for i, d := range dirs {
				counts[i] = countLines(l, d.Name, "198.19.")
			}
			if slices.Min(counts) >= n {
				return
			}
			if time.Now().After(deadline) {
				break
			}
		}
		var drops []string
		for _, d := range dirs {
			drops = append(drops, d.Name+" "+udpRcvbufErrors(l, d.Name))
		}
		if round == 3 {
			t.Fatalf("after %d injections the directors hold %v of the %d entries (UDP receive-buffer drops: %s)", round, counts, n, strings.Join(drops, ", "))
		}
		t.Logf("the directors hold %v of the %d injected entries after %v (UDP receive-buffer drops: %s): injecting again", counts, n, wait, strings.Join(drops, ", "))
	}
}

// udpRcvbufErrors returns the UDP datagrams host's sockets dropped for want of
// receive buffer (RcvbufErrors in its namespace's /proc/net/snmp), or why it cannot.
func udpRcvbufErrors(l *Lab, host string) string {
	var b []byte
	if err := l.Do(host, func() (err error) {
		b, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	}); err != nil {
		return err.Error()
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		if i := slices.Index(names, "RcvbufErrors"); i > 0 && i < len(f) {
			return f[i]
		}
	}
	return "?"
}

// partition drops the sync and control traffic (UDP 8848, 8849) between two
// directors, in both of their namespaces (nftables table h3c9part), or lifts it.
func partition(t *testing.T, l *Lab, a, b string, on bool) {
	t.Helper()
	for _, pair := range [][2]string{{a, b}, {b, a}} {
		self, _ := l.Host(pair[0])
		peer, _ := l.Host(pair[1])
		var script string
		if on {
			script = fmt.Sprintf("table inet h3c9part {\n chain in {\n  type filter hook input priority 0;\n  ip saddr %s udp dport { 8848, 8849 } drop\n }\n}\n", peer.Addr())
		} else {
			script = "delete table inet h3c9part\n"
		}
		cmd := exec.Command("ip", "netns", "exec", self.NS, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: nft: %v\n%s", self.Name, err, out)
		}
	}
}

// TestClusterPartition is acceptance test C9: sync and control between dir1 and
// dir2 are cut for 20 s while rs4 joins and dir3 is killed (breaks reported, not
// gated); after the heal the two see each other live again and pull each
// other's entries, and the next kill breaks nothing.
func TestClusterPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("C9 runs for about a minute")
	}
	needTool(t, "nft")
	l := clusterLab(t, Spec{})
	ctx := context.Background()
	w, err := l.WatchRoutes()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	announced(t, l, w, time.Now(), ClusterUpTimeout, "dir1", "dir2", "dir3")
	f, err := l.StartFlows(ctx, FlowsOptions{Conns: 300, Rate: 50, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	adm := func(d string) string {
		out, _ := l.admCmd(d, "--cluster").CombinedOutput()
		return string(out)
	}
	peerLive := func(d, peer string) bool {
		for _, line := range strings.Split(adm(d), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == peer {
				return f[2] == "yes"
			}
		}
		return false
	}
	partition(t, l, "dir1", "dir2", true)
	cut := true
	t.Cleanup(func() {
		if cut {
			partition(t, l, "dir1", "dir2", false)
		}
	})
	waitFor(t, 5*time.Second, "dir1 sees dir2 not live", func() bool { return !peerLive("dir1", "dir2") })
	before := f.Counts()
	if err := l.Event(ctx, EventRSAdd, ""); err != nil {
		t.Fatal(err)
	}
	if err := l.Event(ctx, EventKill, "dir3"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Second) // the partition's length
	during := f.Counts().Sub(before)
	healed := time.Now()
	partition(t, l, "dir1", "dir2", false)
	cut = false
	waitFor(t, 5*time.Second, "dir1 and dir2 live again", func() bool { return peerLive("dir1", "dir2") && peerLive("dir2", "dir1") })
	waitFor(t, 10*time.Second, "a pull after the silence in dir1's or dir2's log", func() bool {
		return loggedSince(l, "dir1", healed.Add(-time.Second), "heard again after a silence") ||
			loggedSince(l, "dir2", healed.Add(-time.Second), "heard again after a silence")
	})
	// Each side pulls the other's entries. The kill of dir2 below tests what dir1
	// pulled: wait until dir2 has pushed it all (well under a second here, longer on
	// a loaded machine), not for a fixed time.
	waitFor(t, 30*time.Second, "dir2 done pushing its entries to dir1 after the heal", func() bool {
		return loggedSince(l, "dir2", healed.Add(-time.Second), "bulk push done", "to=dir1")
	})
	after := f.Counts()
	if err := l.Event(ctx, EventKill, "dir2"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Until(ctx, time.Now().Add(-time.Second), 5*time.Second, l.Exactly("dir1")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(15 * time.Second) // every long-lived connection asks many times after the kill
	next := f.Counts().Sub(after)
	t.Logf("C9: during the partition (rs-add, kill dir3): %v", during)
	t.Logf("C9: after the heal, kill dir2: %v", next)
	if next.Broken != 0 {
		t.Errorf("%d long-lived connections broke at the kill after the heal", next.Broken)
	}
}

// loggedSince reports whether director's log has a line holding every one of subs
// timed at or after since.
func loggedSince(l *Lab, director string, since time.Time, subs ...string) bool {
	b, _ := os.ReadFile(filepath.Join(l.RunDir(), director+"-director.log"))
	for _, line := range strings.Split(string(b), "\n") {
		all := true
		for _, s := range subs[1:] {
			all = all && strings.Contains(line, s)
		}
		if at, ok := lineTime(line, subs[0]); ok && all && !at.Before(since) {
			return true
		}
	}
	return false
}

// TestClusterPreflightVRRPNeedsNoBird: an active/standby pair runs no BIRD, so its
// preflight passes on a host without it, where an ECMP cluster's names the package.
func TestClusterPreflightVRRPNeedsNoBird(t *testing.T) {
	if err := Preflight(DR); err != nil {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatalf("GVS_LAB_REQUIRED=1 but a lab cannot run: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	dir := t.TempDir()
	for _, tool := range []string{"ip", "bridge"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	if err := ClusterPreflight(true); err != nil {
		t.Errorf("ClusterPreflight(vrrp) without BIRD: %v, want nil", err)
	}
	err := ClusterPreflight(false)
	if err == nil || !strings.Contains(err.Error(), "apt-get install bird2") {
		t.Errorf("ClusterPreflight(ecmp) without BIRD: %v, want an error naming bird2", err)
	}
	os.Remove(filepath.Join(dir, "bridge"))
	if err := ClusterPreflight(true); err == nil || !strings.Contains(err.Error(), "iproute2") {
		t.Errorf("ClusterPreflight(vrrp) without bridge: %v, want an error naming iproute2", err)
	}
}
