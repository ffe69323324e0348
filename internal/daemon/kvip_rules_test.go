package daemon

import (
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
)

// TestKernelRules: virtual_rules go on the kernel after the addresses and the
// routes when the instance becomes MASTER (keepalived's order), a rule without
// from/to takes the instance's family, an identical rule already there is neither
// held nor removed (and is counted), the rules are recorded, and a stop removes
// them first, then the routes, then the addresses; a rule a killed run left (in
// the record) is removed at start.
func TestKernelRules(t *testing.T) {
	dir := t.TempDir()
	fake := &kaddr.Fake{}
	left := kaddr.Rule{From: netip.MustParsePrefix("198.18.9.0/24"), Table: 9}
	foreign := kaddr.Rule{Mark: 3, HasMark: true, Table: 103}
	fake.AddRule(left)
	fake.AddRule(foreign)
	rec := `[{"instance":"VI_9","prefix":"x","rule":{"From":"198.18.9.0/24","To":"","Table":9}}]`
	if err := os.WriteFile(filepath.Join(dir, "gvs.kernel-addrs.json"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := kernelConf + `virtual_routes = ["198.18.5.0/24 via 198.18.0.1 dev gvs0 table 100"]
virtual_rules = ["from 198.18.0.200 table 100 priority 100", "fwmark 0x10/0xff iif gvs0 lookup 101", "fwmark 3 table 103"]
`
	ta, _, stop := kernelDirector(t, conf, dir, fake)
	if slices.Contains(fake.Rules(), left) {
		t.Fatal("the previous run's rule is still there after New")
	}
	becomeMaster(ta)
	mine := []kaddr.Rule{
		{From: netip.MustParsePrefix("198.18.0.200/32"), Table: 100, Priority: 100, HasPriority: true},
		{Mark: 0x10, Mask: 0xff, HasMark: true, IIF: "gvs0", Table: 101},
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return slices.Equal(fake.Rules(), append([]kaddr.Rule{foreign}, mine...)) }, "the virtual rules")
	ops := fake.Ops()[3:] // after the test's two adds and the leftover's removal
	want := []string{"add addr 198.18.0.200/24", "add route 198.18.5.0/24 via 198.18.0.1 if#7 table 100", "add rule " + mine[0].String(), "add rule " + mine[1].String()}
	if !slices.Equal(ops, want) {
		t.Fatalf("changes %q, want %q", ops, want)
	}
	if n := ta.d.vrrp.kv.refused.Load(); n != 1 {
		t.Fatalf("refused %d, want 1 (the rule already there)", n)
	}
	if !strings.Contains(ta.logs.String(), "rule from all fwmark 0x3 lookup 103 is already there and gvs did not add it") {
		t.Fatalf("no clear message for the rule already there:\n%s", ta.logs)
	}
	waitRecord(t, filepath.Join(dir, "gvs.kernel-addrs.json"), `"198.18.0.200/32"`, `"Table": 101`)
	stop()
	if r := fake.Rules(); !slices.Equal(r, []kaddr.Rule{foreign}) {
		t.Fatalf("rules after stop: %v, want only the one gvs did not add", r)
	}
	ops = fake.Ops()[3+len(want):]
	want = []string{"delete rule " + mine[1].String(), "delete rule " + mine[0].String(), "delete route 198.18.5.0/24 via 198.18.0.1 if#7 table 100", "delete addr 198.18.0.200/24"}
	if !slices.Equal(ops, want) {
		t.Fatalf("changes at stop %q, want %q", ops, want)
	}
}

// TestEntryTracks: as keepalived, the interface of a virtual address or route
// other than the instance's is tracked (FAULT while down) unless its entries all
// say no_track; the instance's own interface, one track_interface names and a
// rule's iif/oif are not.
func TestEntryTracks(t *testing.T) {
	up := map[string]bool{"eth0": true, "eth1": true, "eth2": true, "eth3": true, "eth4": true, "eth5": true}
	mustAddr := func(s string) config.VirtualAddress {
		a, err := config.ParseVirtualAddress(s, "eth0")
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	mustRoute := func(s string) config.VirtualRoute {
		r, err := config.ParseVirtualRoute(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	rule, err := config.ParseVirtualRule("iif eth5 oif eth5 table 7")
	if err != nil {
		t.Fatal(err)
	}
	v := config.VRRP{Interface: "eth0",
		VIPs:           []config.VirtualAddress{mustAddr("198.18.0.1 dev eth0"), mustAddr("198.18.0.2 dev eth1"), mustAddr("198.18.0.3 dev eth2 no_track")},
		ExcludedVIPs:   []config.VirtualAddress{mustAddr("198.18.0.4 dev eth3 no_track"), mustAddr("198.18.0.5 dev eth3")},
		VirtualRoutes:  []config.VirtualRoute{mustRoute("198.18.5.0/24 dev eth4"), mustRoute("198.18.6.0/24 dev eth2 no_track"), mustRoute("blackhole 198.18.7.0/24")},
		VirtualRules:   []config.VirtualRule{rule},
		TrackInterface: []config.TrackedInterface{{Name: "eth4", Weight: -10}},
	}
	tracks := (&Daemon{}).vrrpTracks(v, func(n string) bool { return up[n] })
	var names []string
	for _, tk := range tracks {
		names = append(names, tk.Name)
	}
	want := []string{"interface eth4", "interface eth1 (of a virtual address or route)", "interface eth3 (of a virtual address or route)"}
	if !slices.Equal(names, want) {
		t.Fatalf("tracks %q, want %q", names, want)
	}
	for dev, fault := range map[string]bool{"eth0": false, "eth1": true, "eth2": false, "eth3": true, "eth5": false} {
		up[dev] = false
		var f bool
		for _, tk := range tracks {
			f = f || tk.State().Fault
		}
		if f != fault {
			t.Errorf("%s down: fault %v, want %v", dev, f, fault)
		}
		up[dev] = true
	}
}

// TestPlanRules: gvs check lists an instance's virtual rules (and routes) with
// its addresses.
func TestPlanRules(t *testing.T) {
	cfg, err := config.Parse("test.toml", []byte(directorConf+vipsConf("198.18.0.200/24", "198.18.5.0/24 via 198.18.0.1 dev gvs0", "fwmark 0x7/0xff lookup 100 pref 10")))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Plan(cfg), "\n")
	for _, want := range []string{"route to 198.18.5.0/24 via 198.18.0.1 dev gvs0 on the kernel while MASTER",
		"rule fwmark 0x7/0xff priority 10 table 100 on the kernel while MASTER"} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
}
