package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/kaddr"
	"github.com/gvs-lb/gvs/internal/testutil"
)

// vrrpOnlyConf is seed 004's lb1: two instances, kernel VIPs with labels, no
// service and no [director] interface.
const vrrpOnlyConf = `
[[vrrp]]
name = "VI_1"
interface = "gvs0"
state = "MASTER"
virtual_router_id = 51
priority = 150
virtual_ipaddress = ["198.18.0.3/24 dev gvs0 label gvs0:1"]
garp_master_delay = "0s"

[[vrrp]]
name = "VI_2"
interface = "gvs1"
virtual_router_id = 52
priority = 100
virtual_ipaddress = ["198.18.1.4/24 dev gvs1 label gvs1:2"]
garp_master_delay = "0s"
`

// TestVRRPOnlyRunsWithoutDataPath: a config with [[vrrp]] and no [[service]] opens
// no link, does not check forwarding (the host says it is on), runs instances on
// two interfaces, and puts their VIPs on the kernel.
func TestVRRPOnlyRunsWithoutDataPath(t *testing.T) {
	testutil.CheckLeaks(t)
	cfg, err := config.Parse("test.toml", []byte(vrrpOnlyConf))
	if err != nil {
		t.Fatal(err)
	}
	hermetic(cfg, vrrpOnlyConf)
	ta := &testAdmin{t: t, clock: testutil.NewClock(t), res: &fakeResolver{}, link: &filterLink{Channel: newChannel()}, logs: &logBuffer{}}
	deps := testDeps(ta)
	deps.Host = routingHost{}
	deps.OpenLinks = func(Interface, *afpacket.Filter, PacketOptions) ([]dataplane.Link, error) {
		t.Error("a VRRP-only director opened data-path links")
		return nil, errors.New("no links here")
	}
	fake := &kaddr.Fake{}
	deps.KernelAddrs = func() (kaddr.Handle, error) { return fake, nil }
	d, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if d.mode != modeVRRPOnly {
		t.Fatalf("mode %v", d.mode)
	}
	runUntilCleanup(t, d)
	ta.clock.BlockUntil(2) // the controller's ticker and the Runner's next deadline
	ta.clock.Advance(4 * time.Second)
	testutil.Eventually(t, 10*time.Second, func() bool { return has(fake, "198.18.0.3/24") && has(fake, "198.18.1.4/24") }, "both kernel VIPs")
	l, _ := fake.List()
	for _, a := range l {
		if want := map[int]string{7: "gvs0:1", 8: "gvs1:2"}[a.Index]; a.Label != want {
			t.Errorf("%v: label %q on index %d, want %q", a.Prefix, a.Label, a.Index, want)
		}
	}
}

// routingHost is fakeHost on a host whose IP forwarding is on: Check fails as the
// live one does, CheckGuarded succeeds. gvs1 has index 8.
type routingHost struct{}

func (routingHost) Check(ifname string) (Interface, error) {
	return Interface{}, fmt.Errorf("%w: ipv4 forwarding is on for %s, so the kernel would forward a second copy of VIP traffic", ErrHost, ifname)
}

func (routingHost) CheckGuarded(ifname string) (Interface, error) {
	return routingHost{}.Interface(ifname)
}

func (routingHost) Interface(name string) (Interface, error) {
	ifi, _ := fakeHost{}.Interface(name)
	if name == "gvs1" {
		ifi.Index = 8
	}
	return ifi, nil
}

func (routingHost) DefaultGateway(string) netip.Addr { return netip.Addr{} }

// TestGuardedDirectorOnRoutingHost: on a host that routes, a director whose VIP
// frames the ingress guard keeps from the kernel runs, with the guard installed
// before any link opens; without ingress_drop, or with NAT, it is refused with the
// reason and the fix.
func TestGuardedDirectorOnRoutingHost(t *testing.T) {
	testutil.CheckLeaks(t)
	run := func(conf string) (*Daemon, *testAdmin, error) {
		text := directorConf + conf
		cfg, err := config.Parse("test.toml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		hermetic(cfg, text)
		ta := &testAdmin{t: t, res: &fakeResolver{}, link: &filterLink{Channel: newChannel()}, logs: &logBuffer{}}
		deps := testDeps(ta)
		deps.Host = routingHost{}
		deps.OpenLinks = func(Interface, *afpacket.Filter, PacketOptions) ([]dataplane.Link, error) {
			if got := ta.guard.log(); len(got) == 0 || got[0] != "install 198.18.0.100" {
				t.Errorf("links opened before the guard was installed (guard calls %q)", got)
			}
			return []dataplane.Link{ta.link}, nil
		}
		d, err := New(cfg, deps)
		if d != nil {
			d.Close()
		}
		return d, ta, err
	}
	d, _, err := run("ingress_drop = true\n" + webConf)
	if err != nil {
		t.Fatal(err)
	}
	if d.mode != modeGuarded {
		t.Fatalf("mode %v", d.mode)
	}
	for _, c := range []struct{ conf, says string }{
		{webConf, "set ingress_drop = true"},
		{"ingress_drop = true\n" + strings.Replace(webConf, `address = "198.18.0.5:80"`, "address = \"198.18.0.5:80\"\n  method = \"nat\"", 1), "NAT real servers' replies"},
	} {
		_, _, err := run(c.conf)
		if !errors.Is(err, ErrHost) || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "forwarding is on") {
			t.Errorf("refusal %v, want ErrHost saying %q", err, c.says)
		}
	}
}

// runUntilCleanup runs d until the test ends; Run must return nil.
func runUntilCleanup(t *testing.T, d *Daemon) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// TestPlan: gvs check's account of a VRRP config names the mode and, per VIP,
// who serves it.
func TestPlan(t *testing.T) {
	cfg, err := config.Parse("test.toml", []byte(vrrpOnlyConf))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Plan(cfg), "\n")
	for _, want := range []string{"VRRP only: 2 instance(s)", "vrrp VI_1 (VRID 51 on gvs0, priority 150): 198.18.0.3/24 dev gvs0 label gvs0:1 on the kernel while MASTER"} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
	cfg, err = config.Parse("test.toml", []byte(directorConf+webConf+vrrpConf))
	if err != nil {
		t.Fatal(err)
	}
	got = strings.Join(Plan(cfg), "\n")
	if !strings.Contains(got, "director on gvs0: IP forwarding must be off") || !strings.Contains(got, "198.18.0.100 served by gvs") {
		t.Errorf("director plan:\n%s", got)
	}
}
