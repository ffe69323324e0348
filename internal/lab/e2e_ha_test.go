package lab

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// haLab brings up a lab with two directors (the load balancers of seed 004) and one
// real server (not used).
func haLab(t *testing.T) *Lab {
	t.Helper()
	spec := e2eSpec(t, DR)
	spec.Directors, spec.RealServers = 2, 1
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Up(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range l.Procs() {
				b, _ := os.ReadFile(p.Log)
				t.Logf("%s %s log:\n%s", p.Host, p.Name, b)
			}
		}
		if err := l.Down(); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	return l
}

// eth0Addrs returns `ip -4 -o addr show dev eth0` in host: the split-brain check
// of seed 004 reads it.
func eth0Addrs(t *testing.T, l *Lab, host string) string {
	t.Helper()
	cmd, err := l.Command(context.Background(), host, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr in %s: %v: %s", host, err, out)
	}
	return string(out)
}

// holds reports whether host's eth0 has vip, and with which label.
func holds(t *testing.T, l *Lab, host string, vip netip.Addr) (bool, string) {
	for _, line := range strings.Split(eth0Addrs(t, l, host), "\n") {
		line, _, _ = strings.Cut(line, "\\") // -o puts the lifetimes after a backslash
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" && strings.HasPrefix(f[i+1], vip.String()+"/") {
				return true, f[len(f)-1]
			}
		}
	}
	return false, ""
}

