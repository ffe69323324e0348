package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/dataplane/linktest"
	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/control"
	"github.com/gvs-lb/gvs/internal/testutil"
	"github.com/gvs-lb/gvs/vrrp"
)

// The test director: a whole Daemon over an in-memory link and fakes, no root.

var dirMAC = net.HardwareAddr{2, 0, 0, 0, 0, 3}

// macOf is the test network's MAC of an address: 02:00:00:00:00:<last byte>.
func macOf(a netip.Addr) net.HardwareAddr {
	b := a.AsSlice()
	return net.HardwareAddr{2, 0, 0, 0, 0, b[len(b)-1]}
}

// directorConf is the [director] table of every test config: conn_max is also the
// size= of the version line of -L, as in the seeds.
const directorConf = `
[director]
interface = "gvs0"
address = "172.19.0.3"
conn_max = 4096
conn_shards = 16
`

// benchDirectorConf is directorConf with the connection table a director runs by
// default (conn_max 2^20, 256 shards) rather than the tests' 4,096 entries: the
// control plane's benchmarks measure a director's heap, whose size sets how often
// the garbage collector runs and so what it costs each command.
const benchDirectorConf = `
[director]
interface = "gvs0"
address = "172.19.0.3"
`

// fakeHost is a host with one interface, gvs0, up.
type fakeHost struct{}

func (fakeHost) Check(ifname string) (Interface, error) { return fakeHost{}.Interface(ifname) }

func (fakeHost) Interface(name string) (Interface, error) {
	return Interface{Name: name, Index: 7, MAC: dirMAC, MTU: 1500, Addrs: []netip.Addr{netip.MustParseAddr("172.19.0.3")}, Up: true}, nil
}

func (fakeHost) DefaultGateway(string) netip.Addr { return netip.Addr{} }

// fakeResolver knows every address (macOf, or the MAC set with setMAC), except
// the ones it never answers for (those block until the caller gives up) and the
// ones it fails at once.
type fakeResolver struct {
	calls atomic.Int32
	mu    sync.Mutex
	never map[netip.Addr]bool
	fail  map[netip.Addr]bool
	macs  map[netip.Addr]net.HardwareAddr
}

func (r *fakeResolver) Resolve(ctx context.Context, a netip.Addr) (net.HardwareAddr, error) {
	r.calls.Add(1)
	r.mu.Lock()
	never, fail, mac := r.never[a], r.fail[a], r.macs[a]
	r.mu.Unlock()
	switch {
	case never:
		<-ctx.Done()
		return nil, ctx.Err()
	case fail:
		return nil, fmt.Errorf("%s does not answer ARP", a)
	case mac != nil:
		return mac, nil
	}
	return macOf(a), nil
}

// setFail makes the resolver fail for a (or answer again).
func (r *fakeResolver) setFail(a netip.Addr, fail bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail == nil {
		r.fail = map[netip.Addr]bool{}
	}
	r.fail[a] = fail
}

// setMAC makes the resolver answer mac for a.
func (r *fakeResolver) setMAC(a netip.Addr, mac net.HardwareAddr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.macs == nil {
		r.macs = map[netip.Addr]net.HardwareAddr{}
	}
	r.macs[a] = mac
}

func (r *fakeResolver) setNever(addrs ...netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.never == nil {
		r.never = map[netip.Addr]bool{}
	}
	for _, a := range addrs {
		r.never[a] = true
	}
}

// fakeGuard records the ingress guard's changes.
type fakeGuard struct {
	mu    sync.Mutex
	calls []string
}

func (g *fakeGuard) Install(_ context.Context, vips []netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var s []string
	for _, v := range vips {
		s = append(s, v.String())
	}
	g.calls = append(g.calls, "install "+strings.Join(s, ","))
	return nil
}

func (g *fakeGuard) Remove(context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, "remove")
	return nil
}

func (g *fakeGuard) log() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.calls...)
}

// fakeAnnouncer records announcements.
type fakeAnnouncer struct {
	mu   sync.Mutex
	vips []netip.Addr
}

func (a *fakeAnnouncer) Announce(vips []netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.vips = append(a.vips, vips...)
	return nil
}

func (a *fakeAnnouncer) Close() error { return nil }

func (a *fakeAnnouncer) count(v netip.Addr) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, x := range a.vips {
		if x == v {
			n++
		}
	}
	return n
}

