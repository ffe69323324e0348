package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// End-to-end VRRP: two gvs directors fail over to each other, and gvs interoperates
// with a real keepalived (VRRP-only, no kernel IPVS) for v2 with PASS auth and for v3.
// The advert interval is 1 s throughout: takeover after a SIGKILL must come within
// 3×advert + skew + margin, after a SIGTERM (priority 0) within skew + margin.

const vrrpMargin = 1500 * time.Millisecond

// vrrpLab brings up a DR lab with two directors and no director running.
func vrrpLab(t *testing.T) *Lab {
	t.Helper()
	spec := e2eSpec(t, DR)
	spec.Directors = 2
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Up(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range l.Procs() {
				if p.Name == "director" {
					b, _ := os.ReadFile(p.Log)
					t.Logf("%s %s log:\n%s", p.Host, p.Name, b)
				}
			}
		}
		if err := l.Down(); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	return l
}

// vrrpConfig writes director dir's lab config with the [[vrrp]] lines edited
// (old → new pairs) and extra lines appended to the [[vrrp]] table, and returns
// its path.
func vrrpConfig(t *testing.T, l *Lab, dir, name string, extra []string, edits ...string) string {
	t.Helper()
	cfg, err := l.DirectorConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(cfg, edits[i]) {
			t.Fatalf("config of %s has no %q", dir, edits[i])
		}
		cfg = strings.Replace(cfg, edits[i], edits[i+1], 1)
	}
	if len(extra) > 0 {
		anchor := "virtual_ipaddress = "
		i := strings.Index(cfg, anchor)
		if i < 0 {
			t.Fatalf("config of %s has no [[vrrp]]", dir)
		}
		j := i + strings.IndexByte(cfg[i:], '\n') + 1
		cfg = cfg[:j] + strings.Join(extra, "\n") + "\n" + cfg[j:]
	}
	path := filepath.Join(l.RunDir(), dir+"-"+name+".toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startGVSDirector runs gvs run -c path in dir (it serves nothing until VRRP makes
// it master, so there is no readiness probe here).
func startGVSDirector(t *testing.T, l *Lab, dir, path string) Proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p, err := l.Start(ctx, dir, "director", "run", "-c", path, "--workers", "1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signalDirector sends sig to a gvs director of this lab and, for SIGTERM or
// SIGKILL, waits (bounded) for it to exit.
func signalDirector(t *testing.T, l *Lab, p Proc, sig syscall.Signal) {
	t.Helper()
	l.mu.Lock()
	c := l.children[p.PID]
	l.mu.Unlock()
	if c == nil {
		t.Fatalf("director PID %d is not a child of this lab", p.PID)
	}
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %d: %v", sig, p.PID, err)
	}
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("director %d still running 5s after %v", p.PID, sig)
	}
}

