package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/script"
	"github.com/gvs-lb/gvs/internal/testutil"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/vrrp"
)

// TestHealthLayerPerServerChecks checks that a real server's own checks replace the
// service's for it, that it is up only while all of them pass, and that an exec
// check is told the server it checks.
func TestHealthLayerPerServerChecks(t *testing.T) {
	cfg, err := config.Parse("h.toml", []byte(`
[[service]]
address = "198.18.0.100:80"
scheduler = "rr"
  [service.check]
  type = "tcp"
  [[service.real_server]]
  address = "198.18.0.5:80"
  mac = "02:00:00:00:00:05"
  [[service.real_server]]
  address = "198.18.0.6:8080"
  method = "nat"
  mac = "02:00:00:00:00:06"
    [[service.real_server.check]]
    type = "exec"
    command = ["/usr/local/bin/chk", "--host={rs_addr}", "{rs_port}"]
    [[service.real_server.check]]
    type = "http"
`))
	if err != nil {
		t.Fatal(err)
	}
	specs := Services(cfg)
	h := newHealthLayer(slog.New(slog.DiscardHandler))
	hs, err := h.configure(cfg, specs)
	if err != nil {
		t.Fatal(err)
	}
	key := specs[0].Key
	five, six := netip.MustParseAddrPort("198.18.0.5:80"), netip.MustParseAddrPort("198.18.0.6:8080")
	var ids []string
	for _, s := range hs {
		ids = append(ids, s.ID)
	}
	want := []string{checkID(key, five), checkID(key, six), checkID(key, six) + "#2"}
	if !slices.Equal(ids, want) {
		t.Fatalf("check IDs %q, want %q", ids, want)
	}
	if hs[0].Type != health.TCP || hs[1].Type != health.Exec || hs[2].Type != health.HTTP || hs[2].Target != six {
		t.Fatalf("specs %+v", hs)
	}
	if got := hs[1].Command; !slices.Equal(got, []string{"/usr/local/bin/chk", "--host=198.18.0.6", "8080"}) {
		t.Errorf("exec command %q: want the server's address and port filled in", got)
	}
	if got := hs[1].Env; !slices.Equal(got, []string{"GVS_RS_ADDR=198.18.0.6", "GVS_RS_PORT=8080", "GVS_VS_ADDR=198.18.0.100", "GVS_VS_PORT=80"}) {
		t.Errorf("exec environment %q", got)
	}
	up := func() []string {
		res := h.effective(specs, func(netip.Addr) ipvs.MAC { return ipvs.MAC{} })
		h.commit(res)
		var out []string
		for _, rs := range res.services[0].RealServers {
			out = append(out, rs.Addr.String())
		}
		return out
	}
	if got := up(); len(got) != 2 {
		t.Fatalf("all up: %v", got)
	}
	// One of .6's two checks fails: .6 is down; .5 is not touched.
	h.transition(health.Transition{ID: checkID(key, six) + "#2", Up: false, Weight: -1})
	if got := up(); !slices.Equal(got, []string{"198.18.0.5:80"}) {
		t.Fatalf("one of .6's checks failing: %v", got)
	}
	h.transition(health.Transition{ID: checkID(key, six), Up: false, Weight: -1})
	h.transition(health.Transition{ID: checkID(key, six) + "#2", Up: true, Weight: -1})
	if got := up(); !slices.Equal(got, []string{"198.18.0.5:80"}) {
		t.Fatalf("the other failing: %v", got)
	}
	// The health gauge follows all of a server's checks, whichever reported last.
	if h.serverUp(checkID(key, six)+"#2") || h.serverUp(checkID(key, six)) || !h.serverUp(checkID(key, five)) {
		t.Errorf("serverUp: .6 (one check down) %v/%v, .5 %v", h.serverUp(checkID(key, six)+"#2"), h.serverUp(checkID(key, six)), h.serverUp(checkID(key, five)))
	}
	h.transition(health.Transition{ID: checkID(key, six), Up: true, Weight: -1})
	if got := up(); len(got) != 2 {
		t.Fatalf("both passing again: %v", got)
	}
}