// fakeHealth is a health-check runner the test drives: it keeps the specs it is
// given, reports every check up, and the test sends transitions with notify.
type fakeHealth struct {
	notify func(health.Transition)
	mu     sync.Mutex
	specs  []health.Spec
}

func (h *fakeHealth) Update(specs []health.Spec) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.specs = append([]health.Spec(nil), specs...)
	return nil
}

func (h *fakeHealth) Snapshot() []health.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	var st []health.Status
	for _, s := range h.specs {
		st = append(st, health.Status{ID: s.ID, Target: s.Target, Up: true, Weight: health.WeightUnchanged})
	}
	return st
}

func (h *fakeHealth) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// id returns the check ID of target.
func (h *fakeHealth) id(t *testing.T, target string) string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.specs {
		if s.Target.String() == target {
			return s.ID
		}
	}
	t.Fatalf("no health check for %s", target)
	return ""
}

// fakeTransport is a VRRP transport on which nobody else speaks: it counts what
// it sends and receives nothing.
type fakeTransport struct {
	sent   atomic.Int32
	closed chan struct{}
	once   sync.Once
}

func newFakeTransport() *fakeTransport { return &fakeTransport{closed: make(chan struct{})} }

func (f *fakeTransport) Send(*vrrp.Packet) error { f.sent.Add(1); return nil }

func (f *fakeTransport) Receive(*vrrp.Packet) error {
	<-f.closed
	return vrrp.ErrClosed
}

func (f *fakeTransport) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

// filterLink is an in-memory link that records a copy of the last filter it is
// given (FilterSetter: the caller reuses f); with discard, only how many.
type filterLink struct {
	*linktest.Channel
	mu      sync.Mutex
	filter  *afpacket.Filter
	discard bool
}

func (l *filterLink) SetFilter(f *afpacket.Filter) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.discard {
		return nil
	}
	c := *f
	c.VIPs, c.NATRealServers = slices.Clone(f.VIPs), slices.Clone(f.NATRealServers)
	c.Local, c.MACs = slices.Clone(f.Local), slices.Clone(f.MACs)
	l.filter = &c
	return nil
}

func (l *filterLink) lastFilter() *afpacket.Filter {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.filter
}

