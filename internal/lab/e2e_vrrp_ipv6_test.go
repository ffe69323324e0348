package lab

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestVRRPKeepalivedIPv6Interop: VRRPv3 over IPv6 (link-local sources, ff02::12)
// between gvs (dir1, priority 100) and keepalived (dir2, 150), advert_int 0.1 s.
// gvs stays backup under keepalived's adverts; on keepalived's SIGTERM (priority 0)
// it takes over, announces the VIP with unsolicited NAs (the client's neighbour
// entry moves to dir1) and serves the IPv6 VIP; keepalived restarted at 50 accepts
// gvs's adverts and stays backup.
func TestVRRPKeepalivedIPv6Interop(t *testing.T) {
	spec := e2eSpec(t, DR)
	spec.Directors = 2
	spec.IPv6 = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Up(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	vip := VIP6
	cfg := vrrpConfig(t, l, "dir1", "v6", nil,
		`state = "MASTER"`, `state = "BACKUP"`, "priority = 150", "priority = 100", `advert_int = "1s"`, `advert_int = "100ms"`,
		fmt.Sprintf("virtual_ipaddress = [%q]", l.VIP()), fmt.Sprintf("virtual_ipaddress = [%q]", vip))
	kaConf := func(prio int) string {
		return fmt.Sprintf("global_defs {\n  router_id gvs_lab6\n  vrrp_version 3\n}\nvrrp_instance VI_6 {\n  state BACKUP\n  interface eth0\n"+
			"  virtual_router_id 51\n  priority %d\n  advert_int 0.1\n  version 3\n  virtual_ipaddress {\n    %s/128 dev eth0\n  }\n}\n", prio, vip)
	}
	ka := startKeepalived(t, l, "dir2", "ka6", kaConf(150))
	gvs := startGVSDirector(t, l, "dir1", cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gvs log:\n%s\nkeepalived log:\n%s", waitLog(t, gvs.Log, 0), waitLog(t, ka.log, 0))
		}
	})
	waitLog(t, ka.log, 5*time.Second, "Entering MASTER STATE")
	waitLog(t, gvs.Log, 3*time.Second, "VRRP Entering BACKUP STATE")
	if !regexp.MustCompile(`src=fe80::`).MatchString(waitLog(t, gvs.Log, 0)) {
		t.Fatalf("gvs does not advertise from its link-local address")
	}
	url := "http://" + netip.AddrPortFrom(vip, l.spec.HTTPPort).String() + "/"
	l.HTTPGet("client", url, 200*time.Millisecond) // the client resolves the VIP to keepalived's MAC
	time.Sleep(time.Second)                        // 10 adverts
	if strings.Contains(waitLog(t, gvs.Log, 0), "VRRP Entering MASTER STATE") {
		t.Fatalf("gvs became master while keepalived (150) advertised over IPv6")
	}

	start := time.Now()
	ka.kill(t, syscall.SIGTERM) // returns once keepalived has exited
	// Its priority-0 advert makes gvs take over after Skew_Time (61 ms), not after
	// Master_Down_Interval.
	waitLog(t, gvs.Log, 2*time.Second, "VRRP Entering MASTER STATE", "backup received priority 0 advertisement")
	took := time.Since(start)
	served := time.Duration(-1)
	for time.Since(start) < 3*time.Second {
		if body, err := l.HTTPGet("client", url, 200*time.Millisecond); err == nil && strings.HasPrefix(strings.TrimSpace(body), "rs") {
			served = time.Since(start)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if served < 0 {
		t.Fatalf("the IPv6 VIP is not served through gvs")
	}
	t.Logf("SIGTERM keepalived -> gvs MASTER seen %v after the signal (keepalived's exit included); IPv6 VIP served %v after it",
		took, served)
	deadline := time.Now().Add(2 * time.Second)
	for {
		cmd, _ := l.Command(context.Background(), "client", "ip", "-6", "neigh", "show", vip.String(), "dev", "eth0")
		out, _ := cmd.CombinedOutput()
		if strings.Contains(string(out), "lladdr "+hostMAC(l, "dir1")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client neighbour entry for %v: %s, want dir1's MAC %s", vip, out, hostMAC(l, "dir1"))
		}
		time.Sleep(50 * time.Millisecond)
	}

	ka = startKeepalived(t, l, "dir2", "ka6b", kaConf(50))
	waitLog(t, ka.log, 5*time.Second, "Entering BACKUP STATE")
	time.Sleep(time.Second) // well past keepalived's 0.36 s down interval
	if strings.Contains(waitLog(t, ka.log, 0), "Entering MASTER STATE") {
		t.Fatalf("keepalived (50) became master while gvs (100) advertised over IPv6")
	}
	checkKeepalivedLog(t, ka)
	if n := countIn(gvs.Log, ") advert from "); n != 0 {
		t.Fatalf("gvs dropped %d adverts", n)
	}
}