// waitHolds waits (bounded) until host holds vip (with label, if not "") or, with
// want false, does not.
func waitHolds(t *testing.T, l *Lab, host string, vip netip.Addr, want bool, label string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, lab := holds(t, l, host, vip)
		if ok == want && (!want || label == "" || lab == label) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: holds %v = %v (label %q) after %v, want %v (label %q):\n%s", host, vip, ok, lab, within, want, label, eth0Addrs(t, l, host))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// answeredBy waits (bounded) until the client's HTTP request to vip is answered
// by web server name.
func answeredBy(t *testing.T, l *Lab, vip netip.Addr, name string, within time.Duration) {
	t.Helper()
	url := "http://" + netip.AddrPortFrom(vip, l.spec.HTTPPort).String() + "/"
	deadline := time.Now().Add(within)
	var body string
	var err error
	for {
		body, err = l.HTTPGet("client", url, 250*time.Millisecond)
		if err == nil && strings.TrimSpace(body) == name {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: answered %q (%v) within %v, want %q", url, strings.TrimSpace(body), err, within, name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHASeed004: seed 004 with gvs on both load balancers, VRRP only. Each master
// holds its VIP on eth0 with its label and its web server answers it; the backup's
// `ip a` shows no VIP of the other (the seed's split-brain check); SIGTERM
// releases the kernel addresses and the peer takes over; SIGKILL leaves them, and
// gvs restarted removes them before the election puts them back.
func TestHASeed004(t *testing.T) {
	l := haLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps, err := l.StartHA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := l.HAVIPs()
	// Priority 150 below 255: MASTER after 3×1 s + skew.
	waitHolds(t, l, "dir1", v1, true, "eth0:1", 10*time.Second)
	waitHolds(t, l, "dir2", v2, true, "eth0:2", 10*time.Second)
	answeredBy(t, l, v1, "lb1", 3*time.Second)
	answeredBy(t, l, v2, "lb2", 3*time.Second)
	for _, c := range []struct {
		host string
		vip  netip.Addr
	}{{"dir1", v2}, {"dir2", v1}} {
		if ok, _ := holds(t, l, c.host, c.vip); ok {
			t.Fatalf("split brain: backup %s holds %v:\n%s", c.host, c.vip, eth0Addrs(t, l, c.host))
		}
	}

	// SIGTERM on lb1: priority 0, its address gone, lb2 holds and answers both.
	signalDirector(t, l, ps[0], syscall.SIGTERM)
	if ok, _ := holds(t, l, "dir1", v1); ok {
		t.Fatalf("gvs stopped with SIGTERM left %v on dir1:\n%s", v1, eth0Addrs(t, l, "dir1"))
	}
	waitHolds(t, l, "dir2", v1, true, "eth0:1", 3*time.Second)
	answeredBy(t, l, v1, "lb2", 3*time.Second)
	if _, err := os.Stat(filepath.Join(l.RunDir(), "dir1.kernel-addrs.json")); !os.IsNotExist(err) {
		t.Fatalf("dir1's record of kernel addresses outlived a clean stop: %v", err)
	}

	// SIGKILL on lb2: both addresses stay (nobody removes them) ...
	signalDirector(t, l, ps[1], syscall.SIGKILL)
	for _, v := range []netip.Addr{v1, v2} {
		if ok, _ := holds(t, l, "dir2", v); !ok {
			t.Fatalf("after SIGKILL dir2 no longer holds %v: the test cannot see the cleanup", v)
		}
	}
	// ... and gvs restarted removes them first, then, alone, wins both again.
	p2, err := l.StartDirector(ctx, "dir2", l.HAConfigPath("dir2"))
	if err != nil {
		t.Fatal(err)
	}
	log := waitLog(t, p2.Log, 5*time.Second, "removed an address a previous run left")
	if n := strings.Count(log, "removed an address a previous run left"); n != 2 {
		t.Fatalf("removed %d leftovers, want 2:\n%s", n, log)
	}
	waitHolds(t, l, "dir2", v1, true, "eth0:1", 10*time.Second)
	waitHolds(t, l, "dir2", v2, true, "eth0:2", 10*time.Second)
	answeredBy(t, l, v2, "lb2", 3*time.Second)
}

// TestHAMixedWithKeepalived: seed 004 with keepalived on lb1 and gvs on lb2: each
// holds its own VIP, both are answered, neither holds the other's.
func TestHAMixedWithKeepalived(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatal("GVS_LAB_REQUIRED=1 but keepalived is not installed")
		}
		t.Skip("keepalived not installed")
	}
	l := haLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conf, err := l.HAKeepalivedConfig("dir1")
	if err != nil {
		t.Fatal(err)
	}
	dir := l.RunDir()
	kconf := filepath.Join(dir, "dir1-keepalived.conf")
	if err := os.WriteFile(kconf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := l.StartWeb(ctx, "dir1"); err != nil {
		t.Fatal(err)
	}
	klog, err := os.Create(filepath.Join(dir, "dir1-keepalived.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer klog.Close()
	cmd, err := l.Command(context.Background(), "dir1", "keepalived", "-n", "-l", "-D", "-P", "-f", kconf,
		"-p", filepath.Join(dir, "dir1-keepalived.pid"), "-r", filepath.Join(dir, "dir1-keepalived-vrrp.pid"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = klog, klog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		// keepalived's parent stops its VRRP child and removes its VIPs on SIGTERM.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(klog.Name())
			t.Logf("keepalived log:\n%s", b)
		}
	})
	cfg, err := l.HAConfig("dir2")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.HAConfigPath("dir2"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := l.StartWeb(ctx, "dir2"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.StartDirector(ctx, "dir2", l.HAConfigPath("dir2")); err != nil {
		t.Fatal(err)
	}
	v1, v2 := l.HAVIPs()
	waitHolds(t, l, "dir1", v1, true, "eth0:1", 10*time.Second)
	waitHolds(t, l, "dir2", v2, true, "eth0:2", 10*time.Second)
	answeredBy(t, l, v1, "lb1", 3*time.Second)
	answeredBy(t, l, v2, "lb2", 3*time.Second)
	// A few adverts later, still no split brain.
	time.Sleep(2 * time.Second)
	for _, c := range []struct {
		host string
		vip  netip.Addr
	}{{"dir1", v2}, {"dir2", v1}} {
		if ok, _ := holds(t, l, c.host, c.vip); ok {
			t.Fatalf("split brain: %s holds %v:\n%s", c.host, c.vip, eth0Addrs(t, l, c.host))
		}
	}
}
