package daemon

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/kaddr"
	"github.com/gvs-lb/gvs/internal/testutil"
	"github.com/gvs-lb/gvs/vrrp"
)

// peerTransport is a VRRP transport whose received adverts the test injects.
type peerTransport struct {
	*fakeTransport
	in chan vrrp.Packet
}

func (p *peerTransport) Receive(pkt *vrrp.Packet) error {
	select {
	case q := <-p.in:
		*pkt = q
		return nil
	case <-p.closed:
		return vrrp.ErrClosed
	}
}

// kernelDirector runs a director with conf, its kernel addresses in fake, its
// control socket (and so the record of added addresses) in dir. stop stops it and
// waits for Run to return.
func kernelDirector(t *testing.T, conf, dir string, fake *kaddr.Fake) (ta *testAdmin, tr *peerTransport, stop func()) {
	t.Helper()
	testutil.CheckLeaks(t)
	text := directorConf + "control_socket = \"" + filepath.Join(dir, "gvs.sock") + "\"\n" + conf
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ta = &testAdmin{t: t, clock: testutil.NewClock(t), res: &fakeResolver{}, link: &filterLink{Channel: newChannel()}, logs: &logBuffer{}}
	deps := testDeps(ta)
	tr = &peerTransport{fakeTransport: ta.vrrp, in: make(chan vrrp.Packet, 4)}
	deps.OpenVRRP = func(vrrp.TransportConfig) (vrrp.Transport, error) { return tr, nil }
	deps.KernelAddrs = func() (kaddr.Handle, error) { return fake, nil }
	d, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ta.d, ta.a = d, d.admin
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", ta.logs)
		}
	})
	return ta, tr, stop
}

// kernelConf is seed 004's lb1 VI_1 beside a gvs service: 198.18.0.100 is the
// service's (userspace), 198.18.0.200 goes on the kernel with its label.
const kernelConf = webConf + `
[[vrrp]]
name = "VI_1"
interface = "gvs0"
virtual_router_id = 51
priority = 100
advert_int = "1s"
virtual_ipaddress = ["198.18.0.100", "198.18.0.200/24 dev gvs0 label gvs0:1"]
garp_master_delay = "0s"
`

func has(f *kaddr.Fake, p string) bool {
	l, _ := f.List()
	return slices.ContainsFunc(l, func(a kaddr.Addr) bool { return a.Prefix == netip.MustParsePrefix(p) })
}

// becomeMaster lets the master-down timer run out.
func becomeMaster(ta *testAdmin) {
	ta.clock.BlockUntil(2) // the controller's ticker and the master-down timer
	ta.clock.Advance(4 * time.Second)
}

// TestKernelVIPsFollowMastership: a VIP no service uses goes on the kernel (with
// its prefix, interface and label) when the instance becomes MASTER, is announced
// with the service's VIP, is recorded, leaves the kernel when a higher priority
// takes over, and a stopping master removes it too.
func TestKernelVIPsFollowMastership(t *testing.T) {
	dir := t.TempDir()
	fake := &kaddr.Fake{}
	ta, tr, stop := kernelDirector(t, kernelConf, dir, fake)
	record := filepath.Join(dir, "gvs.kernel-addrs.json")
	becomeMaster(ta)
	testutil.Eventually(t, 10*time.Second, func() bool { return has(fake, "198.18.0.200/24") }, "the kernel address")
	l, _ := fake.List()
	if len(l) != 1 || l[0].Label != "gvs0:1" || l[0].Index != 7 {
		t.Fatalf("kernel addresses %+v, want 198.18.0.200/24 on index 7 labelled gvs0:1 (and not the service's VIP)", l)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		return ta.ann.count(netip.MustParseAddr("198.18.0.200")) > 0 && ta.ann.count(netip.MustParseAddr("198.18.0.100")) > 0
	}, "both VIPs announced")
	waitRecord(t, record, `"198.18.0.200/24"`, `"gvs0:1"`)

	// A peer with priority 200: back to BACKUP, the kernel address goes.
	tr.in <- vrrp.Packet{Src: netip.MustParseAddr("172.19.0.4"), Dst: vrrp.MulticastGroup(false), HopLimit: vrrp.HopLimit,
		Advert: vrrp.Advert{Version: vrrp.Version2, VRID: 51, Priority: 200, Interval: time.Second,
			Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("198.18.0.200")}}}
	testutil.Eventually(t, 10*time.Second, func() bool { return !has(fake, "198.18.0.200/24") }, "the kernel address removed on leaving MASTER")
	testutil.Eventually(t, 10*time.Second, func() bool { _, err := os.Stat(record); return os.IsNotExist(err) }, "the record removed")

	// Master again (the peer went silent), then stop: the address goes.
	ta.clock.Advance(4 * time.Second)
	testutil.Eventually(t, 10*time.Second, func() bool { return has(fake, "198.18.0.200/24") }, "the kernel address again")
	stop()
	if has(fake, "198.18.0.200/24") {
		t.Fatal("a stopped gvs left its kernel address")
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("the record outlived a clean stop: %v", err)
	}
}