// TestTrackersTracks runs real trackers (a real script, a real file) and reads the
// vrrp.Tracks an instance gets from them.
func TestTrackersTracks(t *testing.T) {
	d := t.TempDir()
	flag := filepath.Join(d, "ok")
	prio := filepath.Join(d, "prio")
	if err := os.WriteFile(prio, []byte("4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("t.toml", []byte(`
[[vrrp_script]]
name = "chk"
script = ["/bin/sh", "-c", "test -e `+flag+`"]
interval = "1s"
weight = -30
[[vrrp_script]]
name = "must"
script = "/bin/true"
[[vrrp_script]]
name = "unused"
script = "/bin/false"
[[vrrp_track_file]]
name = "prio"
file = "`+prio+`"
[[vrrp_track_process]]
name = "none"
process = "gvs-no-such-p"
[[vrrp]]
name = "VI_1"
virtual_router_id = 51
virtual_ipaddress = ["198.18.0.100"]
track_script = ["chk", "must"]
track_file = ["prio weight 5"]
track_process = ["none weight 7 reverse"]
`))
	if err != nil {
		t.Fatal(err)
	}
	clk := testutil.NewClock(t)
	changed := make(chan struct{}, 16)
	tr, err := newTrackers(cfg, &script.Runner{}, nil, clk, slog.New(slog.DiscardHandler), func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if tr.lookup("script unused") != nil {
		t.Error("a script nothing tracks is run")
	}
	tracks := tr.tracks(cfg.VRRP[0])
	state := func() (fault bool, delta int, names []string) {
		for _, tk := range tracks {
			st := tk.State()
			fault = fault || st.Fault
			delta += st.Delta
			names = append(names, tk.Name)
		}
		return
	}
	// Before the scripts' first results the weight-0 script holds the instance
	// back and the file adds 4×5; no process matches, and a positive weight
	// (reversed or not) acts only while its object is up.
	fault, delta, names := state()
	if !fault || delta != 20 || strings.Join(names, ",") != "script chk,script must,process none,file prio" {
		t.Fatalf("at start: fault %v delta %d tracks %v", fault, delta, names)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tr.run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	// Both scripts run at once: chk fails (no flag file: -30), must passes.
	testutil.Eventually(t, 10*time.Second, func() bool {
		f, dl, _ := state()
		return !f && dl == 20-30
	}, "the first script results")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prio, []byte("-60"), 0o644); err != nil {
		t.Fatal(err)
	}
	clk.BlockUntil(4)        // two scripts, the file and the process wait for their next turn
	clk.Advance(time.Second) // the scripts run again, the file is read again
	testutil.Eventually(t, 10*time.Second, func() bool {
		f, _, _ := state()
		return f // -60×5 = -300: FAULT
	}, "the file's FAULT")
	if err := os.WriteFile(prio, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	clk.BlockUntil(4)
	clk.Advance(time.Second)
	testutil.Eventually(t, 10*time.Second, func() bool {
		f, dl, _ := state()
		return !f && dl == 5
	}, "chk passing and the file at 1")
	select {
	case <-changed:
	default:
		t.Error("no reassessment asked for")
	}
}

func TestScriptChanges(t *testing.T) {
	parse := func(s string) *config.Config {
		t.Helper()
		c, err := config.Parse("s.toml", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := `
[[vrrp_script]]
name = "a"
script = "/bin/true"
[[vrrp_script]]
name = "b"
script = "/bin/true"
[[vrrp_track_file]]
name = "f"
file = "/run/f"
`
	old := parse(base)
	if got := scriptChanges(old, parse("\n\n"+base)); len(got) != 0 {
		t.Errorf("moved lines: %q, want no change", got)
	}
	cur := parse(`
[scripts]
enable_script_security = true
[[vrrp_script]]
name = "b"
script = "/bin/false"
[[vrrp_script]]
name = "c"
script = "/bin/true"
[[vrrp_track_file]]
name = "f"
file = "/run/f"
weight = 2
`)
	want := []string{"[scripts]", "vrrp_script b", "vrrp_script c (added)", "vrrp_script a (removed)", "vrrp_track_file f"}
	if got := scriptChanges(old, cur); !slices.Equal(got, want) {
		t.Errorf("scriptChanges = %q, want %q", got, want)
	}
}

// TestCheckCommandsAtStart checks that a command refused by the security rule is
// reported when gvs starts, naming the path at fault.
func TestCheckCommandsAtStart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the security rule applies to commands run as root")
	}
	d, err := os.MkdirTemp("", "gvs-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	p := filepath.Join(d, "notify.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o777); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("c.toml", []byte(`
[scripts]
script_user = "root"
enable_script_security = true
[[vrrp]]
name = "VI_1"
virtual_router_id = 51
virtual_ipaddress = ["198.18.0.100"]
notify_master = "`+p+` master"
notify_backup = "/bin/true"
`))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	r, err := newScriptRunner(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || !r.Secure || r.User == nil || r.User.UID != 0 {
		t.Fatalf("runner %+v, %v", r, err)
	}
	if !strings.Contains(logs.String(), "vrrp VI_1 notify_master") || !strings.Contains(logs.String(), p+" is writable by everyone") {
		t.Errorf("start-up log does not name the refused command and its path:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "notify_backup") {
		t.Errorf("a safe command reported:\n%s", logs.String())
	}
	// And it is refused when it runs.
	if _, err := runShellAs(context.Background(), r, p+" master"); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("run: %v, want the refusal naming %s", err, p)
	}
}

// TestTrackInterfaceReverse checks track_interface with keepalived's reverse: the
// weight is negated, and without a weight the instance is in FAULT while the
// interface is up.
func TestTrackInterfaceReverse(t *testing.T) {
	up := map[string]bool{"eth1": true, "eth2": true, "eth3": false}
	v := config.VRRP{TrackInterface: []config.TrackedInterface{{Name: "eth1", Weight: 10, Reverse: true}, {Name: "eth2", Reverse: true}, {Name: "eth3", Weight: -15, Reverse: true}}}
	tracks := (&Daemon{}).vrrpTracks(v, func(n string) bool { return up[n] })
	sum := func() (fault bool, delta int) {
		for _, tk := range tracks {
			st := tk.State()
			fault, delta = fault || st.Fault, delta+st.Delta
		}
		return
	}
	// eth1 up: -10; eth2 up with weight 0 reverse: FAULT; eth3 down, -15 reversed: +15.
	if f, d := sum(); !f || d != 5 {
		t.Errorf("fault %v delta %d, want FAULT and +5", f, d)
	}
	up["eth1"], up["eth2"], up["eth3"] = false, false, true
	if f, d := sum(); f || d != 0 {
		t.Errorf("fault %v delta %d, want none and 0", f, d)
	}
}

// TestVRRPScriptReachesInstance runs a director whose VRRP instance tracks two real
// scripts: one without a weight (FAULT while it fails) and one with weight -30.
// The instance stays in FAULT, serving nothing, until the first script passes; it
// then becomes master at priority 70 and forwards; when the script fails again it
// leaves MASTER for FAULT.
func TestVRRPScriptReachesInstance(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "up")
	ta := newTestAdmin(t, webConf, strings.Replace(vrrpConf, `garp_master_delay = "0s"`, `garp_master_delay = "0s"
track_script = ["chk", "web weight -30"]`, 1), `
[[vrrp_script]]
name = "chk"
script = ["/bin/sh", "-c", "test -e `+flag+`"]
interval = "1s"
[[vrrp_script]]
name = "web"
script = "/bin/false"
interval = "1s"
`)
	status, until := vrrpWatch(t, ta)
	until("FAULT at priority 70", func(s vrrp.Status) bool { return s.State == vrrp.StateFault && s.Priority == 70 })
	// However long it waits, a FAULT instance does not take over.
	for range 20 {
		ta.clock.Advance(250 * time.Millisecond)
	}
	if s := status(); s.State != vrrp.StateFault {
		t.Fatalf("state %s with chk failing, want FAULT", s.State)
	}
	p := tcpPkt{client: ap("198.51.100.9:1234"), vip: ap("198.18.0.100:80"), syn: true}
	if got := ta.send(p); len(got) != 0 {
		t.Fatalf("an instance in FAULT forwarded %v", got)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	until("MASTER at priority 70", func(s vrrp.Status) bool { return s.State == vrrp.StateMaster && s.Priority == 70 })
	if s := status(); !slices.Contains(s.Tracks, "script web -30") {
		t.Errorf("applied tracks %q, want script web -30", s.Tracks)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return len(ta.send(p)) == 1 }, "the master to forward")
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	until("FAULT again", func(s vrrp.Status) bool { return s.State == vrrp.StateFault })
}

// TestCheckScripts checks what gvs check says of a config's commands: an unknown
// user and a missing program are warnings naming them.
func TestCheckScripts(t *testing.T) {
	parse := func(s string) *config.Config {
		t.Helper()
		c, err := config.Parse("s.toml", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		conf string
		want []string
	}{
		{"[scripts]\nscript_user = \"gvs-no-such-user\"\n", []string{"script_user", "gvs-no-such-user", "refuses"}},
		{"[[vrrp_script]]\nname = \"a\"\nscript = \"/bin/true\"\nuser = \"gvs-no-such-user\"\n", []string{"line 1", `vrrp_script "a"`, "gvs-no-such-user"}},
		{"[[vrrp_script]]\nname = \"gone\"\nscript = \"/nonexistent/gvs-check\"\n[[vrrp_script]]\nname = \"fine\"\nscript = \"/bin/true\"\n", []string{"/nonexistent/gvs-check", "gone"}},
	} {
		w := CheckScripts(parse(tc.conf))
		if len(w) != 1 || !strings.HasPrefix(w[0], "warning: ") {
			t.Errorf("%q: warnings %q, want one", tc.conf, w)
			continue
		}
		for _, s := range tc.want {
			if !strings.Contains(w[0], s) {
				t.Errorf("%q: warning %q does not name %q", tc.conf, w[0], s)
			}
		}
	}
	if w := CheckScripts(parse("[[vrrp_script]]\nname = \"fine\"\nscript = \"/bin/true\"\n")); len(w) != 0 {
		t.Errorf("a safe config: warnings %q", w)
	}
}

// TestVRRPScriptReload reloads a director whose instance tracks a failing script:
// the reload that changes the script's command takes effect at once (the instance
// leaves FAULT and becomes master) without touching the instance, and an unchanged
// script keeps its tracker and state; changing it back takes the instance to FAULT
// again.
func TestVRRPScriptReload(t *testing.T) {
	inst := strings.Replace(vrrpConf, `garp_master_delay = "0s"`, `garp_master_delay = "0s"
track_script = ["chk", "other weight -10"]`, 1)
	scripts := func(chk string) string {
		return `
[[vrrp_script]]
name = "chk"
script = "` + chk + `"
interval = "1s"
[[vrrp_script]]
name = "other"
script = "/bin/false"
interval = "1s"
`
	}
	ta := newTestAdmin(t, webConf, inst, scripts("/bin/false"))
	_, until := vrrpWatch(t, ta)
	until("FAULT at 90", func(s vrrp.Status) bool { return s.State == vrrp.StateFault && s.Priority == 90 })
	other := ta.d.trk.lookup("script other")
	if err := ta.reload(webConf + inst + scripts("/bin/true")); err != nil {
		t.Fatal(err)
	}
	if ta.d.trk.lookup("script other") != other {
		t.Error("the unchanged script's tracker was replaced")
	}
	until("MASTER at 90 after the reload", func(s vrrp.Status) bool { return s.State == vrrp.StateMaster && s.Priority == 90 })
	if !strings.Contains(ta.logs.String(), "script chk") {
		t.Errorf("the reload did not log the changed script:\n%s", ta.logs)
	}
	// Back to a failing command: the new tracker starts from INIT, and its first
	// result takes the instance to FAULT.
	if err := ta.reload(webConf + inst + scripts("/bin/false")); err != nil {
		t.Fatal(err)
	}
	until("FAULT after the second reload", func(s vrrp.Status) bool { return s.State == vrrp.StateFault })

}

// TestTrackersUpdate checks the tracker set's reload on its own: unchanged trackers
// are kept, changed ones replaced, removed ones stopped; a track whose object no
// longer runs counts as not known yet (FAULT without a weight, no delta with one).
func TestTrackersUpdate(t *testing.T) {
	conf := func(chk, extra string) *config.Config {
		c, err := config.Parse("u.toml", []byte(`
[[vrrp_script]]
name = "chk"
script = "`+chk+`"
[[vrrp_script]]
name = "keep"
script = "/bin/true"
`+extra+`
[[vrrp]]
name = "VI_1"
virtual_router_id = 51
virtual_ipaddress = ["198.18.0.100"]
track_script = ["chk", "keep weight 5"]
`))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	reassessed := 0
	tr, err := newTrackers(conf("/bin/false", ""), &script.Runner{}, nil, testutil.NewClock(t), slog.New(slog.DiscardHandler), func() { reassessed++ })
	if err != nil {
		t.Fatal(err)
	}
	tracks := tr.tracks(conf("/bin/false", "").VRRP[0])
	chk, keep := tr.lookup("script chk"), tr.lookup("script keep")
	changed, err := tr.update(conf("/bin/true", "[[vrrp_script]]\nname = \"unused\"\nscript = \"/bin/true\"\n"))
	if err != nil || !slices.Equal(changed, []string{"script chk"}) || reassessed != 1 {
		t.Fatalf("update = %q, %v (reassessed %d); want only chk changed", changed, err, reassessed)
	}
	if tr.lookup("script keep") != keep || tr.lookup("script chk") == chk || tr.lookup("script unused") != nil {
		t.Error("unchanged tracker replaced, changed one kept, or an untracked script started")
	}
	// A name whose object is gone: FAULT for the unweighted, nothing for the weighted.
	tr.mu.Lock()
	delete(tr.objs, "script chk")
	delete(tr.objs, "script keep")
	tr.mu.Unlock()
	if st := tracks[0].State(); !st.Fault || st.Delta != 0 {
		t.Errorf("chk gone: %+v, want FAULT", st)
	}
	if st := tracks[1].State(); st.Fault || st.Delta != 0 {
		t.Errorf("keep gone: %+v, want nothing", st)
	}
	if _, err := tr.update(conf("/bin/true", "[[vrrp_script]]\nname = \"x\"\nscript = \"/bin/true\"\nuser = \"gvs-no-such-user\"\n[[vrrp]]\nname = \"VI_2\"\nvirtual_router_id = 52\nvirtual_ipaddress = [\"198.18.0.101\"]\ntrack_script = [\"x\"]\n")); err == nil || !strings.Contains(err.Error(), "gvs-no-such-user") {
		t.Errorf("update with an unknown user: %v, want the error naming it", err)
	}
}

// vrrpWatch returns the first instance's status, and a wait for a condition on it
// that moves the fake clock a little at each look, so that tracked scripts run
// again and the VRRP timers fire (the scripts themselves take real time).
func vrrpWatch(t *testing.T, ta *testAdmin) (func() vrrp.Status, func(string, func(vrrp.Status) bool)) {
	status := func() vrrp.Status { return ta.d.vrrp.runner.Status()[0] }
	return status, func(what string, cond func(vrrp.Status) bool) {
		t.Helper()
		testutil.Eventually(t, 20*time.Second, func() bool {
			if cond(status()) {
				return true
			}
			ta.clock.Advance(250 * time.Millisecond)
			return false
		}, what)
	}
}
