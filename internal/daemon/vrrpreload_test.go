package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/kaddr"
	"github.com/gvs-lb/gvs/internal/testutil"
	"github.com/gvs-lb/gvs/vrrp"
)

// advertLog records the adverts sent, per VRID.
type advertLog struct {
	*peerTransport
	mu   sync.Mutex
	prio map[uint8][]uint8
}

func (a *advertLog) Send(p *vrrp.Packet) error {
	a.mu.Lock()
	a.prio[p.Advert.VRID] = append(a.prio[p.Advert.VRID], p.Advert.Priority)
	a.mu.Unlock()
	return a.peerTransport.Send(p)
}

func (a *advertLog) last(vrid uint8) (uint8, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.prio[vrid]
	if len(l) == 0 {
		return 0, 0
	}
	return l[len(l)-1], len(l)
}

func reloadConf(vi1Prio string, vi2, vi3 bool) string {
	s := `
[[vrrp]]
name = "VI_1"
interface = "gvs0"
virtual_router_id = 51
priority = ` + vi1Prio + `
virtual_ipaddress = ["198.18.0.3/24 label gvs0:1"]
garp_master_delay = "0s"
`
	if vi2 {
		s += `
[[vrrp]]
name = "VI_2"
interface = "gvs0"
virtual_router_id = 52
priority = 150
virtual_ipaddress = ["198.18.0.4/24 label gvs0:2"]
garp_master_delay = "0s"
`
	}
	if vi3 {
		s += `
[[vrrp]]
name = "VI_3"
interface = "gvs0"
virtual_router_id = 53
priority = 90
virtual_ipaddress = ["198.18.0.5/24"]
garp_master_delay = "0s"
`
	}
	return s
}

// TestVRRPReload: a SIGHUP-style reload changes VI_1's priority in place (its next
// advert carries it, no transition), removes master VI_2 (priority 0 advert, its
// kernel address removed) and adds VI_3 (it starts in BACKUP); VI_1 never leaves
// MASTER and keeps its kernel address.
func TestVRRPReload(t *testing.T) {
	testutil.CheckLeaks(t)
	dir := t.TempDir()
	sock := "control_socket = \"" + filepath.Join(dir, "gvs.sock") + "\"\n"
	text := directorConf + sock + reloadConf("100", true, false)
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ta := &testAdmin{t: t, clock: testutil.NewClock(t), res: &fakeResolver{}, link: &filterLink{Channel: newChannel()}, logs: &logBuffer{}}
	deps := testDeps(ta)
	tr := &advertLog{peerTransport: &peerTransport{fakeTransport: ta.vrrp, in: make(chan vrrp.Packet, 4)}, prio: map[uint8][]uint8{}}
	deps.OpenVRRP = func(vrrp.TransportConfig) (vrrp.Transport, error) { return tr, nil }
	fake := &kaddr.Fake{}
	deps.KernelAddrs = func() (kaddr.Handle, error) { return fake, nil }
	d, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ta.d, ta.a = d, d.admin
	runUntilCleanup(t, d)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", ta.logs)
		}
	})
	becomeMaster(ta)
	testutil.Eventually(t, 10*time.Second, func() bool { return has(fake, "198.18.0.3/24") && has(fake, "198.18.0.4/24") }, "both masters' kernel VIPs")

	next, err := config.Parse("test.toml", []byte(directorConf+sock+reloadConf("120", false, true)))
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.d.Reload(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	if p, _ := tr.last(52); p != 0 {
		t.Fatalf("the removed master's last advert has priority %d, want 0", p)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return !has(fake, "198.18.0.4/24") }, "the removed master's kernel VIP to go")
	_, before := tr.last(51)
	ta.clock.Advance(time.Second)
	testutil.Eventually(t, 10*time.Second, func() bool { p, n := tr.last(51); return n > before && p == 120 }, "VI_1's next advert with priority 120")
	st := ta.d.vrrp.runner.Status()
	if len(st) != 2 || st[0].Name != "VI_1" || st[0].State != vrrp.StateMaster || st[0].Configured != 120 || st[0].Reason != "master down timer expired (no advert for Master_Down_Interval)" ||
		st[1].Name != "VI_3" || st[1].State != vrrp.StateBackup {
		t.Fatalf("status after the reload %+v", st)
	}
	if !has(fake, "198.18.0.3/24") {
		t.Fatal("the unchanged master lost its kernel VIP")
	}
	if !strings.Contains(ta.logs.String(), "reload: VRRP changed") {
		t.Fatal("no log of the VRRP reload")
	}
}

