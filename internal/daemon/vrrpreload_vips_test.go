package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/kaddr"
	"github.com/gvs-lb/gvs/internal/testutil"
	"github.com/gvs-lb/gvs/vrrp"
)

// addrLog records the priority and addresses of every advert sent.
type addrLog struct {
	*peerTransport
	mu   sync.Mutex
	sent []vrrp.Advert
}

func (a *addrLog) Send(p *vrrp.Packet) error {
	a.mu.Lock()
	adv := p.Advert
	adv.Addrs = slices.Clone(adv.Addrs)
	a.sent = append(a.sent, adv)
	a.mu.Unlock()
	return a.peerTransport.Send(p)
}

func (a *addrLog) adverts() []vrrp.Advert {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.sent)
}

func vipsConf(kernVIP, route, rule string) string {
	return webConf + `
[[vrrp]]
name = "VI_1"
interface = "gvs0"
virtual_router_id = 51
priority = 100
advert_int = "1s"
virtual_ipaddress = ["198.18.0.100", "` + kernVIP + ` dev gvs0"]
virtual_routes = ["` + route + `"]
virtual_rules = ["` + rule + `"]
garp_master_delay = "0s"
`
}

// TestVRRPReloadVIPsInPlace: a reload that changes a master's virtual addresses,
// routes and rules keeps it MASTER — no transition, no priority-0 advert — as
// keepalived does: the dropped rule, route and address leave the kernel (in that
// order), the new address, route and rule go on it (in that order), the new
// address is announced (the unchanged service VIP gets no new burst), the
// record follows, and the advert before the reload carries the old list, the next
// one the new list.
func TestVRRPReloadVIPsInPlace(t *testing.T) {
	testutil.CheckLeaks(t)
	dir := t.TempDir()
	sock := "control_socket = \"" + filepath.Join(dir, "gvs.sock") + "\"\n"
	parse := func(conf string) *config.Config {
		cfg, err := config.Parse("test.toml", []byte(directorConf+sock+conf))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ta := &testAdmin{t: t, clock: testutil.NewClock(t), res: &fakeResolver{}, link: &filterLink{Channel: newChannel()}, logs: &logBuffer{}}
	deps := testDeps(ta)
	tr := &addrLog{peerTransport: &peerTransport{fakeTransport: ta.vrrp, in: make(chan vrrp.Packet, 4)}}
	deps.OpenVRRP = func(vrrp.TransportConfig) (vrrp.Transport, error) { return tr, nil }
	fake := &kaddr.Fake{}
	deps.KernelAddrs = func() (kaddr.Handle, error) { return fake, nil }
	d, err := New(parse(vipsConf("198.18.0.200/24", "198.18.5.0/24 via 198.18.0.1 dev gvs0", "from 198.18.0.200 table 100")), deps)
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
	svcVIP, oldVIP, newVIP := netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("198.18.0.200"), netip.MustParseAddr("198.18.0.201")
	becomeMaster(ta)
	testutil.Eventually(t, 10*time.Second, func() bool { return len(fake.Rules()) == 1 }, "the master's address, route and rule")
	testutil.Eventually(t, 10*time.Second, func() bool { return ta.ann.count(oldVIP) > 0 }, "the kernel VIP announced")
	before := ta.d.vrrp.runner.Status()[0]
	if before.State != vrrp.StateMaster {
		t.Fatalf("status %+v", before)
	}
	ta.clock.Advance(time.Second) // one more advert: the old list
	testutil.Eventually(t, 10*time.Second, func() bool { return len(tr.adverts()) >= 2 }, "the master's adverts")
	if a := tr.adverts(); !slices.Equal(a[len(a)-1].Addrs, []netip.Addr{svcVIP, oldVIP}) {
		t.Fatalf("advert before the reload carries %v", a[len(a)-1].Addrs)
	}
	nOps, svcAnn := len(fake.Ops()), ta.ann.count(svcVIP)

	next := parse(vipsConf("198.18.0.201/24", "198.18.6.0/24 via 198.18.0.1 dev gvs0", "from 198.18.0.201 table 100"))
	if err := ta.d.Reload(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return has(fake, "198.18.0.201/24") && len(fake.Rules()) == 1 && ta.ann.count(newVIP) > 0 },
		"the new address, route and rule on the kernel, the address announced")
	ops := fake.Ops()[nOps:]
	want := []string{
		"delete rule from 198.18.0.200/32 lookup 100", "delete route 198.18.5.0/24 via 198.18.0.1 if#7", "delete addr 198.18.0.200/24",
		"add addr 198.18.0.201/24", "add route 198.18.6.0/24 via 198.18.0.1 if#7", "add rule from 198.18.0.201/32 lookup 100",
	}
	if !slices.Equal(ops, want) {
		t.Fatalf("kernel changes %q, want %q", ops, want)
	}
	// Every reload announces the served VIPs once (announceNew); the change of
	// addresses adds no burst for the unchanged one.
	if n := ta.ann.count(svcVIP); n > svcAnn+1 {
		t.Errorf("the unchanged service VIP was announced again in a burst (%d → %d)", svcAnn, n)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "gvs.kernel-addrs.json"))
	if !strings.Contains(string(data), `"198.18.0.201/24"`) || strings.Contains(string(data), `198.18.0.200`) || !strings.Contains(string(data), `"198.18.6.0/24"`) {
		t.Fatalf("record after the reload: %s", data)
	}
	n := len(tr.adverts())
	ta.clock.Advance(time.Second)
	testutil.Eventually(t, 10*time.Second, func() bool { return len(tr.adverts()) > n }, "the next advert")
	for _, a := range tr.adverts()[n-1:] {
		if a.Priority == vrrp.PriorityStop {
			t.Fatal("the master advertised priority 0 at the reload")
		}
	}
	if a := tr.adverts(); !slices.Equal(a[len(a)-1].Addrs, []netip.Addr{svcVIP, newVIP}) {
		t.Fatalf("the next advert carries %v, want [%v %v]", a[len(a)-1].Addrs, svcVIP, newVIP)
	}
	after := ta.d.vrrp.runner.Status()[0]
	if after.State != vrrp.StateMaster || after.Since != before.Since || after.Reason != before.Reason {
		t.Fatalf("status after the reload %+v, before %+v: the instance made a transition", after, before)
	}
	// The dataplane still owns the service VIP; and the new set is what a later
	// release removes.
	testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(ta.logs.String(), "reload: VRRP changed") }, "the reload's log")
}

