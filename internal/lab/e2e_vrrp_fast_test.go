package lab

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Fast VRRP: VRRPv3 with advert_int 0.1 s, so that a failover after SIGKILL takes
// Master_Down_Interval = 3×0.1 s + (256−100)/256×0.1 s ≈ 0.361 s (docs/vrrp.md §3.5).

// fastVRRPConfig writes dir's config with VRRPv3 at 100 ms, the notify commands
// writing to notifyLog, and a one-member sync group (so that the daemon's group
// wiring runs too).
func fastVRRPConfig(t *testing.T, l *Lab, dir, name, notifyLog string) string {
	t.Helper()
	extra := []string{"version = 3"}
	if notifyLog != "" {
		extra = append(extra,
			`notify_master = "echo master-only >> `+notifyLog+`"`,
			`notify = "echo >> `+notifyLog+`"`)
	}
	path := vrrpConfig(t, l, dir, name, extra, `advert_int = "1s"`, `advert_int = "100ms"`)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n[[vrrp_sync_group]]\nname = \"VG_1\"\ngroup = [\"VI_1\"]\n"); err != nil {
		t.Fatal(err)
	}
	return path
}

// answer is one HTTP answer through the VIP, with when it arrived.
type answer struct {
	at   time.Time
	body string
}

// loopRequests sends HTTP requests through the VIP from the client back to back,
// each bounded by 60 ms (a request that went to a dead director is abandoned, not
// retransmitted), until stop is closed or limit passes, and returns the answers.
func loopRequests(l *Lab, stop <-chan struct{}, limit time.Duration) func() []answer {
	url := "http://" + netip.AddrPortFrom(l.VIP(), l.spec.HTTPPort).String() + "/"
	var mu sync.Mutex
	var got []answer
	done := make(chan struct{})
	go func() {
		defer close(done)
		end := time.Now().Add(limit)
		for n := 0; n < 20000 && time.Now().Before(end); n++ {
			select {
			case <-stop:
				return
			default:
			}
			if body, err := l.HTTPGet("client", url, 60*time.Millisecond); err == nil && strings.HasPrefix(strings.TrimSpace(body), "rs") {
				mu.Lock()
				got = append(got, answer{time.Now(), body})
				mu.Unlock()
			} else {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	return func() []answer {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

// TestVRRPFastFailoverKill: two gvs directors, v3 at 100 ms; SIGKILL the master
// while the client loops requests through the VIP: the client's service gap (last
// answer before the kill to first answer after it) stays under 0.5 s.
func TestVRRPFastFailoverKill(t *testing.T) {
	l := vrrpLab(t)
	notify2 := l.RunDir() + "/dir2-notify.log"
	p1 := startGVSDirector(t, l, "dir1", fastVRRPConfig(t, l, "dir1", "fast", ""))
	p2 := startGVSDirector(t, l, "dir2", fastVRRPConfig(t, l, "dir2", "fast", notify2))
	waitLog(t, p1.Log, 5*time.Second, "VRRP Entering MASTER STATE")
	waitLog(t, p2.Log, 5*time.Second, "VRRP Entering BACKUP STATE")
	vipServed(t, l, 3*time.Second)
	waitClientMAC(t, l, hostMAC(l, "dir1"), 2*time.Second)
	waitLog(t, notify2, 3*time.Second, "INSTANCE VI_1 BACKUP 100")

	stop := make(chan struct{})
	answers := loopRequests(l, stop, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // answers from dir1
	killed := time.Now()
	signalDirector(t, l, p1, syscall.SIGKILL)
	waitLog(t, p2.Log, 3*time.Second, "VRRP Entering MASTER STATE")
	time.Sleep(700 * time.Millisecond) // answers from dir2
	close(stop)
	got := answers()
	// The service gap is the longest pause between consecutive answers: the last
	// answer through dir1 (requests already forwarded may still complete just
	// after the signal) to the first through dir2.
	var gap time.Duration
	var gapStart time.Time
	nBefore := 0
	for i, a := range got {
		if a.at.Before(killed) {
			nBefore++
		}
		if i > 0 && a.at.Sub(got[i-1].at) > gap {
			gap, gapStart = a.at.Sub(got[i-1].at), got[i-1].at
		}
	}
	if nBefore == 0 || nBefore == len(got) {
		t.Fatalf("%d answers before the kill, %d after", nBefore, len(got)-nBefore)
	}
	t.Logf("%d answers before the kill, %d after; longest gap %v, starting %v after the kill",
		nBefore, len(got)-nBefore, gap, gapStart.Sub(killed))
	if gap >= 500*time.Millisecond {
		t.Fatalf("service gap %v after SIGKILL of the master, want < 0.5 s (Master_Down_Interval 0.361 s)", gap)
	}
	waitClientMAC(t, l, hostMAC(l, "dir2"), time.Second)
	waitLog(t, notify2, 3*time.Second, "master-only", "INSTANCE VI_1 MASTER 100")
	if n := countIn(p2.Log, ") advert from "); n != 0 {
		t.Fatalf("dir2 dropped adverts:\n%s", waitLog(t, p2.Log, 0))
	}
}

// nftIn runs nft in host's namespace.
func nftIn(t *testing.T, l *Lab, host string, args ...string) {
	t.Helper()
	cmd, err := l.Command(context.Background(), host, append([]string{"nft"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft %v in %s: %v\n%s", args, host, err, out)
	}
}

// TestVRRPSplitBrainHeals: dir2 stops hearing VRRP (an nftables drop in its own
// namespace), so both directors are master; once the rule goes, within about one
// advert interval dir2 yields, only dir1 is master and the client's neighbour entry
// for the VIP points at dir1 again (its gratuitous ARP).
func TestVRRPSplitBrainHeals(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatal("GVS_LAB_REQUIRED=1 but nft is not installed")
		}
		t.Skip("nft not installed")
	}
	l := vrrpLab(t)
	p1 := startGVSDirector(t, l, "dir1", fastVRRPConfig(t, l, "dir1", "split", ""))
	p2 := startGVSDirector(t, l, "dir2", fastVRRPConfig(t, l, "dir2", "split", ""))
	waitLog(t, p1.Log, 5*time.Second, "VRRP Entering MASTER STATE")
	waitLog(t, p2.Log, 5*time.Second, "VRRP Entering BACKUP STATE")
	vipServed(t, l, 3*time.Second)
	waitClientMAC(t, l, hostMAC(l, "dir1"), 2*time.Second)

	// Cut: dir2 hears no VRRP; after its down interval it is master too.
	// The table lives in dir2's namespace; its name is the lab's too.
	split := l.Prefix() + "_split"
	nftIn(t, l, "dir2", "add", "table", "ip", split)
	nftIn(t, l, "dir2", "add", "chain", "ip", split, "in", "{ type filter hook input priority -300 ; }")
	nftIn(t, l, "dir2", "add", "rule", "ip", split, "in", "ip", "protocol", "112", "drop")
	waitLog(t, p2.Log, 3*time.Second, "VRRP Entering MASTER STATE")
	time.Sleep(300 * time.Millisecond)
	if n := countIn(p1.Log, "VRRP Entering BACKUP STATE"); n != 1 {
		t.Fatalf("dir1 (150) left MASTER during the split (%d BACKUP entries)", n)
	}
	// The split brain at its worst for the client: it maps the VIP to dir2 (as
	// after dir2's gratuitous ARP). dir1 hears dir2's lower-priority adverts, and
	// like keepalived ("forcing new election") re-advertises and repeats its
	// gratuitous ARP: the client comes back to dir1 even before the heal.
	cmd, err := l.Command(context.Background(), "client", "ip", "neigh", "replace", l.VIP().String(), "lladdr", hostMAC(l, "dir2"),
		"dev", "eth0", "nud", "stale")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip neigh replace: %v\n%s", err, out)
	}
	forced := time.Now()
	waitClientMAC(t, l, hostMAC(l, "dir1"), 3*time.Second)
	t.Logf("split brain: client back at dir1 %v after being pointed at dir2", time.Since(forced))
	if !strings.Contains(waitLog(t, p1.Log, 0), "VRRP Entering MASTER STATE") || countIn(p2.Log, "VRRP Entering MASTER STATE") != 1 {
		t.Fatal("not a split brain")
	}
	backups := countIn(p2.Log, "VRRP Entering BACKUP STATE")
	// The heal is timed from nft's exit, not its start: starting a process on a
	// loaded machine can take longer than the advert interval under test. The
	// yield is timed by dir2's own log line, not by when this test polled the log.
	// (dir2 may yield just before nft has exited: a yield at or below zero.)
	nftIn(t, l, "dir2", "delete", "table", "ip", split)
	healed := time.Now()
	waitMore(t, p2.Log, "VRRP Entering BACKUP STATE", backups, 2*time.Second)
	yielded := lastLogTime(t, waitLog(t, p2.Log, 0), "VRRP Entering BACKUP STATE").Sub(healed)
	waitClientMAC(t, l, hostMAC(l, "dir1"), time.Second)
	repointed := time.Since(healed)
	t.Logf("healed: dir2 back to BACKUP after %v, client maps the VIP to dir1 after %v", yielded, repointed)
	if yielded > 300*time.Millisecond {
		t.Fatalf("dir2 stayed master %v after the heal (advert interval 0.1 s)", yielded)
	}
	if !strings.Contains(waitLog(t, p2.Log, 0), "higher priority 150, ours 100") {
		t.Fatalf("dir2 did not yield to dir1's priority")
	}
	vipServed(t, l, 2*time.Second)
	if n := countIn(p1.Log, "VRRP Entering BACKUP STATE"); n != 1 {
		t.Fatalf("dir1 left MASTER (%d BACKUP entries)", n)
	}
}

// TestVRRPTrackService: dir1 tracks its HTTP service; when the health checks take
// every real server out (an exec check that fails while a flag file exists), dir1
// goes to FAULT (priority 0 advert) and dir2 takes over; when they pass again dir1
// comes back through BACKUP and preempts.
func TestVRRPTrackService(t *testing.T) {
	l := vrrpLab(t)
	flag := l.RunDir() + "/rs-down"
	svc := netip.AddrPortFrom(l.VIP(), l.spec.HTTPPort)
	cfg := vrrpConfig(t, l, "dir1", "track", []string{"version = 3", `track_service = ["` + svc.String() + `"]`},
		`advert_int = "1s"`, `advert_int = "100ms"`,
		`method = "dr"`, `method = "dr"`+"\n  [service.check]\n  type = \"exec\"\n  command = [\"test\", \"!\", \"-e\", \""+flag+"\"]\n"+
			"  interval = \"100ms\"\n  timeout = \"1s\"\n  retries = 0")
	p1 := startGVSDirector(t, l, "dir1", cfg)
	p2 := startGVSDirector(t, l, "dir2", fastVRRPConfig(t, l, "dir2", "track", ""))
	waitLog(t, p1.Log, 5*time.Second, "VRRP Entering MASTER STATE")
	waitLog(t, p2.Log, 5*time.Second, "VRRP Entering BACKUP STATE")
	vipServed(t, l, 3*time.Second)

	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitLog(t, p1.Log, 3*time.Second, "VRRP Entering FAULT STATE", "service "+svc.String()+" down")
	waitLog(t, p2.Log, 2*time.Second, "VRRP Entering MASTER STATE")
	t.Logf("every real server down -> dir1 FAULT, dir2 MASTER in %v", time.Since(start))
	waitClientMAC(t, l, hostMAC(l, "dir2"), 2*time.Second)

	masters := countIn(p1.Log, "VRRP Entering MASTER STATE")
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	waitLog(t, p1.Log, 3*time.Second, "interface and tracked objects up")
	waitMore(t, p1.Log, "VRRP Entering MASTER STATE", masters, 3*time.Second)
	t.Logf("real servers back -> dir1 MASTER again in %v", time.Since(start))
	waitClientMAC(t, l, hostMAC(l, "dir1"), 2*time.Second)
	vipServed(t, l, 3*time.Second)
}

// TestVRRPTrackServiceWeight: as TestVRRPTrackService, but the tracked service has
// a weight of -60: with every real server down dir1 does not fault, it advertises
// 150 - 60 = 90, below dir2's 100, so dir2 preempts and dir1 becomes BACKUP; when
// the servers are back dir1 returns to 150 and preempts in turn.
func TestVRRPTrackServiceWeight(t *testing.T) {
	l := vrrpLab(t)
	flag := l.RunDir() + "/rs-down"
	svc := netip.AddrPortFrom(l.VIP(), l.spec.HTTPPort)
	cfg := vrrpConfig(t, l, "dir1", "track", []string{"version = 3", `track_service = ["` + svc.String() + ` weight -60"]`},
		`advert_int = "1s"`, `advert_int = "100ms"`,
		`method = "dr"`, `method = "dr"`+"\n  [service.check]\n  type = \"exec\"\n  command = [\"test\", \"!\", \"-e\", \""+flag+"\"]\n"+
			"  interval = \"100ms\"\n  timeout = \"1s\"\n  retries = 0")
	p1 := startGVSDirector(t, l, "dir1", cfg)
	p2 := startGVSDirector(t, l, "dir2", fastVRRPConfig(t, l, "dir2", "track", ""))
	waitLog(t, p1.Log, 5*time.Second, "VRRP Entering MASTER STATE")
	waitLog(t, p2.Log, 5*time.Second, "VRRP Entering BACKUP STATE")
	vipServed(t, l, 3*time.Second)

	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	backups := countIn(p1.Log, "VRRP Entering BACKUP STATE")
	start := time.Now()
	waitLog(t, p1.Log, 3*time.Second, "VRRP changing effective priority", "from=150 to=90")
	waitLog(t, p2.Log, 3*time.Second, "VRRP Entering MASTER STATE")
	waitMore(t, p1.Log, "VRRP Entering BACKUP STATE", backups, 2*time.Second)
	t.Logf("every real server down -> dir1 at priority 90, dir2 MASTER in %v", time.Since(start))
	waitClientMAC(t, l, hostMAC(l, "dir2"), 2*time.Second)
	if strings.Contains(waitLog(t, p1.Log, 0), "FAULT") {
		t.Fatal("a weighted track faulted dir1")
	}

	masters := countIn(p1.Log, "VRRP Entering MASTER STATE")
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	waitLog(t, p1.Log, 3*time.Second, "VRRP changing effective priority", "from=90 to=150")
	waitMore(t, p1.Log, "VRRP Entering MASTER STATE", masters, 3*time.Second)
	t.Logf("real servers back -> dir1 MASTER again in %v", time.Since(start))
	waitClientMAC(t, l, hostMAC(l, "dir1"), 2*time.Second)
	vipServed(t, l, 3*time.Second)
}