// waitLog waits (bounded) until the file at path contains every one of subs, and
// returns it.
func waitLog(t *testing.T, path string, within time.Duration, subs ...string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		b, _ := os.ReadFile(path)
		ok := true
		for _, s := range subs {
			if !strings.Contains(string(b), s) {
				ok = false
			}
		}
		if ok {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not contain %q within %v:\n%s", path, subs, within, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitMore waits (bounded) until sub occurs in the file at path more than prev
// times (logs of restarted processes are appended to).
func waitMore(t *testing.T, path, sub string, prev int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for countIn(path, sub) <= prev {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(path)
			t.Fatalf("%s: no new %q within %v:\n%s", path, sub, within, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countIn counts the occurrences of sub in the file at path.
func countIn(path, sub string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), sub)
}

// vipServed polls (bounded, every 50 ms) until an HTTP request through the VIP
// answers, and returns how long it took.
func vipServed(t *testing.T, l *Lab, within time.Duration) time.Duration {
	t.Helper()
	url := "http://" + netip.AddrPortFrom(l.VIP(), l.spec.HTTPPort).String() + "/"
	start := time.Now()
	for time.Since(start) < within {
		if body, err := l.HTTPGet("client", url, 250*time.Millisecond); err == nil && strings.HasPrefix(strings.TrimSpace(body), "rs") {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no answer through the VIP within %v", within)
	return 0
}

// clientVIPMAC returns the client's neighbour entry for the VIP ("" if none).
func clientVIPMAC(t *testing.T, l *Lab) string {
	t.Helper()
	cmd, err := l.Command(context.Background(), "client", "ip", "neigh", "show", l.VIP().String(), "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := cmd.CombinedOutput()
	m := regexp.MustCompile(`lladdr ([0-9a-f:]+)`).FindStringSubmatch(string(out))
	if m == nil {
		return ""
	}
	return m[1]
}

// waitClientMAC waits (bounded) until the client maps the VIP to mac.
func waitClientMAC(t *testing.T, l *Lab, mac string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := clientVIPMAC(t, l)
		if got == mac {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("client maps the VIP to %q, want %q", got, mac)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hostMAC(l *Lab, name string) string {
	h, _ := l.Host(name)
	return h.MAC().String()
}

// TestVRRPTwoDirectorsFailover: dir1 (150) is master and serves; SIGTERM on dir1
// makes dir2 (100) take over after the skew time; dir1 restarted takes back
// (preempt). tshark checks gvs's adverts, captured on the client.
func TestVRRPTwoDirectorsFailover(t *testing.T) {
	l := vrrpLab(t)
	capture := startCapture(t, l, "client")
	p1 := startGVSDirector(t, l, "dir1", l.ConfigPath("dir1"))
	p2 := startGVSDirector(t, l, "dir2", l.ConfigPath("dir2"))
	// Priority 150 below 255: BACKUP first, MASTER after 3×1 s + 106/256 s.
	waitLog(t, p1.Log, 10*time.Second, "VRRP Entering MASTER STATE")
	waitLog(t, p2.Log, 10*time.Second, "VRRP Entering BACKUP STATE")
	vipServed(t, l, 5*time.Second)
	waitClientMAC(t, l, hostMAC(l, "dir1"), 2*time.Second)
	time.Sleep(1500 * time.Millisecond) // a few adverts for the capture
	checkAdvertsWithTshark(t, capture(), l)
	if strings.Contains(waitLog(t, p2.Log, 0), "VRRP Entering MASTER STATE") {
		t.Fatalf("dir2 was master while dir1 advertised")
	}

	// Clean stop: priority 0, dir2 takes over after Skew_Time (156/256 s).
	start := time.Now()
	signalDirector(t, l, p1, syscall.SIGTERM)
	if !strings.Contains(waitLog(t, p1.Log, 0), "VRRP sent 0 priority") {
		t.Fatalf("dir1 did not advertise priority 0 on SIGTERM")
	}
	waitLog(t, p2.Log, 3*time.Second, "VRRP Entering MASTER STATE")
	took := time.Since(start)
	served := vipServed(t, l, 3*time.Second+625*time.Millisecond+vrrpMargin)
	t.Logf("SIGTERM dir1 -> dir2 MASTER in %v; client served again %v after", took, served)
	if took > 625*time.Millisecond+vrrpMargin {
		t.Fatalf("dir2 took %v to take over after a priority-0 advert (skew 0.61 s)", took)
	}
	waitClientMAC(t, l, hostMAC(l, "dir2"), 2*time.Second)

	// dir1 back, higher priority, preempts after its down interval.
	masters := countIn(p1.Log, "VRRP Entering MASTER STATE")
	p1 = startGVSDirector(t, l, "dir1", l.ConfigPath("dir1"))
	waitMore(t, p1.Log, "VRRP Entering MASTER STATE", masters, 10*time.Second)
	waitLog(t, p2.Log, 2*time.Second, "higher priority 150, ours 100")
	waitClientMAC(t, l, hostMAC(l, "dir1"), 2*time.Second)
	vipServed(t, l, 3*time.Second)
	for _, p := range []Proc{p1, p2} {
		if n := countIn(p.Log, ") advert from "); n != 0 {
			t.Fatalf("%s dropped %d adverts:\n%s", p.Host, n, waitLog(t, p.Log, 0))
		}
	}
}

// startCapture captures VRRP (IPv4 and IPv6) on host's eth0 with tcpdump and
// returns a stop function that returns the pcap path. Skips without tcpdump.
func startCapture(t *testing.T, l *Lab, host string) func() string {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatal("GVS_LAB_REQUIRED=1 but tcpdump is not installed")
		}
		t.Skip("tcpdump not installed")
	}
	path := filepath.Join(l.RunDir(), "vrrp-"+host+".pcap")
	cmd, err := l.Command(context.Background(), host, "tcpdump", "-U", "-n", "-i", "eth0", "-w", path, "ip proto 112 or ip6 proto 112")
	if err != nil {
		t.Fatal(err)
	}
	errPath := path + ".stderr"
	stderr, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close() // tcpdump has its own descriptor
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() string {
		if !stopped {
			stopped = true
			cmd.Process.Signal(syscall.SIGINT)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		return path
	}
	t.Cleanup(func() { stop() })
	// tcpdump says so on stderr once its filter is attached.
	waitLog(t, errPath, 10*time.Second, "listening on")
	return stop
}

// checkAdvertsWithTshark decodes the capture with tshark and requires at least one
// advert from dir1 with a good checksum, TTL 255, VRID 51 and priority 150.
func checkAdvertsWithTshark(t *testing.T, pcap string, l *Lab) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Log("tshark not installed: adverts not decoded")
		return
	}
	out, err := exec.Command("tshark", "-r", pcap, "-o", "vrrp.v3_checksum_as_in_v2:FALSE", "-T", "fields", "-E", "separator=,",
		"-e", "ip.src", "-e", "ip.ttl", "-e", "vrrp.version", "-e", "vrrp.virt_rtr_id", "-e", "vrrp.prio", "-e", "vrrp.checksum.status").Output()
	if err != nil {
		// Old tshark without the preference: retry without it.
		out, err = exec.Command("tshark", "-r", pcap, "-T", "fields", "-E", "separator=,",
			"-e", "ip.src", "-e", "ip.ttl", "-e", "vrrp.version", "-e", "vrrp.virt_rtr_id", "-e", "vrrp.prio", "-e", "vrrp.checksum.status").Output()
		if err != nil {
			t.Fatalf("tshark: %v", err)
		}
	}
	dir1, _ := l.Host("dir1")
	good := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 6 || f[0] != dir1.Addr().String() {
			continue
		}
		// vrrp.checksum.status: 1 = good (Wireshark's PROTO_CHECKSUM_E_GOOD).
		if f[1] != "255" || f[3] != "51" || f[5] != "1" {
			t.Fatalf("tshark decodes an advert from dir1 as ttl=%s version=%s vrid=%s prio=%s checksum-status=%s (want 255, 51, status 1=good)", f[1], f[2], f[3], f[4], f[5])
		}
		if f[4] == "150" {
			good++
		}
	}
	if good == 0 {
		t.Fatalf("no advert from dir1 at priority 150 in the capture; tshark:\n%s", out)
	}
	t.Logf("tshark: %d adverts from dir1 with a correct checksum and TTL 255", good)
}

// keepalived runs keepalived VRRP-only in host's namespace with its own pid files
// and log; stop it with kill.
type keepalived struct {
	cmd      *exec.Cmd
	log      string
	vrrpPID  string
	done     chan struct{}
	finished bool
}

func keepalivedConf(l *Lab, version int, prio int, auth bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n  router_id gvs_lab\n  vrrp_version %d\n}\n", version)
	fmt.Fprintf(&b, "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority %d\n  advert_int 1\n  version %d\n", prio, version)
	if auth {
		b.WriteString("  authentication {\n    auth_type PASS\n    auth_pass s3cr3t12\n  }\n")
	}
	fmt.Fprintf(&b, "  virtual_ipaddress {\n    %s/32 dev eth0\n  }\n}\n", l.VIP())
	return b.String()
}

func startKeepalived(t *testing.T, l *Lab, host, name, conf string) *keepalived {
	t.Helper()
	if _, err := exec.LookPath("keepalived"); err != nil {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatal("GVS_LAB_REQUIRED=1 but keepalived is not installed")
		}
		t.Skip("keepalived not installed")
	}
	dir := l.RunDir()
	cf := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	k := &keepalived{log: filepath.Join(dir, name+".log"), vrrpPID: filepath.Join(dir, name+"-vrrp.pid"), done: make(chan struct{})}
	lf, err := os.Create(k.log)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd, err := l.Command(context.Background(), host, "keepalived", "-n", "-l", "-G", "-D", "-P", "-f", cf,
		"-p", filepath.Join(dir, name+".pid"), "-r", k.vrrpPID)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	k.cmd = cmd
	go func() { cmd.Wait(); close(k.done) }()
	t.Cleanup(func() { k.kill(t, syscall.SIGKILL) })
	return k
}

// kill ends keepalived: the VRRP child first (so the parent does not respawn it),
// then the parent; both by PID, both started by this test. Bounded.
func (k *keepalived) kill(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if k.finished {
		return
	}
	k.finished = true
	if sig == syscall.SIGKILL {
		if b, err := os.ReadFile(k.vrrpPID); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 && isChildOf(pid, k.cmd.Process.Pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	k.cmd.Process.Signal(sig)
	select {
	case <-k.done:
	case <-time.After(5 * time.Second):
		k.cmd.Process.Kill()
		<-k.done
	}
}

// isChildOf reports whether pid's parent is ppid (so that only our keepalived's
// VRRP child is ever signalled).
func isChildOf(pid, ppid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+1:])
	return len(f) > 1 && f[1] == strconv.Itoa(ppid)
}

// keepalivedMismatch are keepalived's log lines for an advert it rejected (docs/vrrp.md
// §2.5).
var keepalivedMismatch = []string{"invalid TTL", "wrong version", "Invalid auth", "auth, expecting", "invalid passwd",
	"advertisement interval mismatch", "Invalid packet type", "unexpected ip number count", "ip_tot_len mismatch",
	"checksum", "Expected unicast", "Expected multicast", "not present in MASTER advert", "packet too", "not a unicast peer"}

func checkKeepalivedLog(t *testing.T, k *keepalived) {
	t.Helper()
	b, _ := os.ReadFile(k.log)
	for _, s := range keepalivedMismatch {
		if strings.Contains(string(b), s) {
			t.Fatalf("keepalived rejected an advert (%q):\n%s", s, b)
		}
	}
}

// waitVIPOn waits (bounded, polling every 10 ms) until host has the VIP on eth0
// (keepalived adds it when master) and returns how long it took.
func waitVIPOn(t *testing.T, l *Lab, host string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		cmd, _ := l.Command(context.Background(), host, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
		out, _ := cmd.Output()
		if strings.Contains(string(out), " "+l.VIP().String()+"/") {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not get the VIP within %v", host, within)
	return 0
}

// TestVRRPKeepalivedInterop runs gvs (dir1) against keepalived (dir2).
func TestVRRPKeepalivedInterop(t *testing.T) {
	for _, c := range []struct {
		name    string
		version int
		auth    bool
		gvs     []string
	}{
		{"v2-pass", 2, true, []string{"version = 2", "auth_type = \"PASS\"", "auth_pass = \"s3cr3t12\""}},
		{"v3", 3, false, []string{"version = 3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := vrrpLab(t)
			// gvs at 100 (backup), keepalived at 150 (master).
			cfg := vrrpConfig(t, l, "dir1", c.name, c.gvs, `state = "MASTER"`, `state = "BACKUP"`, "priority = 150", "priority = 100")
			ka := startKeepalived(t, l, "dir2", "ka-"+c.name, keepalivedConf(l, c.version, 150, c.auth))
			gvs := startGVSDirector(t, l, "dir1", cfg)
			waitLog(t, ka.log, 10*time.Second, "Entering MASTER STATE")
			waitLog(t, gvs.Log, 5*time.Second, "VRRP Entering BACKUP STATE")
			time.Sleep(1500 * time.Millisecond)
			if strings.Contains(waitLog(t, gvs.Log, 0), "VRRP Entering MASTER STATE") {
				t.Fatalf("gvs became master while keepalived (150) advertised")
			}

			// SIGKILL keepalived: no priority 0; gvs takes over after
			// Master_Down_Interval (3 s + 156/256 s) from the last advert.
			start := time.Now()
			masters := countIn(gvs.Log, "VRRP Entering MASTER STATE")
			ka.kill(t, syscall.SIGKILL)
			// The dead master's VIP stays on its eth0 (docs/vrrp.md §4.5): remove it.
			if cmd, err := l.Command(context.Background(), "dir2", "ip", "addr", "del", l.VIP().String()+"/32", "dev", "eth0"); err == nil {
				cmd.Run()
			}
			waitMore(t, gvs.Log, "VRRP Entering MASTER STATE", masters, 3*time.Second+625*time.Millisecond+vrrpMargin)
			took := time.Since(start)
			served := vipServed(t, l, 3*time.Second)
			t.Logf("SIGKILL keepalived -> gvs MASTER in %v; client served %v after", took, served)
			waitClientMAC(t, l, hostMAC(l, "dir1"), 2*time.Second)

			// keepalived back at 200: it preempts and gvs yields.
			ka = startKeepalived(t, l, "dir2", "ka2-"+c.name, keepalivedConf(l, c.version, 200, c.auth))
			waitLog(t, ka.log, 10*time.Second, "Entering MASTER STATE")
			waitLog(t, gvs.Log, 2*time.Second, "higher priority 200, ours 100")
			waitClientMAC(t, l, hostMAC(l, "dir2"), 3*time.Second)
			// gvs no longer answers ARP for the VIP: a fresh resolution finds
			// keepalived's MAC only (the request through the VIP then reaches
			// keepalived's namespace, which has no server: refused).
			if cmd, err := l.Command(context.Background(), "client", "ip", "neigh", "flush", "dev", "eth0"); err == nil {
				cmd.Run()
			}
			url := "http://" + netip.AddrPortFrom(l.VIP(), l.spec.HTTPPort).String() + "/"
			if body, err := l.HTTPGet("client", url, 500*time.Millisecond); err == nil {
				t.Fatalf("the VIP still answered %q through gvs after it yielded", body)
			}
			waitClientMAC(t, l, hostMAC(l, "dir2"), time.Second)
			checkKeepalivedLog(t, ka)

			// Reverse roles: SIGTERM keepalived (priority 0) -> gvs master after skew;
			// then keepalived at 50 as backup; SIGTERM gvs -> keepalived after its skew.
			n := countIn(gvs.Log, "VRRP Entering MASTER STATE")
			start = time.Now()
			ka.kill(t, syscall.SIGTERM)
			deadline := time.Now().Add(625*time.Millisecond + vrrpMargin)
			for countIn(gvs.Log, "VRRP Entering MASTER STATE") == n && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if countIn(gvs.Log, "VRRP Entering MASTER STATE") == n+1 {
				t.Logf("SIGTERM keepalived -> gvs MASTER in %v", time.Since(start))
			} else if countIn(gvs.Log, "VRRP Entering MASTER STATE") == n {
				t.Fatalf("gvs did not take over within skew + margin after keepalived's SIGTERM")
			}
			vipServed(t, l, 3*time.Second)
			ka = startKeepalived(t, l, "dir2", "ka3-"+c.name, keepalivedConf(l, c.version, 50, c.auth))
			waitLog(t, ka.log, 10*time.Second, "Entering BACKUP STATE")
			time.Sleep(4 * time.Second) // longer than keepalived's down interval: it must stay backup
			if strings.Contains(waitLog(t, ka.log, 0), "Entering MASTER STATE") {
				t.Fatalf("keepalived (50) became master while gvs (100) advertised:\n%s", waitLog(t, ka.log, 0))
			}

			signalDirector(t, l, gvs, syscall.SIGTERM)
			took = waitVIPOn(t, l, "dir2", 3*time.Second)
			t.Logf("SIGTERM gvs -> keepalived has the VIP in %v (skew %v)", took, time.Duration(206)*time.Second/256)
			if took > 806*time.Millisecond+vrrpMargin {
				t.Fatalf("keepalived took %v after gvs's priority 0 (skew 0.80 s)", took)
			}
			waitLog(t, ka.log, 2*time.Second, "Backup received priority 0 advertisement")
			checkKeepalivedLog(t, ka)
			if n := countIn(gvs.Log, ") advert from "); n != 0 {
				t.Fatalf("gvs dropped %d adverts:\n%s", n, waitLog(t, gvs.Log, 0))
			}
		})
	}
}