// TestVRRPReloadServedVIPInPlace: a reload that adds a service's VIP to a master's
// virtual_ipaddress makes the Director serve it at once (and announces it), one
// that drops a VIP stops serving it, with no transition of the instance.
func TestVRRPReloadServedVIPInPlace(t *testing.T) {
	svc101 := "\n[[service]]\naddress = \"198.18.0.101:80\"\nscheduler = \"rr\"\n  [[service.real_server]]\n  address = \"198.18.0.5:80\"\n"
	inst := func(vips string) string {
		return "\n[[vrrp]]\nname = \"VI_1\"\ninterface = \"gvs0\"\nvirtual_router_id = 51\npriority = 100\nadvert_int = \"1s\"\nvirtual_ipaddress = [" + vips + "]\ngarp_master_delay = \"0s\"\n"
	}
	ta := newTestAdmin(t, webConf+svc101+inst(`"198.18.0.100"`))
	reload := func(vips string) {
		t.Helper()
		next, err := config.Parse("test.toml", []byte(directorConf+webConf+svc101+inst(vips)))
		if err != nil {
			t.Fatal(err)
		}
		if err := ta.d.Reload(t.Context(), next); err != nil {
			t.Fatal(err)
		}
	}
	forwarded := func(vip string) bool {
		return len(ta.send(tcpPkt{client: ap("198.51.100.9:1234"), vip: ap(vip + ":80"), syn: true})) == 1
	}
	becomeMaster(ta)
	testutil.Eventually(t, 10*time.Second, func() bool { return forwarded("198.18.0.100") }, "the master to serve its VIP")
	if forwarded("198.18.0.101") {
		t.Fatal("a service VIP no master holds was served")
	}
	before := ta.d.vrrp.runner.Status()[0]

	reload(`"198.18.0.100", "198.18.0.101"`)
	testutil.Eventually(t, 10*time.Second, func() bool { return forwarded("198.18.0.101") }, "the added VIP served")
	testutil.Eventually(t, 10*time.Second, func() bool { return ta.ann.count(netip.MustParseAddr("198.18.0.101")) > 0 }, "the added VIP announced")
	reload(`"198.18.0.101"`)
	testutil.Eventually(t, 10*time.Second, func() bool { return !forwarded("198.18.0.100") }, "the dropped VIP no longer served")
	if !forwarded("198.18.0.101") {
		t.Fatal("the kept VIP is no longer served")
	}
	if after := ta.d.vrrp.runner.Status()[0]; after.State != vrrp.StateMaster || after.Since != before.Since {
		t.Fatalf("status %+v, before %+v: the instance made a transition", after, before)
	}
}