// TestAdmVRRP: gvs adm --vrrp lists each instance with its state, configured and
// effective priority (and the tracked objects that move it), master, and last
// transition with its reason.
func TestAdmVRRP(t *testing.T) {
	dir := t.TempDir()
	fake := &kaddr.Fake{}
	ta, _, _ := kernelDirector(t, kernelConf+`track_interface = ["gvs9 weight 20"]`+"\n", dir, fake)
	ta.clock.BlockUntil(2)
	out := ta.ok("--vrrp")
	for _, want := range []string{"INSTANCE", "VI_1", "51", "gvs0", "BACKUP", "100 (effective 120) [interface gvs9 +20]", "from INIT", "init"} {
		if !strings.Contains(out, want) {
			t.Errorf("--vrrp lacks %q:\n%s", want, out)
		}
	}
	becomeMaster(ta)
	testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(ta.ok("--vrrp"), "this node") }, "MASTER listed")
	out = ta.ok("--vrrp")
	for _, want := range []string{"this node (172.19.0.3)", "master down timer expired", "from BACKUP"} {
		if !strings.Contains(out, want) {
			t.Errorf("--vrrp lacks %q:\n%s", want, out)
		}
	}
	if _, errOut, st := ta.adm("--vrrp extra"); st == 0 || !strings.Contains(errOut, "takes no arguments") {
		t.Errorf("--vrrp with an argument: status %d, %q", st, errOut)
	}
	t.Log("\n" + out)
}

// TestVRRPReloadServiceVIP: a reload that makes an instance's kernel VIP a
// service's address restarts that instance: the address leaves the kernel, and gvs
// serves it from userspace once the instance is master again.
func TestVRRPReloadServiceVIP(t *testing.T) {
	dir := t.TempDir()
	fake := &kaddr.Fake{}
	ta, _, _ := kernelDirector(t, kernelConf, dir, fake)
	becomeMaster(ta)
	testutil.Eventually(t, 10*time.Second, func() bool { return has(fake, "198.18.0.200/24") }, "the kernel VIP")
	svc := "\n[[service]]\naddress = \"198.18.0.200:80\"\nscheduler = \"rr\"\n  [[service.real_server]]\n  address = \"198.18.0.5:80\"\n"
	next, err := config.Parse("test.toml", []byte(directorConf+"control_socket = \""+filepath.Join(dir, "gvs.sock")+"\"\n"+svc+kernelConf))
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.d.Reload(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return !has(fake, "198.18.0.200/24") }, "the VIP off the kernel")
	if st := ta.d.vrrp.runner.Status(); len(st) != 1 || st[0].State != vrrp.StateBackup {
		t.Fatalf("status %+v: the instance should have restarted", st)
	}
	ta.clock.Advance(4 * time.Second)
	testutil.Eventually(t, 10*time.Second, func() bool { return ta.d.vrrp.runner.Status()[0].State == vrrp.StateMaster }, "master again")
	if l, _ := fake.List(); len(l) != 0 {
		t.Fatalf("kernel addresses %v: both VIPs are services' now", l)
	}
}

// TestDumpVRRP: the three dumps are written beside the control socket: the data
// with the instance table and the kernel addresses held, the statistics with the
// advert counters, the JSON with one object per instance.
func TestDumpVRRP(t *testing.T) {
	dir := t.TempDir()
	fake := &kaddr.Fake{}
	ta, _, _ := kernelDirector(t, kernelConf, dir, fake)
	becomeMaster(ta)
	testutil.Eventually(t, 10*time.Second, func() bool { return has(fake, "198.18.0.200/24") }, "the kernel VIP")
	for kind, want := range map[string][]string{
		DumpData:  {"VI_1", "MASTER", "on the kernel now: 198.18.0.200/24"},
		DumpStats: {"adverts sent", "adverts received 0"},
		DumpJSON:  {`"name": "VI_1"`, `"state": "MASTER"`, `"kernel_addresses": [`, `"198.18.0.200/24"`, `"vrid": 51`},
	} {
		path, err := ta.d.DumpVRRP(kind)
		if err != nil {
			t.Fatal(err)
		}
		if path != filepath.Join(dir, "gvs.vrrp."+kind) {
			t.Errorf("%s dump at %s", kind, path)
		}
		b, _ := os.ReadFile(path)
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s dump lacks %q:\n%s", kind, w, b)
			}
		}
	}
	if _, err := ta.d.DumpVRRP("xml"); err == nil {
		t.Error("an unknown dump was written")
	}
}
