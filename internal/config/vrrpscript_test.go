package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestVRRPScripts(t *testing.T) {
	c := mustParse(t, file(
		`[scripts]`,
		`script_user = "nobody nogroup"`,
		`enable_script_security = true`,
		`[[vrrp_script]]`,
		`name = "chk_nginx"`,
		`script = "/usr/bin/killall -0 nginx"`,
		`interval = "2s"`,
		`weight = -20`,
		`fall = 2`,
		`rise = 3`,
		`[[vrrp_script]]`,
		`name = "chk_owner"`,
		`script = ["/usr/local/bin/chk", "a b"]`,
		`timeout = "500ms"`,
		`user = "nobody"`,
		`init_fail = true`,
		`[[vrrp_track_file]]`,
		`name = "prio"`,
		`file = "/run/gvs/prio"`,
		`[[vrrp_track_process]]`,
		`name = "nginx"`,
		`process = "/usr/sbin/nginx"`,
		`params = ["-g", "daemon"]`,
		`param_match = "initial"`,
		`weight = 10`,
		`reverse = true`,
		`quorum = 2`,
		`quorum_max = 4`,
		`delay = "2s"`,
		`terminate_delay = "5s"`,
		`[[vrrp]]`,
		`name = "VI_1"`,
		`virtual_router_id = 51`,
		`virtual_ipaddress = ["198.18.0.100"]`,
		`track_script = ["chk_nginx", "chk_owner weight 10 reverse"]`,
		`track_file = ["prio weight -3"]`,
		`track_process = ["nginx"]`,
	))
	if c.Scripts != (Scripts{User: "nobody nogroup", Security: true}) {
		t.Errorf("scripts: %+v", c.Scripts)
	}
	wantScripts := []VRRPScript{
		{Line: 4, Name: "chk_nginx", Script: []string{"/usr/bin/killall", "-0", "nginx"}, Interval: 2 * time.Second, Timeout: 2 * time.Second, Weight: -20, Rise: 3, Fall: 2},
		{Line: 11, Name: "chk_owner", Script: []string{"/usr/local/bin/chk", "a b"}, Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 1, User: "nobody", InitFail: true},
	}
	if d := cmp.Diff(wantScripts, c.VRRPScripts); d != "" {
		t.Errorf("vrrp_script (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]TrackFile{{Line: 17, Name: "prio", File: "/run/gvs/prio", Weight: 1}}, c.TrackFiles); d != "" {
		t.Errorf("vrrp_track_file (-want +got):\n%s", d)
	}
	wantProc := []TrackProcess{{Line: 20, Name: "nginx", Process: "/usr/sbin/nginx", Params: []string{"-g", "daemon"}, ParamMatch: "initial",
		FullCommand: true, Weight: 10, Reverse: true, Quorum: 2, QuorumMax: 4, ForkDelay: 2 * time.Second, TerminateDelay: 5 * time.Second}}
	if d := cmp.Diff(wantProc, c.TrackProcesses); d != "" {
		t.Errorf("vrrp_track_process (-want +got):\n%s", d)
	}
	v := c.VRRP[0]
	if d := cmp.Diff([]TrackRef{{"chk_nginx", -20, false}, {"chk_owner", 10, true}}, v.TrackScript); d != "" {
		t.Errorf("track_script (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]TrackRef{{"prio", -3, false}}, v.TrackFile); d != "" {
		t.Errorf("track_file (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]TrackRef{{"nginx", 10, true}}, v.TrackProcess); d != "" {
		t.Errorf("track_process (-want +got):\n%s", d)
	}
}

func TestVRRPScriptErrors(t *testing.T) {
	checkErrors(t, file(
		`[[vrrp_script]]`, // 1
		`name = "chk"`,
		`interval = "0s"`,
		`weight = 254`,
		`[[vrrp_script]]`, // 5
		`name = "chk"`,
		`script = "/bin/true"`,
		`[[vrrp_track_process]]`, // 8
		`name = "p"`,
		`process = "a-very-long-process-name"`,
		`param_match = "fuzzy"`,
		`[[vrrp]]`, // 12
		`name = "VI_1"`,
		`virtual_router_id = 51`,
		`priority = 255`,
		`state = "MASTER"`,
		`virtual_ipaddress = ["198.18.0.100"]`,
		`track_script = ["nope", "chk weight 5", "chk weight x", "chk"]`,
	), []wantErr{
		{1, "vrrp_script[0]", "missing script"},
		{3, "vrrp_script[0].interval", "greater than zero"},
		{4, "vrrp_script[0].weight", "at most 253"},
		{6, "vrrp_script[1].name", `duplicate vrrp_script "chk" (first at line 1)`},
		{10, "vrrp_track_process[0].process", "15-byte"},
		{11, "vrrp_track_process[0].param_match", "fuzzy"},
		{18, "vrrp[0].track_script[1]", "address owner"},
		{18, "vrrp[0].track_script[2]", `weight "x"`},
		{18, "vrrp[0].track_script[0]", `no [[vrrp_script]] is named "nope"`},
	})
}

func TestRealServerChecks(t *testing.T) {
	c := mustParse(t, file(
		`[[service]]`,
		`address = "198.18.0.100:80"`,
		`check_interval = "10s"`,
		`check_retries = 2`,
		`  [service.check]`,
		`  type = "tcp"`,
		`  retries = 5`,
		`  [[service.real_server]]`, // the service's check, as given
		`  address = "198.18.0.5"`,
		`  [[service.real_server]]`, // the service's check with this server's timing
		`  address = "198.18.0.6"`,
		`  check_interval = "3s"`,
		`  check_retries = 1`,
		`  check_timeout = "1s"`,
		`  [[service.real_server]]`, // its own checks
		`  address = "198.18.0.7"`,
		`  check_timeout = "2s"`,
		`    [[service.real_server.check]]`,
		`    type = "exec"`,
		`    command = ["/usr/local/bin/chk", "{rs_addr}", "{rs_port}"]`,
		`    [[service.real_server.check]]`,
		`    type = "http"`,
		`    path = "/health"`,
		`    timeout = "4s"`,
		`  [[service.real_server]]`, // one own check, as a plain table
		`  address = "198.18.0.8"`,
		`    [service.real_server.check]`,
		`    type = "tcp"`,
		`    connect_port = 8080`,
	))
	s := c.Services[0]
	if s.Check.Interval != 10*time.Second || s.Check.Retries != 5 || s.Check.Timeout != 5*time.Second {
		t.Errorf("service check: interval %v retries %d timeout %v, want 10s (service), 5 (own), 5s (default)", s.Check.Interval, s.Check.Retries, s.Check.Timeout)
	}
	rs := s.RealServers
	if rs[0].Checks != nil {
		t.Errorf("%s: own checks %+v, want none", rs[0].Addr, rs[0].Checks)
	}
	if len(rs[1].Checks) != 1 || rs[1].Checks[0].Type != CheckTCP || rs[1].Checks[0].Interval != 3*time.Second ||
		rs[1].Checks[0].Retries != 5 || rs[1].Checks[0].Timeout != time.Second {
		t.Errorf("%s: checks %+v, want the service's tcp check with interval 3s, retries 5 (the check's own), timeout 1s", rs[1].Addr, rs[1].Checks)
	}
	if len(rs[2].Checks) != 2 {
		t.Fatalf("%s: %d checks, want 2", rs[2].Addr, len(rs[2].Checks))
	}
	ex, web := rs[2].Checks[0], rs[2].Checks[1]
	if ex.Type != CheckExec || ex.Interval != 10*time.Second || ex.Timeout != 2*time.Second || ex.Retries != 2 || ex.Line != 18 {
		t.Errorf("exec check: %+v", ex)
	}
	if web.Type != CheckHTTP || web.Path != "/health" || web.Timeout != 4*time.Second || web.RetryDelay != 3*time.Second {
		t.Errorf("http check: %+v", web)
	}
	if len(rs[3].Checks) != 1 || rs[3].Checks[0].ConnectPort != 8080 {
		t.Errorf("%s: checks %+v", rs[3].Addr, rs[3].Checks)
	}

	checkErrors(t, file(
		`[[service]]`,
		`fwmark = 1`,
		`persistence = "60s"`,
		`  [[service.match]]`,
		`  address = "198.18.0.100"`,
		`  [[service.real_server]]`,
		`  address = "198.18.0.5"`,
		`  check_retries = -1`,
		`    [service.real_server.check]`,
		`    type = "tcp"`,
	), []wantErr{
		{8, "service[0].real_server[0].check_retries", "must not be negative"},
		{9, "service[0].real_server[0].check.connect_port", "is required"},
	})
}

// TestExampleDocumentsScriptKeys checks that config.example.toml shows the keys of
// the tables this file reads.
func TestExampleDocumentsScriptKeys(t *testing.T) {
	data, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, k := range []string{"[scripts]", "script_user", "enable_script_security", "[[vrrp_script]]", "script", "interval",
		"timeout", "weight", "reverse", "rise", "fall", "user", "init_fail", "[[vrrp_track_file]]", "file",
		"[[vrrp_track_process]]", "process", "params", "param_match", "full_command", "quorum", "quorum_max", "delay",
		"fork_delay", "terminate_delay", "track_script", "track_file", "track_process", "check_interval",
		"check_timeout", "check_retries", "check_retry_delay", "[service.real_server.check]"} {
		if !strings.Contains(text, k) {
			t.Errorf("config.example.toml does not show %s", k)
		}
	}
}

func TestTrackInterfaceReverse(t *testing.T) {
	c := mustParse(t, file(
		`[[vrrp]]`,
		`name = "VI_1"`,
		`virtual_router_id = 51`,
		`virtual_ipaddress = ["198.18.0.100"]`,
		`track_interface = ["eth1", "eth2 weight -20 reverse", "eth3 weight 0 reverse", "eth4 weight 5 noreverse"]`,
	))
	want := []TrackedInterface{{"eth1", 0, false}, {"eth2", -20, true}, {"eth3", 0, true}, {"eth4", 5, false}}
	if d := cmp.Diff(want, c.VRRP[0].TrackInterface); d != "" {
		t.Errorf("track_interface (-want +got):\n%s", d)
	}
	checkErrors(t, file(
		`[[vrrp]]`,
		`name = "VI_1"`,
		`virtual_router_id = 51`,
		`virtual_ipaddress = ["198.18.0.100"]`,
		`track_interface = ["eth2 weight -20 sideways", "eth3 reverse"]`,
	), []wantErr{
		{5, "vrrp[0].track_interface[0]", `want "NAME" or "NAME weight W"`},
		{5, "vrrp[0].track_interface[1]", `want "NAME" or "NAME weight W"`},
	})
}