// logBuffer collects the daemon's log; with discard (a benchmark's) it keeps
// none: a buffer growing by every command's line would copy megabytes as it
// doubles and make the heap the collector works on grow with b.N.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	discard bool
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.discard {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testAdmin is a running Daemon over fakes, with a worker of its own on the same
// Director that the test feeds frames to directly (send), a fake clock, a resolver
// that knows every address (macOf) and counts its calls, and the link the daemon's
// own worker pumps.
type testAdmin struct {
	t      testing.TB
	d      *Daemon
	a      *Admin
	w      *dataplane.Worker
	clock  *testutil.Clock
	res    *fakeResolver
	guard  *fakeGuard
	ann    *fakeAnnouncer
	health *fakeHealth
	vrrp   *fakeTransport
	link   *filterLink
	logs   *logBuffer
}

// newTestAdmin runs a director whose config is directorConf followed by conf.
func newTestAdmin(t *testing.T, conf ...string) *testAdmin {
	t.Helper()
	return newTestDirector(t, directorConf+strings.Join(conf, "\n"), nil)
}

// newChannel is the in-memory link of a test director.
func newChannel() *linktest.Channel { return linktest.NewChannel(256) }

// testDeps are the dependencies of a test director: ta's link, resolver, clock (nil:
// the real one) and log, and fakes it keeps for the guard, the announcer, health
// checks and VRRP.
func testDeps(ta *testAdmin) Deps {
	ta.guard, ta.ann, ta.vrrp = &fakeGuard{}, &fakeAnnouncer{}, newFakeTransport()
	deps := Deps{
		Logger: slog.New(slog.NewTextHandler(ta.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Host:   fakeHost{},
		OpenLinks: func(_ Interface, f *afpacket.Filter, _ PacketOptions) ([]dataplane.Link, error) {
			if f != nil {
				ta.link.SetFilter(f) // a link opens with the filter
			}
			return []dataplane.Link{ta.link}, nil
		},
		NewResolver:  func(Interface) (Resolver, error) { return ta.res, nil },
		NewGuard:     func(string) Guard { return ta.guard },
		NewAnnouncer: func(Interface) (Announcer, error) { return ta.ann, nil },
		NewHealth: func(notify func(health.Transition)) HealthRunner {
			ta.health = &fakeHealth{notify: notify}
			return ta.health
		},
		OpenVRRP:  func(vrrp.TransportConfig) (vrrp.Transport, error) { return ta.vrrp, nil },
		RunScript: func(context.Context, string) ([]byte, error) { return nil, nil },
	}
	if ta.clock != nil {
		deps.Clock = ta.clock
	}
	return deps
}

// controlReq is a control request for one command line, split on blanks.
func controlReq(line string) control.Request {
	return control.Request{Version: control.Version, Args: strings.Fields(line)}
}

// newBenchDirector runs a director with directorConf for a benchmark.
func newBenchDirector(b *testing.B) *testAdmin {
	ta := newTestDirector(b, benchDirectorConf, nil)
	// The links get every filter (FilterSetter), as a ring or an XDP socket
	// does; the test link does not copy them: a benchmark measures gvs.
	ta.link.mu.Lock()
	ta.link.discard = true
	ta.link.mu.Unlock()
	// The log lines are made (as a director writing to its journal makes them),
	// not kept.
	ta.logs.mu.Lock()
	ta.logs.discard = true
	ta.logs.mu.Unlock()
	return ta
}

// newTestDirector runs a director with the config text, after tweak (if not nil)
// changed its dependencies. The director stops when the test ends, and the test
// fails if it leaves a goroutine behind.
func newTestDirector(t testing.TB, text string, tweak func(*Deps)) *testAdmin {
	t.Helper()
	testutil.CheckLeaks(t)
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	hermetic(cfg, text)
	ta := &testAdmin{t: t, clock: testutil.NewClock(t), res: &fakeResolver{}, link: &filterLink{Channel: newChannel()}, logs: &logBuffer{}}
	deps := testDeps(ta)
	if tweak != nil {
		tweak(&deps)
	}
	d, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ta.d, ta.a = d, d.admin
	ta.w = d.Director().NewWorker(64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", ta.logs)
		}
	})
	ta.settle()
	return ta
}

// settle waits until no MAC resolution is in flight but those of the addresses
// the fake resolver never answers for.
func (ta *testAdmin) settle() {
	ta.t.Helper()
	var left []netip.Addr
	testutil.Eventually(ta.t, 10*time.Second, func() bool {
		ta.res.mu.Lock()
		defer ta.res.mu.Unlock()
		left = left[:0]
		for a := range ta.d.pub.Load().resolving {
			if !ta.res.never[a] {
				left = append(left, a)
			}
		}
		return len(left) == 0
	}, "MAC resolutions to finish (%v left)", &left)
}

// adm runs one command line, split on blanks.
func (ta *testAdmin) adm(line string) (stdout, stderr string, status int) {
	return ta.admIn("", line)
}

func (ta *testAdmin) admIn(stdin, line string) (stdout, stderr string, status int) {
	ta.t.Helper()
	r := ta.d.Handle(context.Background(), control.Request{Version: control.Version, Args: strings.Fields(line), Stdin: stdin})
	ta.settle()
	return r.Stdout, r.Stderr, r.Status
}

// ok runs a command that must succeed silently or with output, and returns stdout.
func (ta *testAdmin) ok(line string) string {
	ta.t.Helper()
	out, errOut, st := ta.adm(line)
	if st != 0 || errOut != "" {
		ta.t.Fatalf("gvs adm %s: status %d, stderr %q", line, st, errOut)
	}
	return out
}

// reload reloads the director with directorConf followed by conf.
func (ta *testAdmin) reload(conf string) error {
	ta.t.Helper()
	return ta.reloadText(directorConf + conf)
}

func (ta *testAdmin) reloadText(text string) error {
	ta.t.Helper()
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		return err
	}
	hermetic(cfg, text)
	err = ta.d.Reload(context.Background(), cfg)
	ta.settle()
	return err
}

// generations counts the configurations the controller published.
func (ta *testAdmin) generations() int { return int(ta.d.commits.Load()) }

// hermetic keeps a test director off the host's default control socket
// (/run/gvs/gvs.sock, which a running director or another test binary may hold)
// unless the test's config text names one.
func hermetic(cfg *config.Config, text string) {
	if !strings.Contains(text, "control_socket") {
		cfg.Director.ControlSocket = ""
	}
}
