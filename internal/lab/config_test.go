package lab

import (
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/daemon"
	"github.com/gvs-lb/gvs/ipvs"
)

// TestDirectorConfig checks the generated configs against the real parser.
func TestDirectorConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   Spec
		dir    string
		method ipvs.Method
	}{
		{"dr", Spec{}, "dir1", ipvs.DR},
		{"nat", Spec{Mode: NAT}, "dir1", ipvs.NAT},
		{"tun", Spec{Mode: TUN, RealServers: 3}, "dir1", ipvs.TUN},
		{"dr backup", Spec{Directors: 2}, "dir2", ipvs.DR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Exe = "/bin/true"
			tc.spec.StateDir = t.TempDir()
			s, err := tc.spec.Resolve()
			if err != nil {
				t.Fatal(err)
			}
			l := newLab(s)
			text, err := l.DirectorConfig(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			c, err := config.Parse(tc.name+".toml", []byte(text))
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			// What gvs check and gvs run build from it.
			if _, err := daemon.NewDirector(c, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatalf("daemon.NewDirector: %v\n%s", err, text)
			}
			h, _ := l.Host(tc.dir)
			d := c.Director
			if d.Interface != "eth0" || d.MAC.String() != h.MAC().String() || d.Address != h.Addr() ||
				d.ControlSocket != filepath.Join(tc.spec.StateDir, "gvs", tc.dir+".sock") {
				t.Errorf("director %+v", d)
			}
			if tc.spec.Mode == NAT {
				if got := d.GatewayMAC.String(); got != "02:00:00:00:00:01" {
					t.Errorf("gateway_mac %s, want the gateway's inside MAC", got)
				}
			} else if !d.GatewayMAC.IsZero() {
				t.Errorf("gateway_mac %s outside NAT", d.GatewayMAC)
			}
			if len(c.Services) != 2 {
				t.Fatalf("%d services, want TCP and UDP", len(c.Services))
			}
			for i, svc := range c.Services {
				port := []uint16{s.HTTPPort, s.UDPPort}[i]
				if svc.Addr != netip.AddrPortFrom(s.VIP, port) || svc.Scheduler != "rr" || svc.Method != tc.method {
					t.Errorf("service %d: %v %s %v", i, svc.Addr, svc.Scheduler, svc.Method)
				}
				rs := l.hostsWith(RealServer)
				if len(svc.RealServers) != len(rs) {
					t.Fatalf("service %d: %d real servers, want %d", i, len(svc.RealServers), len(rs))
				}
				for j, r := range svc.RealServers {
					if r.Addr != netip.AddrPortFrom(rs[j].Addr(), port) || r.MAC.String() != rs[j].MAC().String() {
						t.Errorf("service %d real server %d: %v %v, want %v:%d %v", i, j, r.Addr, r.MAC, rs[j].Addr(), port, rs[j].MAC())
					}
				}
			}
			if s.Directors == 2 {
				if len(c.VRRP) != 1 || c.VRRP[0].State != config.VRRPBackup || c.VRRP[0].Priority != 100 ||
					len(c.VRRP[0].VirtualIPAddress) != 1 || c.VRRP[0].VirtualIPAddress[0] != s.VIP {
					t.Errorf("vrrp %+v", c.VRRP)
				}
			} else if len(c.VRRP) != 0 {
				t.Errorf("vrrp with one director: %+v", c.VRRP)
			}
		})
	}
	s, err := Spec{Exe: "/bin/true"}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newLab(s).DirectorConfig("rs1"); err == nil {
		t.Error("DirectorConfig(rs1) succeeded")
	}
}
