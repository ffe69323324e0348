package lab

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gvs-lb/gvs/internal/config"
)

// TestClusterSpec: a cluster lab's defaults and refusals, and its plan — router on
// both networks, client outside, directors and real servers inside without
// colliding addresses, the VIP on neither network.
func TestClusterSpec(t *testing.T) {
	s, err := Spec{Cluster: 3, Exe: "/bin/true"}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s.Directors != 3 || s.RealServers != 4 || s.VIP != netip.MustParseAddr("198.18.2.100") {
		t.Fatalf("resolved %+v: want 3 directors, 4 real servers, VIP 198.18.2.100", s)
	}
	seen := map[netip.Addr]string{}
	var names []string
	for _, h := range plan(s) {
		names = append(names, h.Name)
		for _, k := range h.Links {
			if other, dup := seen[k.Addr.Addr()]; dup {
				t.Errorf("%s and %s share %v", h.Name, other, k.Addr.Addr())
			}
			seen[k.Addr.Addr()] = h.Name
		}
		if !namespaceRE(s.Prefix).MatchString(h.NS) {
			t.Errorf("Down would not find namespace %s", h.NS)
		}
	}
	if got := strings.Join(names, " "); got != "sw router client dir1 dir2 dir3 rs1 rs2 rs3 rs4" {
		t.Errorf("hosts %s", got)
	}
	for _, bad := range []Spec{
		{Cluster: 1}, {Cluster: 9}, {Cluster: 3, Mode: NAT}, {Cluster: 3, IPv6: true},
		{Cluster: 3, VIP: netip.MustParseAddr("198.18.0.100")}, // on the directors' LAN
		{Cluster: 3, ClusterScheduler: "wlc"},
	} {
		bad.Exe = "/bin/true"
		if _, err := bad.Resolve(); err == nil {
			t.Errorf("Resolve(%+v) accepted", bad)
		}
	}
	// The state file keeps what a later Open needs.
	back, err := toJSON(s).spec(s.Prefix, s.StateDir, false)
	if err != nil || back.Cluster != 3 || back.VIP != s.VIP {
		t.Fatalf("state round trip: %+v, %v", back, err)
	}
}

// TestClusterConfigs: each director's gvs config is cluster mode by the real
// parser, with the listed servers, sync and BIRD socket in the lab; the sync-off
// baseline points sync at the director itself; BIRD parses the router's config.
func TestClusterConfigs(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		s, err := Spec{Cluster: 3, ClusterNoSync: noSync, Exe: "/bin/true", StateDir: t.TempDir()}.Resolve()
		if err != nil {
			t.Fatal(err)
		}
		l := newLab(s)
		text, err := l.DirectorConfig("dir2")
		if err != nil {
			t.Fatal(err)
		}
		c, err := config.Parse("dir2.toml", []byte(text))
		if err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		cc := c.Cluster
		if !cc.Enabled || cc.NodeID != "dir2" || cc.SyncInterface != "eth0" || cc.BirdSocket != l.BirdSocket("dir2") ||
			!strings.HasPrefix(cc.BirdSocket, l.RunDir()) {
			t.Errorf("cluster %+v", cc)
		}
		if want := []netip.Addr{netip.MustParseAddr("198.18.0.4")}; noSync != (len(cc.SyncPeers) == 1 && cc.SyncPeers[0] == want[0]) {
			t.Errorf("no-sync %v: sync_peers %v", noSync, cc.SyncPeers)
		}
		if c.Director.Sysctl.ConnReuseMode != 3 || c.Director.MetricsListen != clusterMetrics {
			t.Errorf("conn_reuse_mode %d, metrics_listen %q: want 3 (a reused port finding a deleted server's FIN_WAIT entry is rescheduled) and %s",
				c.Director.Sysctl.ConnReuseMode, c.Director.MetricsListen, clusterMetrics)
		}
		if len(c.Services) != 2 {
			t.Fatalf("%d services, want TCP and UDP", len(c.Services))
		}
		for _, svc := range c.Services {
			if svc.Scheduler != "mh" || len(svc.RealServers) != 3 || svc.Addr.Addr() != s.VIP {
				t.Errorf("service %v: %s with %d real servers, want mh over rs1..rs3 on the VIP", svc.Addr, svc.Scheduler, len(svc.RealServers))
			}
		}
	}
	if _, err := exec.LookPath("bird"); err != nil {
		t.Skipf("no bird to parse the router's config: %v", err)
	}
	s, _ := Spec{Cluster: 3, Exe: "/bin/true"}.Resolve()
	l := newLab(s)
	path := filepath.Join(t.TempDir(), "router.conf")
	if err := os.WriteFile(path, []byte(l.RouterBirdConfig()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bird", "-p", "-c", path).CombinedOutput(); err != nil {
		t.Fatalf("bird -p: %v\n%s\n%s", err, out, l.RouterBirdConfig())
	}
}