// TestKernelVIPsForeignAndLeftovers: at start, an address a killed previous run
// recorded is removed; an address already there that gvs did not add is never
// taken (nor announced, nor removed), and is counted.
func TestKernelVIPsForeignAndLeftovers(t *testing.T) {
	dir := t.TempDir()
	fake := &kaddr.Fake{}
	leftover := kaddr.Addr{Prefix: netip.MustParsePrefix("198.18.0.201/24"), Index: 7}
	foreign := kaddr.Addr{Prefix: netip.MustParsePrefix("198.18.0.200/32"), Index: 3}
	fake.Add(leftover)
	fake.Add(foreign)
	rec := `[{"instance":"VI_9","prefix":"198.18.0.201/24","dev":"gvs0"}]`
	if err := os.WriteFile(filepath.Join(dir, "gvs.kernel-addrs.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	ta, _, stop := kernelDirector(t, kernelConf, dir, fake)
	if has(fake, "198.18.0.201/24") {
		t.Fatal("the previous run's leftover is still there after New")
	}
	becomeMaster(ta)
	testutil.Eventually(t, 10*time.Second, func() bool { return ta.ann.count(netip.MustParseAddr("198.18.0.100")) > 0 }, "the master's announcements")
	if n := ta.d.vrrp.kv.refused.Load(); n != 1 {
		t.Fatalf("refused %d, want 1", n)
	}
	if ta.ann.count(netip.MustParseAddr("198.18.0.200")) != 0 {
		t.Fatal("an address gvs does not hold was announced")
	}
	if !strings.Contains(ta.logs.String(), "198.18.0.200 is already on this host and gvs did not add it") {
		t.Fatalf("no clear message for the foreign address:\n%s", ta.logs)
	}
	stop()
	if !has(fake, "198.18.0.200/32") {
		t.Fatal("gvs removed an address it did not add")
	}
}

// TestKernelRoutes: virtual_routes go on the kernel after the addresses when the
// instance becomes MASTER, are recorded, and go when it stops; a route a killed run
// left (in the record) is removed at start.
func TestKernelRoutes(t *testing.T) {
	dir := t.TempDir()
	fake := &kaddr.Fake{}
	left := kaddr.Route{Dst: netip.MustParsePrefix("198.18.9.0/24"), Type: kaddr.RouteBlackhole}
	fake.AddRoute(left)
	rec := `[{"instance":"VI_9","prefix":"198.18.9.0/24","dev":"","route":true,"type":6}]`
	if err := os.WriteFile(filepath.Join(dir, "gvs.kernel-addrs.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := kernelConf + `virtual_routes = ["198.18.5.0/24 via 198.18.0.1 dev gvs0 metric 10", "blackhole 198.18.7.0/24"]` + "\n"
	ta, _, stop := kernelDirector(t, conf, dir, fake)
	if slices.Contains(fake.Routes(), left) {
		t.Fatal("the previous run's route is still there after New")
	}
	becomeMaster(ta)
	want := []kaddr.Route{
		{Dst: netip.MustParsePrefix("198.18.5.0/24"), Via: netip.MustParseAddr("198.18.0.1"), Index: 7, Metric: 10},
		{Dst: netip.MustParsePrefix("198.18.7.0/24"), Type: kaddr.RouteBlackhole},
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return slices.Equal(fake.Routes(), want) }, "the virtual routes")
	waitRecord(t, filepath.Join(dir, "gvs.kernel-addrs.json"), `"198.18.5.0/24"`, `"route": true`)
	stop()
	if r := fake.Routes(); len(r) != 0 {
		t.Fatalf("routes left after stop: %v", r)
	}
}

// waitRecord waits until the record of kernel entries holds every one of want.
// The record is rewritten after each change has been made, so an entry reaches it
// a moment after it reaches the kernel (the fake): a test that saw the kernel
// change must still wait for the record.
func waitRecord(t *testing.T, path string, want ...string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(path)
		for _, w := range want {
			if !strings.Contains(string(data), w) {
				return false
			}
		}
		return true
	}, "the record %s to hold %q", path, want)
}
