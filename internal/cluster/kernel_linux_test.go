package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

// TestKernelIPVSInterop is acceptance test C3 in the gvs→kernel direction: a kernel
// IPVS backup (ipvsadm --start-daemon backup) in one namespace learns the connections
// a gvs Node in another sends, with the same real server and state. It skips — even
// under GVS_LAB_REQUIRED=1 — where the kernel has no IPVS (/proc/net/ip_vs), as on the
// machines gvs is developed on: gvs exists to not need it. The kernel→gvs direction
// is covered by decoding kernel-style messages (TestKernelMasterMessage); a kernel
// master would need real traffic through kernel IPVS.
func TestKernelIPVSInterop(t *testing.T) {
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		t.Skip("the kernel has no IPVS (/proc/net/ip_vs is missing): C3 cannot run here")
	}
	if _, err := exec.LookPath("ipvsadm"); err != nil {
		labSkip(t, "ipvsadm is not installed")
	}
	nsA, nsB := vethPair(t)
	ipvsadm := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"netns", "exec", nsB, "ipvsadm"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ipvsadm %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	ipvsadm("-A", "-t", "198.18.100.1:80", "-s", "rr")
	ipvsadm("-a", "-t", "198.18.100.1:80", "-r", "198.18.0.5:80", "-g")
	ipvsadm("--start-daemon", "backup", "--mcast-interface", "eth0", "--syncid", "0")
	t.Cleanup(func() { exec.Command("ip", "netns", "exec", nsB, "ipvsadm", "--stop-daemon", "backup").Run() })

	var u *UDP
	var err error
	inNetns(t, nsA, func() {
		u, err = ListenUDP(UDPConfig{Interface: "eth0", Group: netip.MustParseAddr("224.0.0.81"), SyncPort: 8848, Ports: 1,
			ControlPort: 8849, TTL: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig("gvs1")
	cfg.Self = []netip.Addr{netip.MustParseAddr("198.18.0.21")}
	tbl := newFakeTable()
	n, err := NewNode(cfg, Deps{Sink: tbl, Table: tbl, Transport: u})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	n.Start(time.Now())
	go func() { done <- Run(ctx, n, u, RealClock, 10*time.Millisecond) }()
	t.Cleanup(func() { cancel(); <-done })
	for i := range 10 {
		e := conn(i, 5)
		n.Enqueue(&e, time.Now())
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		out := ipvsadm("-L", "-n", "-c")
		for i := range 10 {
			e := conn(i, 5)
			src := fmt.Sprintf("%v:%d", e.CAddr, e.CPort)
			found := false
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, src) && strings.Contains(line, "ESTABLISHED") && strings.Contains(line, "198.18.0.5:80") {
					found = true
				}
			}
			if !found {
				return false
			}
		}
		return true
	}, "the kernel backup never showed gvs's 10 connections (ipvsadm -Lnc)")
}
