package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunClusterWithdrawsOnExit runs a real `gvs run` in cluster mode in a
// namespace of the test's own, without BIRD: after the discovery window its VIP's
// route is in announce_table through its TAP device, gvs adm --cluster says it is
// announced and that BIRD is not running, and gvs adm -L --daemon lists both sync
// daemons. SIGTERM withdraws the route at once, gvs forwards on for drain_time and
// then exits, and the device is gone with it. Needs root and ip (skipped without,
// a failure with GVS_LAB_REQUIRED=1).
func TestRunClusterWithdrawsOnExit(t *testing.T) {
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		labSkip(t, "needs /dev/net/tun")
	}
	n := newRunNS(t, "h2c", "198.18.77.3/24")
	dir, bin, ns, ipn := n.dir, n.bin, n.ns, n.ip

	sock := filepath.Join(dir, "gvs.sock")
	conf := filepath.Join(dir, "gvs.toml")
	text := fmt.Sprintf(`[director]
interface = "v0"
io = "afpacket"
control_socket = %q

[[service]]
address = "198.18.77.100:80"
scheduler = "mh"
  [[service.real_server]]
  address = "198.18.77.5:80"
  mac = "02:00:00:00:00:05"

[cluster]
node_id = "dir1"
drain_time = "3s"
bird_socket = %q
`, sock, filepath.Join(dir, "bird.ctl"))
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "run", "-c", conf, "--workers", "1")
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill() // ours, by its PID
			<-done
		}
		if t.Failed() {
			t.Logf("gvs log:\n%s", log.String())
		}
	})
	announced := func() bool {
		out, _ := ipn("route", "show", "table", "200")
		return strings.Contains(out, "198.18.77.100 dev gvs-vip")
	}
	wait := func(what string, limit time.Duration, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > limit {
				t.Fatalf("%s: not within %v", what, limit)
			}
			select {
			case err := <-done:
				exited = true
				t.Fatalf("gvs exited (%v) waiting for %s", err, what)
			case <-time.After(20 * time.Millisecond):
			}
		}
		return time.Since(start)
	}
	wait("the VIP's route in table 200", 20*time.Second, announced)
	adm := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"adm", "--socket", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("gvs adm %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	status := adm("--cluster")
	for _, want := range []string{"node dir1  state ANNOUNCED", "BIRD is not running", "198.18.77.100  open  announced"} {
		if !strings.Contains(status, want) {
			t.Errorf("gvs adm --cluster lacks %q:\n%s", want, status)
		}
	}
	if got := adm("-L", "--daemon"); !strings.Contains(got, "master sync daemon (mcast=v0, syncid=0") || !strings.Contains(got, "backup sync daemon (mcast=v0") {
		t.Errorf("gvs adm -L --daemon:\n%s", got)
	}
	// gvs adm drains and undrains through the control socket.
	adm("--cluster-drain")
	wait("the route withdrawn by gvs adm --cluster-drain", 5*time.Second, func() bool { return !announced() })
	adm("--cluster-undrain")
	wait("the route back after gvs adm --cluster-undrain", 5*time.Second, announced)

	// drain_time is 3 s, not 1: the withdrawal must be seen while gvs still runs,
	// by polling ip route, one process start each, which a loaded machine can
	// stretch towards a second.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	withdraw := wait("the route withdrawn after SIGTERM", 5*time.Second, func() bool { return !announced() })
	select {
	case err := <-done:
		exited = true
		t.Fatalf("gvs exited (%v) %v after SIGTERM, before drain_time (3 s)", err, withdraw)
	default:
	}
	select {
	case err := <-done:
		exited = true
		if err != nil {
			t.Fatalf("gvs run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("gvs still runs 15 s after SIGTERM with drain_time 3 s")
	}
	if out, err := ipn("link", "show", "gvs-vip"); err == nil {
		t.Errorf("the announcement device outlived gvs:\n%s", out)
	}
	if n := strings.Count(log.String(), `msg="cluster: BIRD is not running`); n != 1 {
		t.Errorf("BIRD not running logged %d times, want once", n)
	}
	t.Logf("route withdrawn %v after SIGTERM", withdraw.Round(time.Millisecond))
}
