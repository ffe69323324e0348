package keepalived

import (
	"slices"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/config"
)

// TestImportKeepalivedScripts checks vrrp_script, track_script, script users,
// kernel VIP forms, per-real-server checkers and keepalived 2.2.7's protocol and
// nb_get_retry rules against the exact expected TOML (testdata/scripts/README.md
// says what each line tests), and what gvs reads from it.
func TestImportKeepalivedScripts(t *testing.T) {
	im := importGolden(t, "testdata/scripts/")
	c := im.Config
	if c.Scripts != (config.Scripts{User: "keepalived_script", Security: true}) {
		t.Errorf("[scripts] %+v", c.Scripts)
	}
	var names []string
	for _, s := range c.VRRPScripts {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"chk_nginx", "chk_quoted", "chk_plain", "chk_later"}) {
		t.Fatalf("vrrp_scripts %q", names)
	}
	nginx, quoted := c.VRRPScripts[0], c.VRRPScripts[1]
	if !slices.Equal(nginx.Script, []string{"/usr/bin/killall", "-0", "nginx"}) || nginx.Interval != 2*time.Second || nginx.Timeout != time.Second ||
		nginx.Weight != -20 || nginx.Rise != 3 || nginx.Fall != 2 {
		t.Errorf("chk_nginx %+v", nginx)
	}
	if !slices.Equal(quoted.Script, []string{"/usr/local/bin/check", "two words", "--fast"}) || quoted.User != "nobody nogroup" || !quoted.InitFail ||
		quoted.Weight != 10 || !quoted.Reverse || quoted.Timeout != time.Second { // keepalived's timeout: the interval, 1s
		t.Errorf("chk_quoted %+v", quoted)
	}
	v1, v2 := c.VRRP[0], c.VRRP[1]
	wantRefs := []config.TrackRef{{Name: "chk_nginx", Weight: -20}, {Name: "chk_quoted", Weight: -5, Reverse: true}, {Name: "chk_plain", Weight: 253}}
	if !slices.Equal(v1.TrackScript, wantRefs) {
		t.Errorf("VI_1 track_script %+v, want %+v", v1.TrackScript, wantRefs)
	}
	if !slices.Equal(v2.TrackScript, []config.TrackRef{{Name: "chk_plain"}}) {
		t.Errorf("VI_2 (owner) track_script %+v, want only the unweighted script", v2.TrackScript)
	}
	var vips []string
	for _, a := range v1.VIPs {
		vips = append(vips, a.String())
	}
	if !slices.Equal(vips, []string{"10.0.0.3/24 dev eth0 label eth0:1", "10.0.0.13/24 brd 10.0.0.255"}) {
		t.Errorf("VI_1 VIPs %q", vips)
	}
	if len(c.TrackFiles) != 1 || c.TrackFiles[0] != (config.TrackFile{Line: c.TrackFiles[0].Line, Name: "prio_file", File: "/run/keepalived/prio", Weight: -2, Reverse: true}) {
		t.Errorf("vrrp_track_file %+v (rel_file, a relative path, commented out)", c.TrackFiles)
	}
	if len(c.TrackProcesses) != 2 {
		t.Fatalf("vrrp_track_process %+v", c.TrackProcesses)
	}
	if p := c.TrackProcesses[0]; p.Process != "/usr/sbin/nginx" || !slices.Equal(p.Params, []string{"-g"}) || p.ParamMatch != "initial" || !p.FullCommand ||
		p.Quorum != 2 || p.QuorumMax != 8 || p.ForkDelay != 2*time.Second || p.TerminateDelay != 5*time.Second || p.Weight != 15 {
		t.Errorf("nginx_procs %+v", p)
	}
	if !slices.Equal(v1.TrackFile, []config.TrackRef{{Name: "prio_file", Weight: -2, Reverse: true}}) ||
		!slices.Equal(v1.TrackProcess, []config.TrackRef{{Name: "nginx_procs", Weight: -10}, {Name: "haproxy"}}) {
		t.Errorf("VI_1 track_file %+v track_process %+v", v1.TrackFile, v1.TrackProcess)
	}
	s := c.Services[0]
	if s.Protocol.String() != "UDP" || s.Check != nil {
		t.Errorf("service %s check %+v: want UDP with per-server checks", s.String(), s.Check)
	}
	if ck := s.RealServers[0].Checks; len(ck) != 1 || ck[0].Type != config.CheckExec || !slices.Equal(ck[0].Command, []string{"/usr/local/bin/dns-check", "10.0.0.21"}) {
		t.Errorf("10.0.0.21's checks %+v", ck)
	}
	if ck := s.RealServers[1].Checks; len(ck) != 1 || ck[0].Type != config.CheckTCP || ck[0].Retries != 1 || ck[0].Timeout != 2*time.Second {
		t.Errorf("10.0.0.22's checks %+v: want tcp, timeout 2s, retry 1 (nb_get_retry ignored)", ck)
	}
}
